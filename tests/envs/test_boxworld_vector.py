"""Batch-native Box-World: equals N single envs, Gymnasium vector conventions, errors."""

import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import envs  # noqa: F401  (registers the ids)
from envs.boxworld import BoxWorldEnv
from envs.boxworld_levels import EMPTY, GEM
from envs.boxworld_solver import solve
from envs.boxworld_vector import BoxWorldVectorEnv

def plan(env, index):
    """Game index % 4: 0 and 2 solve the level, 1 opens a distractor lock, 3 walks at random."""
    level = env.current_level()
    kind, distractor = level.kind[0].copy(), level.distractor[0].copy()
    if index % 4 == 3:
        return []
    if index % 4 == 1:
        locks = np.flatnonzero(distractor)
        if locks.size == 0:
            return []
        # Aim for the first distractor's content: the way there opens its lock.
        kind[kind == GEM] = EMPTY
        kind[locks[0] - 1] = GEM
        distractor[:] = False
    solution = solve(kind, level.colour[0], distractor, int(level.agent[0]), env.config.board_size)
    return list(solution.actions)


BOXWORLD_IDS = ("rmc/BoxWorld-v0", "rmc/BoxWorldViewport-v0", "rmc/BoxWorldEasy-v0")


@pytest.mark.parametrize("env_id", BOXWORLD_IDS)
def test_make_vec_returns_the_batch_native_env_with_next_step_autoreset(env_id):
    vector_env = gym.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point")
    assert isinstance(vector_env, BoxWorldVectorEnv)
    assert vector_env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    single = gym.make(env_id)
    assert vector_env.single_observation_space == single.observation_space
    assert vector_env.single_action_space == single.action_space
    observations, infos = vector_env.reset(seed=0)
    assert observations.shape == (3, *single.observation_space.shape)
    assert vector_env.observation_space.contains(observations)
    assert all(infos[f"_{name}"].all() for name in ("held_key", "solution_length", "num_distractors"))


@pytest.mark.parametrize(
    ("kwargs", "steps"),
    [
        ({"room_size": 7, "solution_length": (1, 2), "num_distractors": 0, "max_steps": 30}, 400),
        ({"viewport": 5, "solution_length": range(1, 6), "num_distractors": range(6), "noop_action": True}, 300),
        ({"room_size": 7, "solution_length": 1, "num_distractors": (1, 2), "max_steps": 25}, 300),
        # Episodes of 1-3 steps: many level-queue refills, games out of step with each other.
        ({"solution_length": 1, "num_distractors": 0, "max_steps": 3}, 200),
    ],
)
def test_vector_env_plays_exactly_like_single_envs_across_episodes(kwargs, steps):
    count, seed = 6, 40
    vector_env = BoxWorldVectorEnv(count, **kwargs)
    singles = [BoxWorldEnv(**kwargs) for _ in range(count)]
    observations, infos = vector_env.reset(seed=seed)
    single_resets = [env.reset(seed=seed + index) for index, env in enumerate(singles)]
    assert np.array_equal(observations, np.stack([observation for observation, _ in single_resets]))
    rng = np.random.default_rng(seed)
    needs_reset = [False] * count
    episodes, rewards_seen = 0, set()
    # Plans made at each episode start make gems, path locks, distractors and
    # truncations all occur (see ``plan``).
    plans = [plan(env, index) for index, env in enumerate(singles)]
    for _ in range(steps):
        actions = rng.integers(0, vector_env.single_action_space.n, size=count)
        for index, moves in enumerate(plans):
            if moves and not needs_reset[index]:
                actions[index] = moves.pop(0)
        observations, rewards, terminated, truncated, infos = vector_env.step(actions)
        for index, env in enumerate(singles):
            if needs_reset[index]:
                expected_observation, info = env.reset()
                expected = (expected_observation, 0.0, False, False, info)
                plans[index] = plan(env, index)
            else:
                expected = env.step(actions[index])
            observation, reward, done, cut, info = expected
            assert np.array_equal(observations[index], observation)
            assert rewards[index] == reward and terminated[index] == done and truncated[index] == cut
            for name, value in info.items():
                assert infos[f"_{name}"][index] and infos[name][index] == value, name
            if "success" in infos and "success" not in info:
                assert not infos["_success"][index]
            needs_reset[index] = done or cut
            episodes += done or cut
        rewards_seen.update(rewards.tolist())
    assert episodes >= 2 * count
    if kwargs.get("max_steps", 120) > 3:
        expected = {0.0, 1.0, 10.0, -1.0} if kwargs["num_distractors"] else {0.0, 1.0, 10.0}
        assert rewards_seen == expected, rewards_seen
    # A reset without a seed continues every game's level sequence like a single env's.
    observations, _ = vector_env.reset()
    assert np.array_equal(observations, np.stack([env.reset()[0] for env in singles]))


