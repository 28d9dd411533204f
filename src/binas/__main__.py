"""`python -m binas ...` (what `torchrun -m binas train ...` runs): the `binas` command line."""

import sys

from binas.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
