"""Gymnasium contract of the single Mini PacMan env, for every registered id."""

from __future__ import annotations

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers the ids)
from envs.minipacman import MiniPacmanEnv

PACMAN_IDS = (
    "rmc/MiniPacman-v0",
    "rmc/MiniPacmanAvoid-v0",
    "rmc/MiniPacmanHunt-v0",
    "rmc/MiniPacmanAmbush-v0",
    "rmc/MiniPacmanRush-v0",
    "rmc/MiniPacmanViewport-v0",
)


def rollout(env: gym.Env, seed: int, steps: int) -> tuple[list[np.ndarray], list[float], list[bool]]:
    """Observations, rewards and done flags of a seeded random rollout with resets."""
    observation, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    observations, rewards, dones = [observation], [], []
    for _ in range(steps):
        observation, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        observations.append(observation)
        rewards.append(reward)
        dones.append(terminated or truncated)
        if terminated or truncated:
            observation, _ = env.reset()
            observations.append(observation)
    return observations, rewards, dones


@pytest.mark.parametrize("env_id", PACMAN_IDS)
@pytest.mark.parametrize("render_mode", [None, "rgb_array"])
def test_check_env_passes_without_warnings(env_id, render_mode):
    env = gym.make(env_id, render_mode=render_mode)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped, skip_render_check=render_mode is None)
    assert [str(w.message) for w in caught] == []
    env.close()


@pytest.mark.parametrize("env_id", PACMAN_IDS)
def test_observations_match_the_declared_space(env_id):
    env = gym.make(env_id)
    observations, _, _ = rollout(env, seed=2, steps=200)
    for observation in observations:
        assert observation.dtype == np.uint8 and env.observation_space.contains(observation)
    expected = (5, 5, 3) if "Viewport" in env_id else (15, 19, 3)
    assert env.observation_space.shape == expected


@pytest.mark.parametrize("env_id", PACMAN_IDS)
def test_same_seed_same_trajectory(env_id):
    first = rollout(gym.make(env_id), seed=11, steps=300)
    second = rollout(gym.make(env_id), seed=11, steps=300)
    assert all(np.array_equal(a, b) for a, b in zip(first[0], second[0], strict=True))
    assert first[1] == second[1] and first[2] == second[2]


def test_different_seeds_give_different_levels():
    starts = {gym.make("rmc/MiniPacman-v0").reset(seed=seed)[0].tobytes() for seed in range(20)}
    assert len(starts) == 20


def test_reset_without_seed_continues_the_stream():
    env = MiniPacmanEnv()
    first, _ = env.reset(seed=4)
    second, _ = env.reset()
    again = MiniPacmanEnv()
    again.reset(seed=4)
    assert not np.array_equal(first, second)
    assert np.array_equal(again.reset()[0], second)


def test_frame_cap_truncates():
    env = MiniPacmanEnv(frame_cap=3)
    env.reset(seed=0)
    env.set_state(ghosts=[], food=[])
    flags = [env.step(0)[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]


def test_no_frame_cap():
    env = MiniPacmanEnv(frame_cap=None)
    env.reset(seed=0)
    env.set_state(ghosts=[], food=[])
    for _ in range(3100):
        _, _, terminated, truncated, _ = env.step(0)
        assert not (terminated or truncated)


def test_default_frame_cap_is_3000():
    assert MiniPacmanEnv().frame_cap == 3000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "chase"}, "mode must be one of .* got 'chase'"),
        ({"viewport": 4}, "viewport must be .* got 4"),
        ({"viewport": 0}, "viewport must be .* got 0"),
        ({"viewport": True}, "viewport must be .* got True"),
        ({"viewport": 5.0}, "viewport must be .* got 5.0"),
        ({"frame_cap": 0}, "frame_cap must be .* got 0"),
        ({"frame_cap": 2.5}, "frame_cap must be .* got 2.5"),
        ({"render_mode": "ansi"}, "render_mode must be one of .* got 'ansi'"),
    ],
)
def test_invalid_kwargs_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MiniPacmanEnv(**kwargs)


@pytest.mark.parametrize("action", [5, -1, 1.0, "left", None])
def test_invalid_actions_raise(action):
    env = MiniPacmanEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must be an int in \[0, 5\)"):
        env.step(action)


def test_numpy_integer_actions_are_accepted():
    env = MiniPacmanEnv()
    env.reset(seed=0)
    env.step(np.int64(1))
    env.step(np.uint8(2))


