#!/usr/bin/env bash
# The written rules, checked: lint, formatting and types (scripts/test.sh runs this before the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
OMP_NUM_THREADS=1 .venv/bin/mypy
