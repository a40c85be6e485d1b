"""launch.tools.policy_drift: a run's checkpoints compared on one recorded unroll."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from agents.trajectory import Trajectory
from launch.impala.checkpoint import CheckpointError, checkpoints_in_range
from launch.impala.config import TrainConfig
from launch.impala.env_factory import make_vector_env
from launch.impala.policy_factory import build_policy
from launch.tools.policy_drift import attention_spread, centred_input_logits, cli, drift_table, kl_divergence
from rmc_core import RelationalMemory
from tests.launch.helpers import cartpole_policy, save_policy_checkpoint

CONFIG = TrainConfig(env="CartPole-v1", hidden_size=32)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Checkpoints at steps 100 and 200 hold the same weights; at 300 the first action's logit is 2 higher."""
    run = tmp_path_factory.mktemp("drift") / "run"
    torch.manual_seed(0)
    policy = cartpole_policy(CONFIG)
    for step in (100, 200, 300):
        if step == 300:
            with torch.no_grad():
                policy.action_head.linear.bias[0] += 2.0
        save_policy_checkpoint(run, step, policy, CONFIG)
    return run


def test_kl_estimate_matches_the_exact_divergence() -> None:
    policy = cartpole_policy(CONFIG)
    generator = torch.Generator().manual_seed(1)
    earlier, later = torch.randn(2, 40, 50, 2, generator=generator)  # [T, B, 2] logits of two policies
    mask = torch.ones(40, 50, dtype=torch.bool)
    mask[:, :10] = False  # masked states count for nothing
    later[:, :10] = 50.0 * torch.tensor([1.0, -1.0])
    p, q = torch.log_softmax(earlier, -1), torch.log_softmax(later, -1)
    exact = float((p.exp() * (p - q)).sum(-1)[:, 10:].mean())
    torch.manual_seed(2)
    assert kl_divergence(policy, earlier, later, mask, samples=64) == pytest.approx(exact, rel=0.05)
    assert kl_divergence(policy, earlier, earlier, mask, samples=4) == 0.0


def test_drift_table_sees_the_changed_checkpoint_only(run_dir: Path) -> None:
    rows = drift_table(checkpoints_in_range(run_dir), games=4, steps=30, seed=0, samples=8)
    assert [row["step"] for row in rows] == [100, 200, 300]
    assert rows[0]["kl_from_previous"] is None and rows[0]["kl_from_first"] is None
    assert rows[1]["kl_from_previous"] == 0.0 and rows[1]["kl_from_first"] == 0.0
    assert rows[2]["kl_from_previous"] > 0.05 and rows[2]["kl_from_first"] == pytest.approx(rows[2]["kl_from_previous"],
                                                                                              rel=0.3)
    assert rows[2]["action_probs"][0] > rows[1]["action_probs"][0] + 0.2  # the raised logit's action
    for row in rows:
        assert sum(row["action_probs"]) == pytest.approx(1.0, abs=1e-3)
        assert 0.0 <= row["entropy"] <= 0.6932
        assert "attention_content" not in row  # an LSTM core has no attention


