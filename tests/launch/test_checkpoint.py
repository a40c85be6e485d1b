"""Atomic checkpoints, weights-only loading and the run directory."""

from __future__ import annotations

import gzip
import json
import pickle
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from launch.impala.checkpoint import (
    CheckpointError,
    capture_rng_state,
    checkpoint_path,
    checkpoint_step,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    remove_stale_temporaries,
    restore_rng_state,
    save_checkpoint,
)
from launch.impala.config import ConfigError, TrainConfig
from launch.impala.run_dir import MetricsWriter, RunDir, read_metrics
from tests.launch.helpers import REPO


def payload(value: float, size: int = 4) -> dict:
    return {"model": {"w": torch.full((size,), value)}, "config": "{}", "counters": {"step": int(value)}}


def test_save_keeps_the_newest_checkpoints(tmp_path: Path) -> None:
    for step in (10, 20, 30, 40):
        save_checkpoint(tmp_path, step, payload(step), keep=2)
    assert [path.name for path in list_checkpoints(tmp_path)] == ["checkpoint_000000000030.pt",
                                                                   "checkpoint_000000000040.pt"]
    assert load_checkpoint(latest_checkpoint(tmp_path))["counters"]["step"] == 40
    assert not list(tmp_path.glob(".*"))


def test_checkpoint_step_reads_back_the_step_of_checkpoint_path(tmp_path: Path) -> None:
    assert checkpoint_step(checkpoint_path(tmp_path, 9_020_160)) == 9_020_160
    with pytest.raises(CheckpointError, match="not named checkpoint_<step>.pt"):
        checkpoint_step(tmp_path / "best.pt")


def test_a_kill_during_save_leaves_the_previous_latest_intact(tmp_path: Path) -> None:
    # A child saves large checkpoints in a loop; we SIGKILL it shortly after the first
    # completes, so the kill lands while the second is being written.
    script = textwrap.dedent(f"""
        import sys, torch
        from launch.impala.checkpoint import save_checkpoint
        size = 8_000_000
        for step in range(1, 100):
            save_checkpoint({str(tmp_path)!r}, step, {{"model": {{"w": torch.full((size,), float(step))}},
                            "config": "{{}}", "counters": {{"step": step}}}}, keep=5)
            print(step, flush=True)
    """)
    for attempt in range(5):
        for path in tmp_path.iterdir():
            path.unlink()
        child = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "1"
            time.sleep(0.1 * (attempt + 1))
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            child.wait(timeout=30)
        if list(tmp_path.glob(".checkpoint_*.tmp")):
            break  # the kill interrupted a save
    else:
        pytest.skip("could not catch a save in progress")
    latest = latest_checkpoint(tmp_path)
    loaded = load_checkpoint(latest)
    step = loaded["counters"]["step"]
    assert torch.equal(loaded["model"]["w"], torch.full((8_000_000,), float(step)))
    remove_stale_temporaries(tmp_path)
    assert not list(tmp_path.glob(".checkpoint_*.tmp"))


class _RunsCode:
    def __reduce__(self):
        return (eval, ("open(__import__('os').environ['PWNED_MARKER'], 'w').write('x')",))


def test_a_crafted_pickle_is_refused_and_runs_no_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "pwned"
    monkeypatch.setenv("PWNED_MARKER", str(marker))
    path = tmp_path / "checkpoint_000000000001.pt"
    torch.save({"model": {}, "config": "{}", "evil": _RunsCode()}, path)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_checkpoint(path)
    assert not marker.exists()
    # the same object through plain pickle would have run the code: the test can fail
    pickle.loads(pickle.dumps(_RunsCode()))
    assert marker.exists()


def test_truncated_and_foreign_files_are_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint_000000000001.pt"
    torch.save(payload(1.0, size=1000), path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="unreadable or incomplete"):
        load_checkpoint(path)
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not a launch.train checkpoint"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path: Path) -> None:
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    save_checkpoint(tmp_path, 1, {**payload(1.0), "rng": capture_rng_state()}, keep=1)
    expected = (random.random(), np.random.rand(), torch.rand(1))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    restore_rng_state(load_checkpoint(latest_checkpoint(tmp_path))["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected


def test_run_directory_layout_and_refusals(tmp_path: Path) -> None:
    config = TrainConfig(runs_root=str(tmp_path), run_name="r1")
    run = RunDir.create(config)
    assert sorted(path.name for path in run.path.iterdir()) == ["checkpoints", "config.json", "logs", "metrics.jsonl"]
    assert RunDir.open_existing(run.path).load_config() == config
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]
    with pytest.raises(ConfigError, match="already exists"):
        RunDir.create(config)
    with pytest.raises(ConfigError, match="not a run directory"):
        RunDir.open_existing(run.path / "logs")
    writer = MetricsWriter(run)
    for step in (100, 200, 300):
        writer.write({"step": step, "loss": float("nan") if step == 200 else 1.0})
    writer.close()
    with open(run.metrics_path, "a") as stream:
        stream.write('{"step": 4')  # a torn last line, as after a kill
    assert [record["step"] for record in read_metrics(run.path)] == [100, 200, 300]
    assert read_metrics(run.path)[1]["loss"] is None
    run.truncate_metrics(200)
    assert [json.loads(line)["step"] for line in run.metrics_path.read_text().splitlines()] == [100, 200]


def test_metrics_are_read_from_a_compressed_copy_too(tmp_path: Path) -> None:
    records = [{"step": step, "episode_return_mean": step / 10} for step in (100, 200)]
    with gzip.open(tmp_path / "metrics.jsonl.gz", "wt") as stream:
        stream.write("".join(json.dumps(record) + "\n" for record in records))
    assert read_metrics(tmp_path) == records
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 5}) + "\n")  # the plain file wins
    assert read_metrics(tmp_path) == [{"step": 5}]
