"""launch.tools.loss_balance: each loss term's gradient on the layers both heads share."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from agents.loss import impala_loss
from launch.impala.config import TrainConfig
from launch.impala.learner import loss_config
from launch.impala.rollout import record_unroll
from launch.tools.loss_balance import balance_row, batch_columns, cli, loss_gradients, shared_parameter_names
from tests.launch.helpers import cartpole_policy, save_policy_checkpoint

CONFIG = TrainConfig(env="CartPole-v1", hidden_size=32, envs_per_actor=6, batch_size=6, unroll_length=5)


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(0)
    policy = cartpole_policy(CONFIG)
    trajectory, state, _, _ = record_unroll(CONFIG, policy.state_dict(), games=6, steps=5, seed=3, warmup_unrolls=2)
    return policy, trajectory, state


def test_shared_parameters_are_all_but_the_heads(batch) -> None:
    policy, _, _ = batch
    shared = shared_parameter_names(policy)
    heads = [name for name, _ in policy.named_parameters() if name not in shared]
    assert sorted(heads) == ["action_head.linear.bias", "action_head.linear.weight", "value_head.bias",
                             "value_head.weight"]
    assert any(name.startswith("core.") for name in shared) and any(name.startswith("encoder") for name in shared)


def test_terms_add_up_to_the_learners_gradient_and_reach_only_their_heads(batch) -> None:
    policy, trajectory, state = batch
    settings = dataclasses.replace(loss_config(CONFIG), entropy_cost=0.05)
    gradients = loss_gradients(policy, trajectory, state, settings)
    policy.zero_grad()
    impala_loss(policy, trajectory, state, settings).total.backward()
    for name, parameter in policy.named_parameters():
        total = sum(gradients.gradients[term][name] for term in ("policy", "value", "entropy"))
        # three float32 passes against one: allow rounding relative to the layer's largest gradient
        scale = float(parameter.grad.abs().max()) + 1e-6
        torch.testing.assert_close(total, parameter.grad, atol=1e-5 * scale, rtol=1e-4)
    terms = gradients.gradients
    assert terms["value"]["action_head.linear.weight"].abs().max() < 1e-6  # the value loss never reaches the policy head
    assert terms["policy"]["value_head.weight"].abs().max() == 0 and terms["entropy"]["value_head.weight"].abs().max() == 0
    shared = shared_parameter_names(policy)
    assert min(gradients.norm(term, shared) for term in ("policy", "value", "entropy")) > 0


def test_the_value_term_scales_with_baseline_cost_and_the_policy_term_does_not(batch) -> None:
    policy, trajectory, state = batch
    shared = shared_parameter_names(policy)
    settings = loss_config(CONFIG)
    once = loss_gradients(policy, trajectory, state, settings)
    twice = loss_gradients(policy, trajectory, state, dataclasses.replace(settings, baseline_cost=2 * settings.baseline_cost))
    assert twice.norm("value", shared) == pytest.approx(2 * once.norm("value", shared), rel=1e-4)
    assert twice.norm("policy", shared) == pytest.approx(once.norm("policy", shared), rel=1e-6)
    assert once.cosine("value", "value", shared) == pytest.approx(1.0)


def test_batch_columns_keep_the_games_asked_for(batch) -> None:
    _, trajectory, state = batch
    part, part_state = batch_columns(trajectory, state, slice(2, 5))
    assert part.obs.shape == (6, 3, 4) and part.action.shape == (5, 3)
    assert torch.equal(part.reward, trajectory.reward[:, 2:5])
    assert all(torch.equal(piece, whole[2:5]) for piece, whole in zip(part_state, state))


def test_balance_row_averages_learner_sized_batches(batch) -> None:
    policy, _, _ = batch
    row = balance_row(CONFIG, policy.state_dict(), batches=2, warmup_unrolls=1, seed=0)
    assert set(row) == {"policy_norm", "value_norm", "entropy_norm", "value_over_policy", "cosine_policy_value"}
    assert row["policy_norm"] > 0 and row["value_norm"] > 0 and -1.0 <= row["cosine_policy_value"] <= 1.0


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("balance") / "run"
    torch.manual_seed(0)
    policy = cartpole_policy(CONFIG)
    for step in (100, 200, 300):
        save_policy_checkpoint(run, step, policy, CONFIG)
    return run


def test_cli_prints_a_table_and_json(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["--run", str(run_dir), "--from-step", "150", "--batches", "1", "--warmup-unrolls", "0"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "both heads share" in lines[0] and "value/policy" in lines[1]
    rows = json.loads(lines[-1])
    assert [row["step"] for row in rows] == [200, 300]
    assert rows[0]["value_norm"] == pytest.approx(rows[1]["value_norm"])  # same weights, same seed
    assert cli(["--run", str(run_dir), "--every", "2", "--batches", "1"]) == 0
    assert [row["step"] for row in json.loads(capsys.readouterr().out.strip().splitlines()[-1])] == [100, 300]


def test_cli_refuses_bad_counts_and_non_runs(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["--run", str(run_dir), "--batches", "0"]) == 2
    assert "--batches must be >= 1" in capsys.readouterr().err
    assert cli(["--run", str(run_dir), "--warmup-unrolls", "-1"]) == 2
    assert "--warmup-unrolls must be >= 0" in capsys.readouterr().err
    assert cli(["--run", str(tmp_path)]) == 2
    assert "no checkpoints" in capsys.readouterr().err
    assert cli(["--run", str(run_dir), "--from-step", "400"]) == 2
    assert "0 checkpoint(s) between steps 400 and None" in capsys.readouterr().err
