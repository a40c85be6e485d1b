"""The house style's import rules: envs is pure numpy, rmc_core pure torch, agents never
imports launch, and nothing initialises CUDA or opens pygame at import."""

import subprocess
import sys

import pytest


def modules_after_import(package: str) -> set[str]:
    code = f"import sys, {package}; print('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return {name.split(".")[0] for name in result.stdout.split()}


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("envs", {"torch", "pygame", "agents", "rmc_core", "launch"}),
        ("rmc_core", {"gymnasium", "envs", "agents", "launch", "pygame"}),
        ("agents", {"launch", "envs", "pygame"}),
    ],
)
def test_package_imports_stay_within_their_layer(package, forbidden):
    loaded = modules_after_import(package)
    assert package in loaded
    assert not (loaded & forbidden), f"importing {package} pulled in {sorted(loaded & forbidden)}"
