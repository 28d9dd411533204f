# Shortcuts; every target uses the project's .venv (created by `make install`).
PY := .venv/bin/python

.PHONY: help install lint test test-fast faults run reproduce reproduce-quick readme-results search-cost deployment mechanisms

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

install:  ## create .venv with the CPU build of PyTorch and binas
	bash scripts/install.sh

lint:  ## ruff check, ruff format --check and mypy (what CI runs before the tests)
	bash scripts/lint.sh

test:  ## install if needed, lint, and run the tests (2 workers)
	bash scripts/test.sh

test-fast:  ## the tests without the end-to-end runs marked slow
	$(PY) -m pytest -n 2 -p no:cacheprovider -m "not slow"

run: install  ## the main job: search, retrain and evaluate on the bundled digits
	.venv/bin/binas run --config digits_quick

reproduce: install  ## every method on one budget, 5 paired seeds, 95 % intervals (about an hour on 2 cores)
	$(PY) benchmarks/reproduce.py --jobs 2

reproduce-quick: install  ## the same protocol with a tiny budget (minutes)
	$(PY) benchmarks/reproduce.py --quick --jobs 2

readme-results:  ## rewrite README.md's results block from benchmarks/results/reproduce.json
	$(PY) benchmarks/reproduce.py --readme

search-cost: install  ## seconds per epoch and peak memory of each method, and their scaling
	$(PY) benchmarks/search_cost.py

deployment: install  ## deployed 1-bit network vs its real twin: latency, size, agreement; README block
	$(PY) benchmarks/deployment.py && $(PY) benchmarks/deployment.py --readme

faults: install  ## kill real runs at chosen moments, resume them, compare (benchmarks/results/faults.json)
	$(PY) benchmarks/faults.py

mechanisms: install  ## how much each DCP-NAS mechanism acts at the defaults vs its earlier reading
	$(PY) benchmarks/mechanisms.py
