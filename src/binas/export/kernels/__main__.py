"""``python -m binas.export.kernels [--force]``: build the native kernels for this machine."""

from binas.export.native import main

raise SystemExit(main())
