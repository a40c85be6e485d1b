"""launch.tools.boxworld_phases: the phases of Box-World episodes, recorded through evaluate's step hook."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from envs.boxworld_levels import BoxWorldLevelConfig
from launch.evaluate import cli as evaluate_cli
from launch.impala.checkpoint import save_checkpoint
from launch.impala.config import ConfigError, TrainConfig
from launch.impala.env_factory import make_vector_env
from launch.impala.policy_factory import build_policy
from launch.tools.boxworld_phases import (
    EpisodePhases,
    PhaseRecorder,
    cli,
    phase_summary,
    phases_by_solution_length,
    shortest_solution_lengths,
)


def save_policy(directory: Path, config: TrainConfig) -> Path:
    env = make_vector_env(config.env, 1, config.env_kwargs)
    policy = build_policy(config, env.single_observation_space, env.single_action_space)
    env.close()
    save_checkpoint(directory, 100, {"model": policy.state_dict(), "config": json.dumps(config.to_json()),
                                     "counters": {}}, keep=1)
    return directory


def step_info(steps: list[int], key: list[bool], lock: list[bool], success: list[bool] | None = None) -> dict:
    count = len(steps)
    info = {"steps": np.array(steps), "solution_length": np.array([1, 2][:count]),
            "key_picked": np.array(key), "correct_lock_opened": np.array(lock),
            "distractor_lock_opened": np.zeros(count, dtype=bool)}
    if success is not None:
        info["success"] = np.array(success)
    return info


def test_phase_summary_of_handmade_episodes() -> None:
    episodes = [
        EpisodePhases(1, True, 12, (("key", 4), ("lock", 10))),
        EpisodePhases(2, False, 120, (("key", 8), ("lock", 20), ("key", 21))),
        EpisodePhases(2, False, 120, ()),
        EpisodePhases(2, False, 30, (("key", 6), ("distractor", 30))),
    ]
    summary = phase_summary(episodes)
    assert summary["success_rate"] == 0.25 and summary["no_key_rate"] == 0.25 and summary["distractor_rate"] == 0.25
    assert summary["steps_to_first_key"][1] == 6  # median of 4, 8, 6
    assert summary["steps_key_to_lock"] == [7.5, 9.0, 10.5]  # of 10 - 4 and 20 - 8; the key at 21 opened nothing
    assert summary["solved_length_mean"] == 12
    split = phases_by_solution_length(episodes)
    assert list(split) == ["all", "1", "2"] and split["2"]["episodes"] == 3 and split["1"]["success_rate"] == 1.0


def test_recorder_keeps_counted_episodes_only_and_starts_each_afresh() -> None:
    recorder = PhaseRecorder(2)
    none = np.zeros(2, dtype=bool)
    recorder(step_info([1, 1], [True, False], [False, False]), none, none)
    recorder(step_info([2, 2], [False, True], [True, False]), none, none)
    # game 0 ends and counts; game 1 ends too but has played its quota
    recorder(step_info([3, 3], [False, False], [False, False], success=[True, False]),
             np.array([True, True]), np.array([True, False]))
    recorder(step_info([1, 1], [True, True], [False, False]), none, none)
    recorder(step_info([2, 2], [False, False], [False, False], success=[False, False]),
             np.array([True, True]), np.array([True, True]))
    assert recorder.episodes == [
        EpisodePhases(1, True, 3, (("key", 1), ("lock", 2))),
        EpisodePhases(1, False, 2, (("key", 1),)),
        EpisodePhases(2, False, 2, (("key", 1),)),  # game 1's uncounted first episode left nothing behind
    ]
    with pytest.raises(ConfigError, match="not a Box-World env"):
        recorder({"episode": {}}, none, none)


def test_shortest_solutions_grow_with_the_boxes_on_the_path() -> None:
    shortest = shortest_solution_lengths(BoxWorldLevelConfig.create(7, (1, 2), 0), count=200, seed=3)
    assert list(shortest) == ["all", "1", "2"]
    # one box: pick the loose key, open its lock, take the gem left of it: at least 3 actions
    assert 3 <= shortest["1"][0] <= shortest["1"][1] < shortest["2"][1] <= shortest["2"][2] <= 4 * 7
    assert shortest["1"][1] <= shortest["all"][1] <= shortest["2"][1]


def test_cli_plays_the_episodes_evaluate_plays(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = TrainConfig(env="rmc/BoxWorldEasy-v0", core="lstm", hidden_size=16, core_kwargs={"hidden_size": 16},
                         env_kwargs={"max_steps": 30})
    directory = save_policy(tmp_path / "box", config)
    arguments = ["--checkpoint", str(directory), "--episodes", "20", "--num-envs", "4", "--seed", "5"]
    assert cli(arguments) == 0
    output = capsys.readouterr().out.strip().splitlines()
    phases = json.loads(output[-1])["by_solution_length"]
    assert output[1].split()[:3] == ["boxes", "episodes", "success"]
    assert phases["all"]["episodes"] == 20 == sum(phases[key]["episodes"] for key in phases if key != "all")
    assert set(phases) <= {"all", "1", "2"} and phases["all"]["distractor_rate"] == 0.0
    assert all(summary["shortest_solution"][1] >= 3 for summary in phases.values())
    assert evaluate_cli(arguments) == 0
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert phases["all"]["success_rate"] == evaluated["success_rate"]
    for summary in phases.values():
        if summary["steps_to_first_key"] is not None:
            assert 1 <= summary["steps_to_first_key"][0] <= summary["steps_to_first_key"][2] <= 30


def test_cli_refuses_an_env_that_is_not_box_world(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = TrainConfig(env="CartPole-v1", core="lstm", hidden_size=8, core_kwargs={"hidden_size": 8})
    directory = save_policy(tmp_path / "cartpole", config)
    assert cli(["--checkpoint", str(directory), "--episodes", "2"]) == 2
    assert "not a Box-World env" in capsys.readouterr().err
