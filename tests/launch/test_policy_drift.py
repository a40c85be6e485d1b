"""launch.policy_drift: a run's checkpoints compared on one recorded unroll."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from launch.checkpoint import CheckpointError, checkpoints_in_range
from launch.config import TrainConfig
from launch.policy_drift import cli, drift_table, kl_divergence
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


def test_cli_prints_a_table_and_json_for_a_step_range(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["--run", str(run_dir), "--from-step", "150", "--games", "4", "--steps", "20", "--samples", "4"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("2 checkpoints of") and "KL prev" in lines[1]
    assert [row["step"] for row in json.loads(lines[-1])] == [200, 300]


def test_cli_refuses_too_few_checkpoints_and_non_runs(run_dir: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["--run", str(run_dir), "--from-step", "250"]) == 2
    assert "1 checkpoint(s) between steps 250 and None" in capsys.readouterr().err
    assert cli(["--run", str(tmp_path)]) == 2
    assert "no checkpoints" in capsys.readouterr().err
    assert cli(["--run", str(run_dir), "--games", "0"]) == 2
    assert "--games must be >= 1" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="span steps 100 .. 300"):
        checkpoints_in_range(run_dir, 301, None)
