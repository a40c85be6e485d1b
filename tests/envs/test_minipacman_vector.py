"""The batch-native Mini PacMan vector env: equivalence with single envs, and its API."""

from __future__ import annotations

from collections import deque

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import envs  # noqa: F401  (registers the ids)
from envs.minipacman import MiniPacmanEnv
from envs.minipacman_rules import MOVES, WIDTH
from envs.minipacman_vector import MiniPacmanVectorEnv

INFO_SCALARS = ("level", "power", "food_left", "pills_left", "ate_food", "ate_pill", "ghosts_eaten", "killed", "level_cleared")
FOOD, PILL = (0, 0, 255), (0, 255, 255)


def scripted_action(env: MiniPacmanEnv, info: dict, rng: np.random.Generator) -> int:
    """A competent player, so that episodes reach level changes in every mode.

    Breadth-first search from Pac-Man around unsafe cells (dangerous ghosts and their
    neighbours) to the nearest target: pills (rush, and hunt/ambush while not powered),
    ghosts (hunt/ambush while powered), food (regular). In avoid it only flees. 10% of
    actions are random.
    """
    if rng.random() < 0.1:
        return int(rng.integers(5))
    start = env.pacman_position[0] * WIDTH + env.pacman_position[1]
    ghosts = {row * WIDTH + col for row, col in info["ghost_positions"]}
    powered = info["power"] > 2
    unsafe = set() if powered else {MOVES[g][a] for g in ghosts for a in range(5)}
    board = env.board.reshape(-1, 3)
    if env.mode == "rush" or (env.mode in ("hunt", "ambush") and not powered):
        targets = {row * WIDTH + col for row, col in info["pill_positions"]}
    elif env.mode in ("hunt", "ambush"):
        targets = ghosts
    elif env.mode == "regular":
        targets = {cell for cell in range(len(board)) if tuple(board[cell]) in (FOOD, PILL)}
    else:
        targets = set()
    first_action = {start: 0}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        if cell in targets and cell != start:
            return first_action[cell]
        for action in range(1, 5):
            nxt = MOVES[cell][action]
            if nxt not in first_action and nxt not in unsafe:
                first_action[nxt] = first_action[cell] or action
                queue.append(nxt)
    safe = [a for a in range(5) if MOVES[start][a] not in unsafe]
    return int(rng.choice(safe)) if safe else int(rng.integers(5))


def compare_rollouts(mode: str, viewport: int | None, frame_cap: int, num_envs: int, steps: int, seed: int) -> dict[str, int]:
    """Steps a vector env and ``num_envs`` single envs in lockstep and asserts they agree
    on everything; returns counts of the events seen, to prove coverage."""
    vector_env = MiniPacmanVectorEnv(num_envs, mode=mode, viewport=viewport, frame_cap=frame_cap)
    singles = [MiniPacmanEnv(mode=mode, viewport=viewport, frame_cap=frame_cap) for _ in range(num_envs)]
    vector_obs, vector_info = vector_env.reset(seed=seed)
    infos = []
    for index, env in enumerate(singles):
        observation, info = env.reset(seed=seed + index)
        assert np.array_equal(observation, vector_obs[index])
        infos.append(info)
    rng = np.random.default_rng(seed)
    done = [False] * num_envs
    seen = {"level_cleared": 0, "killed": 0, "truncated": 0, "ghosts_eaten": 0, "ate_pill": 0, "max_level": 1}
    for t in range(steps):
        actions = np.array([scripted_action(env, info, rng) for env, info in zip(singles, infos, strict=True)])
        vector_obs, vector_reward, vector_terminated, vector_truncated, vector_info = vector_env.step(actions)
        for index, env in enumerate(singles):
            if done[index]:  # NEXT_STEP autoreset: this step only resets
                observation, info = env.reset()
                reward, terminated, truncated = 0.0, False, False
            else:
                observation, reward, terminated, truncated, info = env.step(actions[index])
            done[index] = terminated or truncated
            infos[index] = info
            where = f"mode {mode}, step {t}, game {index}"
            assert np.array_equal(observation, vector_obs[index]), where
            assert reward == vector_reward[index], where  # bit-identical floats
            assert (terminated, truncated) == (vector_terminated[index], vector_truncated[index]), where
            for name in INFO_SCALARS:
                assert info[name] == vector_info[name][index], f"{where}: {name}"
                assert vector_info["_" + name][index]
            ghosts = tuple(tuple(p) for p in vector_info["ghost_positions"][index].tolist() if p[0] >= 0)
            pills = tuple(tuple(p) for p in vector_info["pill_positions"][index].tolist() if p[0] >= 0)
            assert ghosts == info["ghost_positions"] and pills == info["pill_positions"], where
            seen["level_cleared"] += info["level_cleared"]
            seen["killed"] += info["killed"]
            seen["truncated"] += truncated
            seen["ghosts_eaten"] += info["ghosts_eaten"]
            seen["ate_pill"] += info["ate_pill"]
            seen["max_level"] = max(seen["max_level"], info["level"])
    return seen