def test_vector_env_finishes_episodes_with_every_outcome():
    vector_env = BoxWorldVectorEnv(256, room_size=7, solution_length=1, num_distractors=1, max_steps=60)
    vector_env.reset(seed=1)
    rng = np.random.default_rng(1)
    seen = {"gem": 0, "distractor": 0, "truncated": 0}
    for _ in range(200):
        _, rewards, terminated, truncated, infos = vector_env.step(rng.integers(0, 4, size=256))
        seen["gem"] += int((rewards == 10).sum())
        seen["distractor"] += int((rewards == -1).sum())
        seen["truncated"] += int(truncated.sum())
        if "success" in infos:
            assert np.array_equal(infos["_success"], terminated | truncated)
            assert np.array_equal(infos["success"] & infos["_success"], rewards == 10)
    assert min(seen.values()) > 0, seen


def test_seed_list_and_none_and_different_seeds():
    vector_env = BoxWorldVectorEnv(4)
    by_list, _ = vector_env.reset(seed=[7, 8, 9, 10])
    by_int, _ = vector_env.reset(seed=7)
    assert np.array_equal(by_list, by_int)
    other, _ = vector_env.reset(seed=8)
    assert not np.array_equal(other, by_int)
    assert np.array_equal(other[:3], by_int[1:])
    continued, _ = vector_env.reset()
    assert not np.array_equal(continued, other)


def test_rgb_array_render_and_pickling():
    vector_env = gym.make_vec(
        "rmc/BoxWorld-v0", num_envs=2, vectorization_mode="vector_entry_point", render_mode="rgb_array"
    )
    observations, _ = vector_env.reset(seed=0)
    pictures = vector_env.render()
    assert len(pictures) == 2 and pictures[0].shape == (14 * 32, 14 * 32, 3)
    assert np.all(pictures[1][37, 37] == observations[1, 1, 1])
    copy = pickle.loads(pickle.dumps(vector_env))
    actions = np.array([0, 3])
    for _ in range(5):
        first, second = vector_env.step(actions), copy.step(actions)
        assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])


@pytest.mark.parametrize("actions", [[0, 4], [0, -1], [0.0, 1.0], [0, 1, 2]])
def test_invalid_actions_are_rejected(actions):
    vector_env = BoxWorldVectorEnv(2)
    vector_env.reset(seed=0)
    with pytest.raises(ValueError, match="actions must be"):
        vector_env.step(np.array(actions))


def test_invalid_construction_is_rejected():
    with pytest.raises(ValueError, match="num_envs must be an int >= 1, got 0"):
        BoxWorldVectorEnv(0)
    with pytest.raises(ValueError, match="room_size 6 holds at most 2"):
        BoxWorldVectorEnv(2, room_size=6)
    with pytest.raises(RuntimeError, match="reset"):
        BoxWorldVectorEnv(2).step(np.zeros(2, dtype=np.int64))


def test_batch_native_env_matches_gymnasiums_sync_vector_env():
    synced = gym.make_vec("rmc/BoxWorldViewport-v0", num_envs=3, vectorization_mode="sync")
    native = gym.make_vec("rmc/BoxWorldViewport-v0", num_envs=3, vectorization_mode="vector_entry_point")
    assert np.array_equal(synced.reset(seed=5)[0], native.reset(seed=5)[0])
    rng = np.random.default_rng(0)
    for _ in range(300):
        actions = rng.integers(0, 4, size=3)
        for expected, actual in zip(synced.step(actions)[:4], native.step(actions)[:4]):
            assert np.array_equal(expected, actual)
