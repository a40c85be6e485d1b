"""The best-policy tracker and checkpoint: which window wins, and where best.pt lives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from launch.evaluate import cli as evaluate_cli
from launch.impala.best_policy import BestTracker
from launch.impala.checkpoint import (
    best_checkpoint,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    remove_stale_temporaries,
    save_best_checkpoint,
    save_checkpoint,
)
from launch.impala.config import ConfigError, TrainConfig
from launch.impala.env_factory import make_vector_env
from launch.impala.policy_factory import build_policy
from launch.impala.run_dir import RunDir


def test_a_window_must_fill_before_it_scores() -> None:
    tracker = BestTracker(window=3)
    tracker.add(1.0, None)
    tracker.add(2.0, None)
    assert tracker.new_best() is None
    tracker.add(3.0, None)
    assert tracker.new_best() == pytest.approx(2.0) and tracker.metric == "return"


def test_only_a_strictly_better_window_is_a_new_best() -> None:
    tracker = BestTracker(window=2)
    for success in (1.0, 1.0):
        tracker.add(0.0, success)
    assert tracker.new_best() == 1.0 and tracker.metric == "success"
    assert tracker.new_best() is None  # the same window again is not better
    tracker.add(10.0, 0.0)  # success, not the return, scores an env that reports success
    assert tracker.new_best() is None and tracker.best == 1.0


def test_a_resumed_run_keeps_its_earlier_best_and_zero_turns_it_off() -> None:
    resumed = BestTracker(window=1, best=0.8)
    resumed.add(0.0, 0.7)
    assert resumed.new_best() is None
    resumed.add(0.0, 0.9)
    assert resumed.new_best() == pytest.approx(0.9)
    off = BestTracker(window=0)
    off.add(5.0, None)
    assert off.new_best() is None
    with pytest.raises(ValueError, match="window must be >= 0, got -1"):
        BestTracker(window=-1)
    with pytest.raises(ConfigError, match="best_window_episodes must be an integer >= 0, got -2"):
        TrainConfig(best_window_episodes=-2).validate()


def test_best_checkpoint_is_neither_the_latest_nor_pruned(tmp_path: Path) -> None:
    save_best_checkpoint(tmp_path, {"model": {"w": torch.ones(2)}, "config": "{}", "counters": {"step": 5}})
    for step in (10, 20, 30):
        save_checkpoint(tmp_path, step, {"model": {"w": torch.zeros(2)}, "config": "{}", "counters": {"step": step}},
                        keep=1)
    assert latest_checkpoint(tmp_path).name == "checkpoint_000000000030.pt"
    assert [path.name for path in list_checkpoints(tmp_path)] == ["checkpoint_000000000030.pt"]
    assert load_checkpoint(best_checkpoint(tmp_path))["counters"]["step"] == 5
    (tmp_path / ".best.pt.abc.tmp").write_bytes(b"half")  # what a kill during a save leaves
    remove_stale_temporaries(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["best.pt", "checkpoint_000000000030.pt"]
    assert best_checkpoint(tmp_path / "elsewhere") is None


def test_evaluate_best_reads_best_pt_and_explains_when_there_is_none(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    config = TrainConfig(env="CartPole-v1", core="lstm", core_kwargs={"hidden_size": 8}, hidden_size=8,
                         runs_root=str(tmp_path), run_name="cart")
    run = RunDir.create(config)
    env = make_vector_env(config.env, 1, config.env_kwargs)
    policy = build_policy(config, env.single_observation_space, env.single_action_space)
    saved = {"model": policy.state_dict(), "config": json.dumps(config.to_json()), "counters": {}}
    save_checkpoint(run.checkpoint_dir, 100, saved, keep=1)
    assert evaluate_cli(["--checkpoint", str(run.path), "--best", "--episodes", "2"]) == 2
    assert "has no checkpoints/best.pt" in capsys.readouterr().err
    save_best_checkpoint(run.checkpoint_dir, saved)
    assert evaluate_cli(["--checkpoint", str(run.path), "--best", "--episodes", "2"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["best"] is True and result["episodes"] == 2
    assert evaluate_cli(["--checkpoint", str(run.checkpoint_dir / "best.pt"), "--best", "--episodes", "2"]) == 2
    assert "--best needs a run directory" in capsys.readouterr().err
    assert evaluate_cli(["--random", "--env", "CartPole-v1", "--best", "--episodes", "2"]) == 2
    assert "cannot be combined with --random" in capsys.readouterr().err
