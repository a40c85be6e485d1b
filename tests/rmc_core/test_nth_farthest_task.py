"""The N-th farthest data generator and a smoke run of the training script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rmc_core.nth_farthest import nth_farthest_batch

REPO = Path(__file__).resolve().parents[2]


def test_inputs_layout_and_answers_match_a_brute_force_count():
    num_vectors, num_dims, batch = 5, 3, 64
    inputs, targets = nth_farthest_batch(batch, num_vectors, num_dims, torch.Generator().manual_seed(1))
    assert inputs.shape == (num_vectors, batch, num_dims + 3 * num_vectors)
    assert targets.dtype == torch.int64
    data = inputs.numpy()
    for b in range(batch):
        vectors = data[:, b, :num_dims]
        labels = data[:, b, num_dims : num_dims + num_vectors]
        n_one_hot = data[:, b, num_dims + num_vectors : num_dims + 2 * num_vectors]
        m_one_hot = data[:, b, num_dims + 2 * num_vectors :]
        assert np.all(np.abs(vectors) <= 1)
        assert sorted(labels.argmax(1).tolist()) == list(range(num_vectors))  # without replacement
        assert np.all(labels.sum(1) == 1) and np.all(n_one_hot == n_one_hot[0]) and np.all(m_one_hot == m_one_hot[0])
        n, m = n_one_hot[0].argmax(), m_one_hot[0].argmax()
        reference = vectors[labels.argmax(1) == m][0]
        distances = [float(np.linalg.norm(v - reference)) for v in vectors]
        farther_than = [sum(d > distances[i] for d in distances) for i in range(num_vectors)]
        answer = farther_than.index(n)  # n vectors are farther than the answer
        assert labels[answer].argmax() == targets[b].item()


def test_answers_cover_all_labels_and_the_reference_itself_when_n_is_last():
    inputs, targets = nth_farthest_batch(400, 4, 2, torch.Generator().manual_seed(2))
    assert set(targets.tolist()) == {0, 1, 2, 3}
    last = inputs[0, :, 2 + 4 : 2 + 8].argmax(-1) == 3
    reference_label = inputs[0, :, 2 + 8 :].argmax(-1)
    assert torch.equal(targets[last], reference_label[last])


def test_training_script_smoke(tmp_path):
    json_path = tmp_path / "curve.json"
    command = [
        sys.executable, str(REPO / "benchmarks" / "nth_farthest.py"), "--core", "rmc", "--steps", "3",
        "--batch-size", "8", "--eval-interval", "2", "--test-batches", "1", "--head-size", "4",
        "--num-heads", "2", "--threads", "1", "--json", str(json_path), "--csv", str(tmp_path / "curve.csv"),
        "--png", str(tmp_path / "curve.png"),
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=120, cwd=REPO)
    result = json.loads(json_path.read_text())
    assert [point["step"] for point in result["curve"]] == [2, 3]
    assert 0.0 <= result["final_test_accuracy"] <= 1.0
    assert (tmp_path / "curve.png").stat().st_size > 0
    assert (tmp_path / "curve.csv").read_text().startswith("step,")


def test_training_script_writes_under_runs_by_default(tmp_path):
    command = [
        sys.executable, str(REPO / "benchmarks" / "nth_farthest.py"), "--core", "lstm", "--steps", "2",
        "--num-vectors", "3", "--num-dims", "2", "--batch-size", "8", "--eval-interval", "2", "--test-batches", "1",
        "--lstm-hidden-size", "8", "--threads", "1", "--question", "rank",
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=120, cwd=tmp_path)
    written = sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*") if path.is_file())
    assert written == ["runs/nth_farthest/nth_farthest_lstm_3x2_rank.json", "runs/nth_farthest/nth_farthest_lstm_3x2_rank.png"]


def test_rank_question_answers_the_distance_rank_of_the_vector_labelled_n():
    num_vectors, num_dims, batch = 5, 3, 64
    inputs, targets = nth_farthest_batch(batch, num_vectors, num_dims, torch.Generator().manual_seed(3), "rank")
    data = inputs.numpy()
    for b in range(batch):
        vectors = data[:, b, :num_dims]
        labels = data[:, b, num_dims : num_dims + num_vectors].argmax(1)
        n = data[0, b, num_dims + num_vectors : num_dims + 2 * num_vectors].argmax()
        m = data[0, b, num_dims + 2 * num_vectors :].argmax()
        reference = vectors[labels == m][0]
        distances = [float(np.linalg.norm(v - reference)) for v in vectors]
        ascending_labels = [labels[i] for i in np.argsort(distances, kind="stable")]
        assert ascending_labels.index(n) == targets[b].item()  # rank 0 is m itself


def test_both_questions_share_inputs_and_the_rank_is_zero_exactly_when_n_is_m():
    farthest = nth_farthest_batch(300, 4, 2, torch.Generator().manual_seed(4), "farthest")
    rank = nth_farthest_batch(300, 4, 2, torch.Generator().manual_seed(4), "rank")
    assert torch.equal(farthest.inputs, rank.inputs)
    n_is_m = rank.inputs[0, :, 2 + 4 : 2 + 8].argmax(-1) == rank.inputs[0, :, 2 + 8 :].argmax(-1)
    assert torch.equal(rank.targets == 0, n_is_m)
    assert set(rank.targets.tolist()) == {0, 1, 2, 3}


def test_an_unknown_question_is_named_in_the_error():
    with pytest.raises(ValueError, match="'closest'"):
        nth_farthest_batch(4, 4, 2, question="closest")


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_rmc_learns_the_reduced_task_at_the_papers_batch(tmp_path):
    """>= 90% on 4 vectors x 4 dims on a 2-core CPU (about 18 minutes).

    The setting of docs/nth_farthest.md (seed 0 passed 0.9 after 2,000 steps there); at
    batch 256 the same model stays on the 2/N = 50% plateau.
    """
    json_path = tmp_path / "curve.json"
    command = [
        sys.executable, str(REPO / "benchmarks" / "nth_farthest.py"), "--core", "rmc", "--num-vectors", "4",
        "--num-dims", "4", "--mem-slots", "4", "--head-size", "32", "--num-heads", "4", "--batch-size", "1600",
        "--lr", "1e-3", "--steps", "3000", "--eval-interval", "250", "--threads", "2", "--seed", "0",
        "--json", str(json_path), "--png", str(tmp_path / "curve.png"),
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=3600, cwd=REPO)
    result = json.loads(json_path.read_text())
    assert result["final_test_accuracy"] >= 0.9, result["curve"][-1]
