"""launch.tools.memory_cue: MiniGrid Memory's success split by whether the cue starts in view."""

from __future__ import annotations

import json

import pytest
import torch

from launch.cli import EXIT_BAD_INPUT
from launch.impala.config import TrainConfig
from launch.impala.env_factory import make_single_env
from launch.impala.policy_factory import build_policy
from launch.tools.memory_cue import cli, split_rates
from tests.launch.helpers import cartpole_policy, save_policy_checkpoint

pytest.importorskip("minigrid")


def test_split_rates_group_the_episodes_by_their_start():
    table = split_rates([(True, True), (True, True), (False, True), (False, False)])
    assert table["all"]["episodes"] == 4 and table["all"]["success"] == 0.75
    assert table["cue in view"]["success"] == 1.0 and table["cue behind"]["success"] == 0.5
    low, high = table["cue behind"]["ci95"]
    assert 0.0 < low < 0.5 < high < 1.0


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
