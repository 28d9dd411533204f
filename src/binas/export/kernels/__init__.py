"""The C source of binas's native 1-bit kernels (`bitconv.c`), built by `binas.export.native`."""