def test_cli_prints_a_table_and_json_for_a_step_range(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["--run", str(run_dir), "--from-step", "150", "--games", "4", "--steps", "20", "--samples", "4"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("2 checkpoints of") and "KL prev" in lines[1]
    assert [row["step"] for row in json.loads(lines[-1])] == [200, 300]
    assert cli(["--run", str(run_dir), "--every", "2", "--games", "2", "--steps", "5", "--samples", "2"]) == 0
    assert [row["step"] for row in json.loads(capsys.readouterr().out.strip().splitlines()[-1])] == [100, 300]


def test_cli_refuses_too_few_checkpoints_and_non_runs(run_dir: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["--run", str(run_dir), "--from-step", "250"]) == 2
    assert "1 checkpoint(s) between steps 250 and None" in capsys.readouterr().err
    assert cli(["--run", str(tmp_path)]) == 2
    assert "no checkpoints" in capsys.readouterr().err
    assert cli(["--run", str(run_dir), "--games", "0"]) == 2
    assert "--games must be >= 1" in capsys.readouterr().err
    assert cli(["--run", str(run_dir), "--every", "0"]) == 2
    assert "--every must be >= 1, got 0" in capsys.readouterr().err
    assert cli(["--run", str(run_dir), "--from-step", "150", "--every", "2"]) == 2
    assert "1 checkpoint(s) (taking every 2) between steps 150" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="span steps 100 .. 300"):
        checkpoints_in_range(run_dir, 301, None)


SLOTS, ROWS = 2, 5


class AttentionStub:
    """A policy whose unroll returns given attention weights ``[T+1, B, 1, 1, N+R, N+R]``;
    its observations are the game indices, so a pass over some games gets theirs."""

    def __init__(self, weights: torch.Tensor) -> None:
        self.core = RelationalMemory(input_size=4, mem_slots=SLOTS, head_size=4, num_heads=1)
        self.weights = weights

    def unroll(self, obs, previous_action, previous_reward, reset, state, return_attention=False):
        assert return_attention and state[0].shape[0] == obs.shape[1]
        return SimpleNamespace(attention=self.weights[:, obs[0]]), state


def stub_inputs(logits: torch.Tensor) -> tuple[AttentionStub, Trajectory, tuple[torch.Tensor]]:
    """Softmax weights from ``[T+1, B, R]`` input-row logits; the memory rows' own logits are random
    (they change only the softmax's normaliser)."""
    steps, games = logits.shape[:2]
    memory_logits = torch.randn(steps, games, 1, 1, SLOTS + ROWS, SLOTS)
    input_logits = logits[:, :, None, None, None, :].expand(-1, -1, 1, 1, SLOTS + ROWS, -1)
    weights = torch.softmax(torch.cat([memory_logits, input_logits], -1), -1)
    flags = torch.zeros(steps, games, dtype=torch.bool)
    zeros = torch.zeros(steps, games)
    trajectory = Trajectory(torch.arange(games).expand(steps, -1), flags, zeros, zeros, zeros[1:], zeros[1:],
                            zeros[1:], flags[1:], flags[1:])
    return AttentionStub(weights), trajectory, (torch.zeros(games, SLOTS, 4),)


def test_centred_logits_cancel_the_softmax_normaliser() -> None:
    logits = torch.randn(3, 4, 1, 2, SLOTS + ROWS, SLOTS + ROWS, dtype=torch.float64)
    centred = centred_input_logits(torch.softmax(logits, -1), SLOTS)  # [3, 4, 1*2*SLOTS, ROWS]
    to_inputs = logits[..., :SLOTS, SLOTS:].flatten(-4, -2)
    assert centred.shape == (3, 4, 2 * SLOTS, ROWS)
    torch.testing.assert_close(centred, to_inputs - to_inputs.mean(-1, keepdim=True))


def test_attention_tied_to_positions_has_no_content_part() -> None:
    place = torch.tensor([2.0, -1.0, 0.5, 0.0, 3.0])
    stub, trajectory, state = stub_inputs(place.expand(7, 6, -1))
    parts = attention_spread(stub, trajectory, state, torch.ones(6, 6, dtype=torch.bool), games_per_pass=4)
    assert parts["attention_content"] == pytest.approx(0.0, abs=1e-6)
    assert parts["attention_position"] == pytest.approx(float(place.var(unbiased=False)), rel=1e-5)


def test_attention_following_content_has_no_position_part_and_masked_states_count_for_nothing() -> None:
    generator = torch.Generator().manual_seed(3)
    half = torch.randn(7, 3, ROWS, generator=generator)
    logits = torch.cat([half, -half], 1)  # games 3..5 mirror games 0..2: every row's mean over states is 0
    mask = torch.ones(6, 6, dtype=torch.bool)
    logits[3, 0] = torch.tensor([50.0, 0.0, 0.0, 0.0, 0.0])  # a masked state, and its mirror
    logits[3, 3] = -logits[3, 0]
    mask[3, 0] = mask[3, 3] = False
    stub, trajectory, state = stub_inputs(logits)
    parts = attention_spread(stub, trajectory, state, mask, games_per_pass=4)
    kept = logits[:6][mask]  # [kept states, R]
    expected = float((kept - kept.mean(-1, keepdim=True)).square().mean())
    assert parts["attention_position"] == pytest.approx(0.0, abs=1e-6)
    assert parts["attention_content"] == pytest.approx(expected, rel=1e-5)
    assert attention_spread(stub, trajectory, state, mask, games_per_pass=1) == pytest.approx(parts)


def test_drift_table_of_an_rmc_box_world_run_has_the_attention_parts(tmp_path: Path) -> None:
    config = TrainConfig(env="rmc/BoxWorldEasy-v0", core="rmc", hidden_size=16,
                         core_kwargs={"mem_slots": 2, "head_size": 8, "num_heads": 2, "gate_style": "memory"})
    env = make_vector_env(config.env, 1)
    torch.manual_seed(0)
    policy = build_policy(config, env.single_observation_space, env.single_action_space)
    env.close()
    for step in (100, 200):
        save_policy_checkpoint(tmp_path, step, policy, config)
    rows = drift_table(checkpoints_in_range(tmp_path), games=3, steps=6, seed=0, samples=2)
    assert rows[0]["attention_content"] > 0.0 and rows[0]["attention_position"] > 0.0
    assert rows[1]["attention_content"] == pytest.approx(rows[0]["attention_content"])
    assert rows[1]["attention_position"] == pytest.approx(rows[0]["attention_position"])
