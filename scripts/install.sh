#!/usr/bin/env bash
# Create .venv and install binas with its test tools. The CPU build of torch is installed first, so the
# library's `torch>=2.2` requirement is already met and pip never pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  # torch==2.13.0 resolves to a local CPU wheel on binas's dev/CI machines; elsewhere use PyTorch's CPU index.
  .venv/bin/python -m pip install --quiet "torch==2.13.0" \
    || .venv/bin/python -m pip install --quiet torch --index-url https://download.pytorch.org/whl/cpu
fi
.venv/bin/python -m pip install --quiet -e ".[dev]"
# binas's native 1-bit kernels for this CPU (optional: without a C compiler the other engines are used)
.venv/bin/python -m binas.export.kernels || true
