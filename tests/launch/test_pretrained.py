"""The agents shipped in pretrained/: they load, play, and the README's watch command works;
launch.tools.export_policy, which wrote them, keeps the weights and drops the rest."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import torch

from launch.evaluate import evaluate
from launch.impala.checkpoint import load_checkpoint, save_checkpoint
from launch.impala.config import TrainConfig
from launch.impala.trained import load_trained
from launch.tools.export_policy import cli as export_cli
from launch.watch import cli as watch_cli

REPO = Path(__file__).resolve().parents[2]
PRETRAINED = sorted((REPO / "pretrained").glob("*.pt"))


@pytest.fixture(autouse=True)
def headless(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")


def test_the_shipped_agents_are_small_and_cover_both_games() -> None:
    names = {path.stem for path in PRETRAINED}
    assert {"boxworld-easy-rmc", "minipacman-rmc"} <= names
    assert sum(path.stat().st_size for path in PRETRAINED) < 8e6


@pytest.mark.parametrize("path", PRETRAINED, ids=lambda path: path.stem)
def test_a_shipped_agent_loads_and_beats_chance(path: Path) -> None:
    config, model_state = load_trained(path)
    assert set(load_checkpoint(path)) == {"config", "model", "counters", "note"}  # weights only
    trained = evaluate(config, model_state, episodes=16, num_envs=8, deterministic=False, seed=7)
    chance = evaluate(config, None, episodes=16, num_envs=8, deterministic=False, seed=7)
    assert trained["mean_return"] > chance["mean_return"]


def test_the_readme_watch_command_plays_a_shipped_agent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = (REPO / "README.md").read_text()
    commands = re.findall(r"^\.venv/bin/python -m launch\.watch (--checkpoint pretrained/\S+.*)$", readme, re.MULTILINE)
    assert commands, "the README shows how to watch a shipped agent"
    for command in commands:
        argv = shlex.split(command.split("#")[0])
        assert (REPO / argv[1]).is_file()
        argv[1] = str(REPO / argv[1])
        if "--record" in argv:
            argv[argv.index("--record") + 1] = str(tmp_path / "agent.gif")
        else:
            argv += ["--record", str(tmp_path / "agent.gif")]
        assert watch_cli(argv + ["--max-steps", "6", "--episodes", "1"]) == 0
        assert (tmp_path / "agent.gif").stat().st_size > 0


def test_export_keeps_config_and_weights_and_drops_the_optimiser(tmp_path: Path, capsys) -> None:
    config = TrainConfig(env="CartPole-v1", core="none", hidden_size=8)
    model = {"layer.weight": torch.arange(6.0).reshape(2, 3)}
    save_checkpoint(tmp_path / "run" / "checkpoints", 300, {
        "config": json.dumps(config.to_json()), "model": model, "counters": {"step": 300},
        "optimizer": {"state": {}}, "learner": {"kl_factor": 1.0}}, keep=1)
    out = tmp_path / "shared" / "cartpole.pt"
    assert export_cli(["--checkpoint", str(tmp_path / "run"), "--out", str(out), "--note", "evaluated 500.0"]) == 0
    exported = load_checkpoint(out)
    assert set(exported) == {"config", "model", "counters", "note"} and exported["note"] == "evaluated 500.0"
    assert torch.equal(exported["model"]["layer.weight"], model["layer.weight"])
    assert load_trained(out)[0] == config
    assert export_cli(["--checkpoint", str(tmp_path / "run"), "--out", str(tmp_path / "x.bin")]) == 2
    assert "--out must be a path ending in .pt" in capsys.readouterr().err
