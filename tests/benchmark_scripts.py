"""Loads a script of benchmarks/ as a module, for tests of its functions."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` imported under the module name ``<name>_benchmark``."""
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def run_benchmark(name: str, *arguments: str, timeout: float) -> subprocess.CompletedProcess:
    """``python benchmarks/<name>.py *arguments`` from the repository root, output captured."""
    command = [sys.executable, str(REPO / "benchmarks" / f"{name}.py"), *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO)
