"""launch.tools.memory_cue: MiniGrid Memory's success split by whether the cue starts in view."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest
import torch

from launch.cli import EXIT_BAD_INPUT
from launch.impala.config import TrainConfig
from launch.impala.env_factory import make_single_env
from launch.impala.policy_factory import build_policy
from launch.tools.memory_cue import CueAtStart, CueInView, cli, success_by_start
from tests.launch.helpers import cartpole_policy, save_policy_checkpoint

minigrid = pytest.importorskip("minigrid")  # registers the MiniGrid envs


def test_the_wrapper_reports_the_start_and_the_success_at_the_episodes_end():
    env = CueInView(gym.make("MiniGrid-MemoryS7-v0"))
    kinds = set()
    for seed in range(12):
        _, info = env.reset(seed=seed)
        start_x = int(env.unwrapped.agent_pos[0])
        assert info["cue_in_view"] == (start_x == 1)  # only the leftmost start cell shows the cue
        kinds.add(info["cue_in_view"])
        done = False
        while not done:
            _, reward, terminated, truncated, info = env.step(env.action_space.sample())
            done = terminated or truncated
            assert ("success" in info) == done
        assert info["success"] == float(reward > 0)
    assert kinds == {True, False}
    env.close()


def test_cue_at_start_starts_every_episode_with_the_cue_in_view():
    env = CueInView(CueAtStart(gym.make("MiniGrid-MemoryS7-v0")))
    cues = set()
    for seed in range(12):
        _, info = env.reset(seed=seed)
        assert info["cue_in_view"] and int(env.unwrapped.agent_pos[0]) == 1
        cues.add(type(env.unwrapped.grid.get(1, env.unwrapped.height // 2 - 1)).__name__)
    assert cues == {"Key", "Ball"}  # the cue itself is still drawn at random
    env.close()


def test_success_by_start_reads_the_grouped_summary_and_names_a_kind_not_played():
    summary = {"episodes": 4, "success_rate": 0.75, "success_ci95": [0.3, 0.95],
               "groups": [{"value": True, "episodes": 2, "success_rate": 1.0, "success_ci95": [0.34, 1.0]}]}
    table = success_by_start(summary)
    assert table["all"] == {"episodes": 4, "success": 0.75, "ci95": [0.3, 0.95]}
    assert table["cue in view"] == {"episodes": 2, "success": 1.0, "ci95": [0.34, 1.0]}
    assert table["cue behind"]["episodes"] == 0


def test_cli_plays_a_memory_checkpoint_and_refuses_other_envs(tmp_path, capsys):
    config = TrainConfig(env="MiniGrid-MemoryS7-v0", env_package=["minigrid"], core="lstm", hidden_size=16)
    env = make_single_env(config.env, env_packages=config.env_package)
    torch.manual_seed(0)
    policy = build_policy(config, env.observation_space, env.action_space)
    env.close()
    save_policy_checkpoint(tmp_path / "memory", 100, policy, config)
    assert cli(["--checkpoint", str(tmp_path / "memory"), "--episodes", "6"]) == 0
    table = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert table["all"]["episodes"] == 6
    assert table["cue in view"]["episodes"] + table["cue behind"]["episodes"] == 6
    cartpole = TrainConfig(env="CartPole-v1", core="none", hidden_size=16)
    save_policy_checkpoint(tmp_path / "cartpole", 100, cartpole_policy(cartpole), cartpole)
    assert cli(["--checkpoint", str(tmp_path / "cartpole"), "--episodes", "2"]) == EXIT_BAD_INPUT
    assert "is not a MiniGrid Memory env" in capsys.readouterr().err