@pytest.mark.parametrize(
    ("mode", "viewport", "frame_cap"),
    [
        ("regular", None, 250),
        ("avoid", None, 140),
        ("hunt", None, 120),
        ("ambush", 5, 120),
        ("rush", 3, 150),
    ],
)
def test_vector_env_matches_single_envs_across_episodes(mode, viewport, frame_cap):
    seen = compare_rollouts(mode, viewport, frame_cap, num_envs=6, steps=320, seed=100)
    # the rollout covered deaths, truncations and level changes (with more ghosts)
    assert seen["killed"] > 0 and seen["truncated"] > 0 and seen["ate_pill"] > 0
    assert seen["level_cleared"] > 0, seen
    if mode in ("hunt", "ambush"):
        assert seen["ghosts_eaten"] > 0
    if mode in ("hunt", "ambush", "rush"):
        assert seen["max_level"] >= 3, seen  # two or more ghosts: several slots in use


def test_make_vec_returns_the_batch_native_env():
    vector_env = gym.make_vec("rmc/MiniPacmanHunt-v0", num_envs=3, vectorization_mode="vector_entry_point")
    assert isinstance(vector_env, MiniPacmanVectorEnv)
    assert vector_env.mode == "hunt" and vector_env.num_envs == 3
    assert vector_env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    viewport_env = gym.make_vec("rmc/MiniPacmanViewport-v0", num_envs=2, vectorization_mode="vector_entry_point")
    assert viewport_env.single_observation_space.shape == (5, 5, 3)
    assert viewport_env.observation_space.shape == (2, 5, 5, 3)


def test_spaces_and_observation_dtype():
    vector_env = MiniPacmanVectorEnv(4)
    observation, info = vector_env.reset(seed=0)
    assert vector_env.single_action_space == gym.spaces.Discrete(5)
    assert vector_env.action_space.shape == (4,)
    assert observation.dtype == np.uint8 and vector_env.observation_space.contains(observation)
    observation, reward, terminated, truncated, info = vector_env.step(np.zeros(4, dtype=np.int64))
    assert vector_env.observation_space.contains(observation)
    assert reward.shape == terminated.shape == truncated.shape == (4,)
    assert terminated.dtype == bool and truncated.dtype == bool


def test_observations_are_not_views_of_the_internal_state():
    vector_env = MiniPacmanVectorEnv(2)
    first, _ = vector_env.reset(seed=0)
    kept = first.copy()
    vector_env.step(np.array([1, 3]))
    assert np.array_equal(first, kept)


def test_seed_list_and_unseeded_resets():
    vector_env = MiniPacmanVectorEnv(2)
    by_list, _ = vector_env.reset(seed=[7, 3])
    by_int, _ = MiniPacmanVectorEnv(2).reset(seed=7)
    assert np.array_equal(by_list[0], by_int[0]) and not np.array_equal(by_list[1], by_int[1])
    assert np.array_equal(by_list[1], MiniPacmanEnv().reset(seed=3)[0])
    with pytest.raises(ValueError, match="2 ints, got 3 seeds"):
        vector_env.reset(seed=[1, 2, 3])
    unseeded = MiniPacmanVectorEnv(2)
    unseeded.reset()
    unseeded.step(np.zeros(2, dtype=np.int64))


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        (np.array([0, 5]), r"actions must be in \[0, 5\), got \[5\]"),
        (np.array([-1, 0]), r"actions must be in \[0, 5\), got \[-1\]"),
        (np.array([0, 1, 2]), r"shape \(2,\)"),
        (np.array([0.0, 1.0]), "integer array"),
    ],
)
def test_invalid_actions_raise(actions, message):
    vector_env = MiniPacmanVectorEnv(2)
    vector_env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        vector_env.step(actions)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_envs": 0}, "num_envs must be an int >= 1, got 0"),
        ({"num_envs": 2, "mode": "x"}, "mode must be one of"),
        ({"num_envs": 2, "viewport": 2}, "viewport must be"),
        ({"num_envs": 2, "frame_cap": -1}, "frame_cap must be"),
        ({"num_envs": 2, "render_mode": "human"}, "render_mode must be one of"),
    ],
)
def test_invalid_kwargs_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MiniPacmanVectorEnv(**kwargs)


def test_step_before_reset_raises():
    with pytest.raises(RuntimeError, match="reset"):
        MiniPacmanVectorEnv(2).step(np.zeros(2, dtype=np.int64))


def test_rgb_array_render_returns_every_board():
    vector_env = MiniPacmanVectorEnv(3, render_mode="rgb_array")
    observation, _ = vector_env.reset(seed=0)
    pictures = vector_env.render()
    assert len(pictures) == 3
    for picture, board in zip(pictures, observation, strict=True):
        assert picture.shape == (15 * 32, 19 * 32, 3) and picture.dtype == np.uint8
        assert np.array_equal(picture[::32, ::32], board)