def test_step_before_reset_raises():
    with pytest.raises(RuntimeError, match="reset"):
        MiniPacmanEnv().step(0)


@pytest.mark.parametrize("env_id", PACMAN_IDS)
def test_pickling_preserves_the_game(env_id):
    env = gym.make(env_id).unwrapped
    env.reset(seed=3)
    for action in (1, 2, 3):
        env.step(action)
    clone = pickle.loads(pickle.dumps(env))
    for action in (4, 4, 1, 0, 2):
        first = env.step(action)
        second = clone.step(action)
        assert np.array_equal(first[0], second[0]) and first[1:4] == second[1:4]


def test_rgb_array_render_is_crisp_and_upscaled():
    env = gym.make("rmc/MiniPacman-v0", render_mode="rgb_array")
    observation, _ = env.reset(seed=0)
    picture = env.render()
    assert picture.shape == (15 * 32, 19 * 32, 3) and picture.dtype == np.uint8
    # the interior of every cell is the observation's colour, uniformly
    interior = picture.reshape(15, 32, 19, 32, 3)[:, :31, :, :31]
    assert np.all(interior == observation[:, None, :, None, :])


def test_rgb_array_render_of_the_viewport_variant_dims_the_outside():
    env = gym.make("rmc/MiniPacmanViewport-v0", render_mode="rgb_array")
    env.reset(seed=0)
    board = env.unwrapped.board
    row, col = env.unwrapped.pacman_position
    cells = env.render()[::32, ::32]
    assert np.array_equal(cells[row, col], board[row, col])
    far = (0, 0) if row > 7 or col > 9 else (14, 18)
    if max(abs(far[0] - row), abs(far[1] - col)) > 2:
        assert np.array_equal(cells[far], board[far] // 2)


def test_human_render_under_a_dummy_video_driver(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    env = gym.make("rmc/MiniPacman-v0", render_mode="human")
    env.unwrapped.metadata = {**env.unwrapped.metadata, "render_fps": 1000}
    env.reset(seed=0)
    for _ in range(3):
        env.step(env.action_space.sample())
    window = env.unwrapped._window
    assert window is not None and window._screen is not None
    assert window._screen.get_size() == (19 * 32 + 220, 15 * 32)
    env.close()
    assert env.unwrapped._window is None


def test_render_without_mode_warns_and_returns_none():
    env = MiniPacmanEnv()
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None


@pytest.mark.parametrize("viewport", [1, 3, 5, 7, 31])
def test_viewport_is_the_window_centred_on_pacman(viewport):
    env = MiniPacmanEnv(viewport=viewport)
    full = MiniPacmanEnv()
    for seed in range(5):
        observation, _ = env.reset(seed=seed)
        full_observation, _ = full.reset(seed=seed)
        radius = viewport // 2
        padded = np.empty((15 + 2 * radius, 19 + 2 * radius, 3), dtype=np.uint8)
        padded[:] = 255  # outside the map: wall
        padded[radius : radius + 15, radius : radius + 19] = full_observation
        row, col = env.pacman_position
        assert np.array_equal(observation, padded[row : row + viewport, col : col + viewport])
        assert tuple(observation[radius, radius]) == (0, 255, 0)


def test_viewport_in_a_corner_shows_walls_outside_the_map():
    env = MiniPacmanEnv(viewport=5)
    env.reset(seed=0)
    env.set_state(pacman=(1, 1), food=[(1, 2)], pills=[(2, 1)], ghosts=[])
    observation = env._observation()
    assert np.all(observation[:2] == 255) and np.all(observation[:, :2] == 255)
    assert tuple(observation[2, 2]) == (0, 255, 0)
    assert tuple(observation[2, 3]) == (0, 0, 255)
    assert tuple(observation[3, 2]) == (0, 255, 255)


def test_info_reports_the_state():
    env = MiniPacmanEnv()
    _, info = env.reset(seed=0)
    assert set(info) == {
        "level", "power", "food_left", "pills_left", "pill_positions", "ghost_positions",
        "ate_food", "ate_pill", "ghosts_eaten", "killed", "level_cleared",
    }  # fmt: skip
    board = env.board
    for row, col in info["ghost_positions"]:
        assert tuple(board[row, col]) in {(255, 0, 0), (0, 255, 0)}
    for row, col in info["pill_positions"]:
        assert tuple(board[row, col]) in {(0, 255, 255), (0, 255, 0), (255, 0, 0)}
