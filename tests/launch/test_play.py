"""Smoke tests of the play script: headless random recording, keyboard sessions, key maps."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import imageio.v3 as iio
import pytest

import envs  # noqa: F401  (registers the ids)
from launch.play import PlayConfig, action_for_meanings, parse_args, play

ROOT = Path(__file__).resolve().parents[2]


def run_play(*args: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    return subprocess.run(
        [sys.executable, "-m", "launch.play", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("env_id", "extra", "board_cells"),
    [
        ("rmc/MiniPacman-v0", [], (15, 19)),
        ("rmc/BoxWorld-v0", ["--env-kwargs", '{"viewport": 5}'], (14, 14)),
    ],
)
def test_random_agent_records_a_gif_headless(tmp_path, env_id, extra, board_cells):
    gif = tmp_path / "new" / "dir" / "run.gif"
    result = run_play(env_id, "--agent", "random", "--steps", "40", "--seed", "3", "--record", str(gif), *extra)
    assert result.returncode == 0, result.stderr
    assert gif.exists() and f"to {gif.resolve()}" in result.stdout
    assert "wrote 4" in result.stdout  # 40 steps + first frame (+ one per reset)
    frames = iio.imread(gif, index=None)
    height, width = board_cells
    assert frames.shape[1:3] == (height * 8, width * 8)  # 32-pixel cells, every 4th pixel
    assert frames.shape[0] >= 2


def test_random_agent_prints_episode_returns(tmp_path):
    result = run_play(
        "rmc/MiniPacman-v0", "--agent", "random", "--steps", "60", "--seed", "0",
        "--record", str(tmp_path / "a.gif"), "--env-kwargs", '{"frame_cap": 20}',
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "episode 1: return" in result.stdout and "mean return" in result.stdout


def test_bad_env_kwargs_is_a_usage_error():
    result = run_play("rmc/MiniPacman-v0", "--env-kwargs", "[1, 2]")
    assert result.returncode == 2 and "--env-kwargs must be a JSON object" in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["rmc/Nope-v0"], "rmc/Nope-v0"),
    (["rmc/MiniPacman-v0", "--env-kwargs", '{"size": 3}'], "size"),
    (["rmc/MiniPacman-v0", "--agent", "random", "--record", "out.mp4"], "ending in .gif"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = run_play(*args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_key_maps_follow_each_games_action_names():
    pacman = gym.make("rmc/MiniPacman-v0")
    assert action_for_meanings(pacman) == {"up": 2, "down": 4, "left": 3, "right": 1, "stay": 0}
    boxworld = gym.make("rmc/BoxWorld-v0")
    assert action_for_meanings(boxworld) == {"up": 0, "down": 1, "left": 2, "right": 3}
    with_noop = gym.make("rmc/BoxWorld-v0", noop_action=True)
    assert action_for_meanings(with_noop)["stay"] == 4


def scripted(keys: list[str]):
    queue = list(keys)
    return lambda: queue.pop(0) if queue else None


def test_keyboard_session_in_a_dummy_window(monkeypatch, capsys):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    config = PlayConfig(env_id="rmc/MiniPacman-v0", seed=1, env_kwargs={"frame_cap": 3})
    returns = play(config, next_key=scripted(["right", "stay", "left", "up", "restart", "down", "quit", "right"]))
    assert len(returns) == 1  # frame cap 3 ended one episode; quit stopped before "right"
    output = capsys.readouterr().out
    assert "episode 1" in output and "restart after 1 steps" in output


def test_keyboard_session_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    gif = tmp_path / "keys.gif"
    config = PlayConfig(env_id="rmc/BoxWorld-v0", seed=0, record=str(gif))
    play(config, next_key=scripted(["up", "stay", "left", "right", "down"]))  # stay: no-op absent, ignored
    assert gif.exists()


def test_parse_args_builds_the_config():
    config = parse_args(["rmc/MiniPacmanHunt-v0", "--seed", "5", "--agent", "random", "--env-kwargs", '{"viewport": 5}'])
    assert config == PlayConfig(env_id="rmc/MiniPacmanHunt-v0", seed=5, agent="random", env_kwargs={"viewport": 5})


def test_record_path_must_be_a_gif(tmp_path):
    with pytest.raises(ValueError, match="ending in .gif"):
        play(PlayConfig(env_id="rmc/MiniPacman-v0", agent="random", record=str(tmp_path / "x.mp4")))


@pytest.mark.parametrize("env_id", envs.REGISTERED_IDS)
def test_every_registered_id_plays_and_records(tmp_path, env_id):
    assert {"up", "down", "left", "right"} <= set(action_for_meanings(gym.make(env_id)))
    gif = tmp_path / "run.gif"
    play(PlayConfig(env_id=env_id, agent="random", steps=5, seed=0, record=str(gif)))
    assert iio.imread(gif, index=None).shape[0] >= 2


def test_random_agent_without_recording_watches_in_the_game_window(monkeypatch, capsys):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    returns = play(PlayConfig(env_id="rmc/MiniPacman-v0", agent="random", steps=3, seed=0, env_kwargs={"frame_cap": 2}))
    assert len(returns) == 1 and "episode 1" in capsys.readouterr().out
