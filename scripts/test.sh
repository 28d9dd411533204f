#!/usr/bin/env bash
# Install (if needed), check lint / format / types, and run the whole test suite on the CPU, two workers.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"` (the fast lane).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/lint.sh
.venv/bin/python -m pytest -n 2 -p no:cacheprovider "$@"
