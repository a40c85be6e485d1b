"""A smoke run of benchmarks/rmc_speed.py at a tiny size, and its timer's device handling."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import torch

from tests.benchmark_scripts import load_benchmark

REPO = Path(__file__).resolve().parents[2]


def test_rmc_speed_prints_a_ratio_for_every_pass_at_both_configurations() -> None:
    command = [sys.executable, str(REPO / "benchmarks" / "rmc_speed.py"), "--steps", "3", "--batch-size", "2",
               "--repeats", "1", "--warmup", "0", "--rows", "4", "--row-features", "5", "--vector-features", "6",
               "--head-size", "4", "--num-heads", "2", "--mem-slots", "2", "--threads", "1", "--tf32"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "float32 matmul precision high" in result.stdout  # --tf32 reached torch
    assert "[4 rows x 5]" in result.stdout and "[1 row x 6]" in result.stdout
    ratios = re.findall(r"RMC/this = ([0-9.]+) / ([0-9.]+)", result.stdout)
    assert len(ratios) == 6  # RMC and two LSTMs, at each configuration
    assert all(float(wall) > 0 for wall, _ in ratios)


def test_rmc_pass_builds_its_reset_mask_and_state_on_the_inputs_device() -> None:
    benchmark = load_benchmark("rmc_speed")
    seen = {}

    class Recorder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(1))

        def initial_state(self, batch_size, device=None):
            seen["state_device"] = device
            return (torch.zeros(batch_size, 1, device=device),)

        def unroll(self, inputs, reset, state):
            seen["reset_device"] = reset.device
            return inputs * self.weight, state

    inputs = torch.randn(3, 2, 5)
    benchmark.rmc_pass(Recorder(), inputs)()
    assert seen["reset_device"] == inputs.device and seen["state_device"] == inputs.device
    timings = benchmark.time_interleaved({"noop": lambda: None}, repeats=2, warmup=1, device=torch.device("cpu"))
    assert timings["noop"][0] >= 0
