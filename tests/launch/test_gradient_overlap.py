"""launch.tools.gradient_overlap: how alike the policy's gradients at different states are."""

from __future__ import annotations

import json

import pytest
import torch

from launch.cli import EXIT_BAD_INPUT
from launch.impala.config import TrainConfig
from launch.tools.gradient_overlap import cli, mean_gradient_cosine, policy_gradient_overlap
from tests.launch.helpers import cartpole_policy, save_policy_checkpoint


def test_mean_cosine_over_pairs_of_rows():
    assert mean_gradient_cosine(torch.tensor([[1.0, 0.0], [0.0, 2.0]])) == pytest.approx(0.0)
    assert mean_gradient_cosine(torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])) == pytest.approx(1.0)
    assert mean_gradient_cosine(torch.tensor([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]])) == pytest.approx(-1 / 3)
    with pytest.raises(ValueError, match="at least 2"):
        mean_gradient_cosine(torch.ones(1, 3))


def test_tanh_and_orthogonal_initialisation_tell_cartpole_states_apart():
    """The untrained default MLP moves every state's policy alike (cosines about 0.97 on
    CartPole); PPO's tanh layers with orthogonal weights far less (about 0.35)."""
    overlaps = {}
    for name, extra in {"relu": {}, "tanh": {"mlp_activation": "tanh", "orthogonal_init": True}}.items():
        config = TrainConfig(env="CartPole-v1", core="none", **extra)
        torch.manual_seed(0)
        overlaps[name] = policy_gradient_overlap(config, cartpole_policy(config).state_dict(), states=12,
                                                 warmup_steps=15, seed=3)
    assert overlaps["relu"] > 0.85
    assert overlaps["tanh"] < 0.65


def test_cli_for_flags_and_for_a_checkpoint(tmp_path, capsys):
    assert cli(["--flags", "--env CartPole-v1 --core none --hidden-size 16", "--inits", "2", "--states", "4",
                "--warmup-steps", "3"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [row["agent"] for row in rows] == ["init seed 0", "init seed 1"]
    assert all(-1.0 <= row["overlap"] <= 1.0 for row in rows)
    config = TrainConfig(env="CartPole-v1", core="lstm", hidden_size=16)
    save_policy_checkpoint(tmp_path / "run", 100, cartpole_policy(config), config)
    assert cli(["--checkpoint", str(tmp_path / "run"), "--states", "3", "--warmup-steps", "2"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(rows) == 1 and rows[0]["agent"].endswith(".pt")


def test_bad_input_names_the_problem(capsys):
    assert cli(["--states", "3"]) == EXIT_BAD_INPUT
    assert "give either --flags" in capsys.readouterr().err
    assert cli(["--flags", "--env CartPole-v1", "--states", "1"]) == EXIT_BAD_INPUT
    assert "--states must be >= 2" in capsys.readouterr().err
