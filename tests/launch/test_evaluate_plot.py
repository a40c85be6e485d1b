"""launch.evaluate and launch.plot on small, hand-made runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from launch.evaluate import cli as evaluate_cli
from launch.evaluate import grouped_summaries, summarise, wilson_interval
from launch.impala.checkpoint import save_checkpoint
from launch.impala.config import TrainConfig
from launch.impala.env_factory import make_vector_env
from launch.impala.policy_factory import build_policy
from launch.impala.run_dir import MetricsWriter, RunDir
from launch.plot import cli as plot_cli
from launch.plot import curve, metric_key


def make_run(root: Path, name: str, config: TrainConfig, returns: list[float]) -> RunDir:
    config.runs_root, config.run_name = str(root), name
    run = RunDir.create(config)
    writer = MetricsWriter(run)
    for index, value in enumerate(returns):
        writer.write({"step": 100 * (index + 1), "time_s": 10.0 * index, "episode_return_mean": value,
                      "success_rate": value / 10})
    writer.close()
    env = make_vector_env(config.env, 1, config.env_kwargs)
    policy = build_policy(config, env.single_observation_space, env.single_action_space)
    save_checkpoint(run.checkpoint_dir, 100 * len(returns),
                    {"model": policy.state_dict(), "config": json.dumps(config.to_json()), "counters": {}}, keep=1)
    return run


def test_summary_statistics() -> None:
    summary = summarise([1.0, 2.0, 3.0, 4.0], [1, 2, 3, 4], [1.0, 0.0, 1.0, 1.0])
    half = 1.959963984540054 * math.sqrt(5 / 3) / 2
    assert summary["mean_return"] == 2.5 and summary["return_ci95"] == pytest.approx([2.5 - half, 2.5 + half])
    assert summary["success_rate"] == 0.75 and summary["truncated_rate"] is None
    assert summarise([1.0, 2.0], [5, 9], [], [True, False])["truncated_rate"] == 0.5
    low, high = wilson_interval(3, 4)
    assert 0.2 < low < 0.75 < high < 1.0
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0


def test_evaluate_a_boxworld_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = TrainConfig(env="rmc/BoxWorldEasy-v0", core="rmc", hidden_size=16,
                         core_kwargs={"mem_slots": 2, "head_size": 8, "num_heads": 1}, env_kwargs={"max_steps": 20})
    run = make_run(tmp_path, "box", config, [0.0])
    assert evaluate_cli(["--checkpoint", str(run.path), "--episodes", "7", "--num-envs", "3", "--seed", "1"]) == 0
    output = capsys.readouterr().out.strip().splitlines()
    result = json.loads(output[-1])
    assert result["episodes"] == 7 and result["success_rate"] is not None
    assert 0.0 <= result["success_ci95"][0] <= result["success_rate"] <= result["success_ci95"][1] <= 1.0
    assert result["mean_length"] <= 20
    # easy Box-World has no distractors: an episode either collects the gem or runs out of steps
    assert result["truncated_rate"] == pytest.approx(1 - result["success_rate"])
    assert "cut at the step limit" in output[2]
    assert "success rate" in output[1]
    # deterministic evaluation with the same seed gives the same numbers
    assert evaluate_cli(["--checkpoint", str(run.path), "--episodes", "4", "--deterministic", "--seed", "3"]) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert evaluate_cli(["--checkpoint", str(run.path), "--episodes", "4", "--deterministic", "--seed", "3"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == first


def test_grouped_summaries_split_the_episodes_by_value() -> None:
    groups = grouped_summaries("level", [2, 1, 2, 1, 2], [10.0, 0.0, 10.0, 1.0, 0.0], [5, 120, 7, 120, 120],
                               [1.0, 0.0, 1.0, 0.0, 0.0], [False, True, False, True, True])
    assert [(group["key"], group["value"], group["episodes"]) for group in groups] == [("level", 1, 2), ("level", 2, 3)]
    assert groups[0]["mean_return"] == 0.5 and groups[0]["success_rate"] == 0.0 and groups[0]["truncated_rate"] == 1.0
    assert groups[1]["success_rate"] == pytest.approx(2 / 3) and groups[1]["mean_length"] == pytest.approx(44.0)
    # episodes without a success flag count in the returns but not in the success rate
    mixed = grouped_summaries("level", [1, 1], [1.0, 3.0], [2, 2], [None, 1.0], [False, False])
    assert mixed[0]["mean_return"] == 2.0 and mixed[0]["success_rate"] == 1.0


def test_evaluate_by_an_info_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = TrainConfig(env="rmc/BoxWorldEasy-v0", core="lstm", hidden_size=16, core_kwargs={"hidden_size": 16},
                         env_kwargs={"max_steps": 15})
    run = make_run(tmp_path, "box", config, [0.0])
    assert evaluate_cli(["--checkpoint", str(run.path), "--episodes", "24", "--num-envs", "4", "--seed", "2",
                         "--by", "solution_length"]) == 0
    output = capsys.readouterr().out.strip().splitlines()
    result = json.loads(output[-1])
    groups = result["groups"]
    # easy Box-World draws one or two boxes on the path; 24 episodes see both
    assert [group["value"] for group in groups] == [1, 2]
    assert sum(group["episodes"] for group in groups) == 24
    successes = sum(group["success_rate"] * group["episodes"] for group in groups)
    assert successes == pytest.approx(result["success_rate"] * 24)
    assert sum(group["mean_return"] * group["episodes"] for group in groups) == pytest.approx(result["mean_return"] * 24)
    assert any(line.startswith("  solution_length=1: ") for line in output)
    assert evaluate_cli(["--random", "--env", "CartPole-v1", "--episodes", "3", "--by", "solution_length"]) == 2
    assert "has no 'solution_length'" in capsys.readouterr().err


def test_random_baseline_and_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert evaluate_cli(["--random", "--env", "CartPole-v1", "--episodes", "5"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["policy"] == "random" and result["episodes"] == 5 and result["success_rate"] is None
    assert 5 <= result["mean_return"] <= 200
    assert result["truncated_rate"] == 0.0  # a random CartPole pole falls long before 500 steps
    assert evaluate_cli(["--checkpoint", str(tmp_path), "--episodes", "5"]) == 2
    assert "holds no checkpoint" in capsys.readouterr().err
    assert evaluate_cli(["--random", "--episodes", "5"]) == 2


def test_plot_several_runs_to_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = TrainConfig(env="CartPole-v1", core="none", hidden_size=8)
    first = make_run(tmp_path, "rmc", config, [1.0, 2.0, 3.0, 4.0])
    second = make_run(tmp_path, "lstm", TrainConfig(env="CartPole-v1", core="none", hidden_size=8), [1.0, 1.0])
    xs, ys = curve(first.path, "return", "frames", smooth=2)
    assert xs.tolist() == [100, 200, 300, 400] and ys.tolist() == [1.0, 1.5, 2.5, 3.5]
    assert curve(first.path, "success", "hours")[0].tolist() == pytest.approx([0, 10 / 3600, 20 / 3600, 30 / 3600])
    out = tmp_path / "figures" / "curves.png"
    assert plot_cli([str(first.path), str(second.path), "--out", str(out), "--metric", "success",
                     "--label", "RMC", "--label", "LSTM"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_cli([str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_plot_draws_the_games_that_act_with_the_policy_itself_when_the_run_logs_them(tmp_path: Path) -> None:
    records = [{"step": 100, "episode_return_mean": 10.0, "success_rate": 0.1},
               {"step": 200, "episode_return_mean": 20.0, "policy_return_mean": 40.0, "policy_success_rate": 0.5}]
    assert metric_key(records, "return") == "policy_return_mean"
    assert metric_key(records, "success") == "policy_success_rate"
    assert metric_key(records[:1], "return") == "episode_return_mean"
    assert metric_key(records[:1], "success") == "success_rate"
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(record) for record in records))
    assert curve(tmp_path, "return")[1].tolist() == [40.0]


def test_plot_reads_metrics_copied_without_checkpoints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run(tmp_path, "full", TrainConfig(env="CartPole-v1", core="none", hidden_size=8), [1.0, 2.0])
    copied = tmp_path / "docs" / "runs" / "copied"
    copied.mkdir(parents=True)
    (copied / "metrics.jsonl").write_bytes(run.metrics_path.read_bytes())
    out = tmp_path / "copied.png"
    assert plot_cli([str(copied), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert plot_cli([str(empty), "--out", str(out)]) == 2
    assert "no metrics.jsonl" in capsys.readouterr().err
