"""Learning runs (slow, outside the default suite: ``pytest -m slow tests/launch``).

The 20-minute runs are the games' targets on a 2-core CPU (docs/results.md); run them on a
quiet machine. Each trains through the command line a user would type, then measures
the result with ``launch.evaluate``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.launch.helpers import run

pytestmark = pytest.mark.slow

TWENTY_MINUTES = 20 * 60


def evaluate(*arguments: str, timeout: float = 1200) -> dict:
    result = run("launch.evaluate", *arguments, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(600)
def test_cartpole_learns(tmp_path: Path) -> None:
    result = run("launch.train", "--env", "CartPole-v1", "--core", "none", "--hidden-size", "64", "--num-actors", "1",
                 "--envs-per-actor", "8", "--batch-size", "8", "--unroll-length", "20", "--optimizer", "adam",
                 "--learning-rate", "0.001", "--loss-reduction", "mean", "--lr-schedule", "constant",
                 "--total-steps", "250000", "--runs-root", str(tmp_path), "--run-name", "cartpole", timeout=540)
    assert result.returncode == 0, result.stdout + result.stderr
    random_policy = evaluate("--random", "--env", "CartPole-v1", "--episodes", "50")
    trained = evaluate("--checkpoint", str(tmp_path / "cartpole"), "--episodes", "50")
    assert trained["mean_return"] >= 4 * random_policy["mean_return"]


@pytest.mark.timeout(TWENTY_MINUTES + 900)
def test_easy_boxworld_reaches_90_percent_success_within_20_minutes(tmp_path: Path) -> None:
    # the preset as docs/results.md runs it: 2 actor processes beside the learner on 2 cores
    result = run("launch.train", "--preset", "boxworld-easy-rmc", "--time-limit-s", str(TWENTY_MINUTES),
                 "--runs-root", str(tmp_path), "--run-name", "easy", timeout=TWENTY_MINUTES + 300)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = evaluate("--checkpoint", str(tmp_path / "easy"), "--episodes", "200")
    assert summary["success_rate"] >= 0.9, summary


@pytest.mark.timeout(TWENTY_MINUTES + 900)
def test_minipacman_beats_a_random_policy_threefold_within_20_minutes(tmp_path: Path) -> None:
    result = run("launch.train", "--preset", "minipacman-rmc", "--time-limit-s", str(TWENTY_MINUTES),
                 "--runs-root", str(tmp_path), "--run-name", "pacman", timeout=TWENTY_MINUTES + 300)
    assert result.returncode == 0, result.stdout + result.stderr
    random_policy = evaluate("--random", "--env", "rmc/MiniPacman-v0", "--episodes", "200")
    trained = evaluate("--checkpoint", str(tmp_path / "pacman"), "--episodes", "200")
    assert trained["mean_return"] >= 3 * random_policy["mean_return"], (trained, random_policy)
