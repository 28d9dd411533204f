#!/usr/bin/env bash
# Install (if needed) and run the whole test suite on the CPU, two workers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/python -m pytest -n 2 -p no:cacheprovider "$@"
