"""binas.quant."""
