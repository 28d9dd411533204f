"""Import a script of `benchmarks/` (not a package) as a module for the tests."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@contextlib.contextmanager
def benchmark_script(name: str) -> Iterator[ModuleType]:
    """`benchmarks/<name>.py` as module `binas_benchmark_<name>`, registered in `sys.modules` while in use
    (dataclasses and pickling look their module up by name). `benchmarks/` is on `sys.path` meanwhile, as
    when the script runs, so that it can import its sibling modules (`search_cost_*.py`); those are
    unloaded afterwards."""
    module_name = f"binas_benchmark_{name}"
    spec = importlib.util.spec_from_file_location(module_name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    loaded = set(sys.modules)
    sys.modules[module_name] = module
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCHMARKS))
        for key in set(sys.modules) - loaded:
            if key == module_name or Path(getattr(sys.modules[key], "__file__", None) or "").parent == BENCHMARKS:
                sys.modules.pop(key, None)
