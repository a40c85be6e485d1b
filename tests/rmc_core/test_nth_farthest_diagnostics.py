"""The binding diagnostics of the N-th farthest benchmark (label-sorted vectors, the probe)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rmc_core.nth_farthest import nth_farthest_batch, vectors_by_label
from tests.benchmark_scripts import load_benchmark

REPO = Path(__file__).resolve().parents[2]


def test_vectors_by_label_puts_each_vector_in_the_row_of_its_label():
    num_vectors, num_dims = 5, 3
    inputs, _ = nth_farthest_batch(32, num_vectors, num_dims, torch.Generator().manual_seed(5))
    bound = vectors_by_label(inputs, num_vectors, num_dims)
    assert bound.shape == (32, num_vectors, num_dims)
    for b in range(32):
        for step in range(num_vectors):
            label = int(inputs[step, b, num_dims : num_dims + num_vectors].argmax())
            assert torch.equal(bound[b, label], inputs[step, b, :num_dims])


def test_vectors_by_label_names_a_wrong_layout():
    inputs, _ = nth_farthest_batch(4, 4, 2, torch.Generator().manual_seed(6))
    with pytest.raises(ValueError, match=r"\[T=4, B, 16\] for 4 vectors of 4 dims"):
        vectors_by_label(inputs, 4, 4)


def test_ridge_r2_is_one_for_a_linear_target_and_near_zero_for_an_unrelated_one():
    ridge_r2 = load_benchmark("nth_farthest").ridge_r2
    generator = torch.Generator().manual_seed(7)
    features = torch.randn(2000, 12, generator=generator)
    linear = features @ torch.randn(12, 3, generator=generator) + 0.5
    unrelated = torch.randn(2000, 3, generator=generator)
    assert ridge_r2(features, linear, ridge=1e-6) > 0.999
    assert abs(ridge_r2(features, unrelated)) < 0.05
    # a quadratic function of the features is not linear in them: R^2 well below 1
    assert ridge_r2(features, features[:, :3] * features[:, 3:6]) < 0.1
    with pytest.raises(ValueError, match="on each side"):
        ridge_r2(features[:3], linear[:3])


def run_benchmark(tmp_path: Path, *arguments: str) -> dict:
    json_path = tmp_path / "curve.json"
    command = [sys.executable, str(REPO / "benchmarks" / "nth_farthest.py"), "--steps", "4", "--batch-size", "16",
               "--eval-interval", "2", "--test-batches", "1", "--probe-examples", "400", "--threads", "1",
               "--json", str(json_path), "--png", str(tmp_path / "curve.png"), "--binding-probe", *arguments]
    subprocess.run(command, check=True, capture_output=True, timeout=120, cwd=REPO)
    return json.loads(json_path.read_text())


def test_the_labelled_vectors_readout_holds_the_binding_exactly(tmp_path):
    result = run_benchmark(tmp_path, "--core", "labelled-vectors")
    assert result["initial_binding_r2"] > 0.999
    assert [point["step"] for point in result["curve"]] == [2, 4]
    assert all(point["binding_r2"] > 0.999 for point in result["curve"])


def test_a_frozen_core_keeps_its_binding_score_and_a_trained_one_moves(tmp_path):
    rmc = ["--core", "rmc", "--head-size", "8", "--num-heads", "2", "--lr", "0.01"]
    frozen = run_benchmark(tmp_path, *rmc, "--freeze-core")
    scores = [frozen["initial_binding_r2"]] + [point["binding_r2"] for point in frozen["curve"]]
    assert max(scores) - min(scores) < 1e-9  # the same probe stream on unchanged weights
    assert scores[0] < 0.9  # a small random core holds little of it
    trained = run_benchmark(tmp_path, *rmc)
    assert trained["initial_binding_r2"] == pytest.approx(frozen["initial_binding_r2"])  # same seed, same weights
    assert abs(trained["curve"][-1]["binding_r2"] - trained["initial_binding_r2"]) > 1e-6


def test_freezing_a_readout_is_refused_with_its_name(tmp_path):
    command = [sys.executable, str(REPO / "benchmarks" / "nth_farthest.py"), "--core", "whole-sequence", "--freeze-core"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert completed.returncode == 2
    assert "--freeze-core needs a recurrent core (rmc, lstm), got --core whole-sequence" in completed.stderr
