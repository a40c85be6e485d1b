"""CartPole without velocities: a valid Gymnasium env that shows positions only."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.partially_observed import HiddenVelocity


@pytest.mark.parametrize("env_id", envs.MEMORY_BENCHMARK_IDS)
def test_passes_gymnasiums_checker(env_id):
    check_env(gym.make(env_id).unwrapped, skip_render_check=True)


def test_shows_cartpoles_positions_and_nothing_else():
    hidden, full = gym.make("rmc/CartPoleNoVel-v1"), gym.make("CartPole-v1")
    assert hidden.observation_space.shape == (2,)
    observation, _ = hidden.reset(seed=3)
    expected, _ = full.reset(seed=3)
    np.testing.assert_array_equal(observation, expected[[0, 2]])
    for _ in range(20):
        observation, reward, terminated, truncated, _ = hidden.step(1)
        expected, expected_reward, expected_terminated, _, _ = full.step(1)
        np.testing.assert_array_equal(observation, expected[[0, 2]])
        assert (reward, terminated) == (expected_reward, expected_terminated)
        if terminated:
            break
    assert terminated  # always pushing right drops the pole
    assert hidden.spec.max_episode_steps == 500


def test_seeded_rollouts_repeat_render_and_pickle():
    def rollout(seed):
        env = gym.make("rmc/CartPoleNoVel-v1")
        env.reset(seed=seed)
        env.action_space.seed(seed)
        return [env.step(env.action_space.sample())[0] for _ in range(10)]

    np.testing.assert_array_equal(rollout(5), rollout(5))
    env = gym.make("rmc/CartPoleNoVel-v1", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8
    copy = pickle.loads(pickle.dumps(gym.make("rmc/CartPoleNoVel-v1")))
    assert copy.observation_space == gym.make("rmc/CartPoleNoVel-v1").observation_space


def test_vectorised_by_gymnasium():
    vector = gym.make_vec("rmc/CartPoleNoVel-v1", num_envs=3, vectorization_mode="sync")
    observations, _ = vector.reset(seed=0)
    assert observations.shape == (3, 2)
    observations, rewards, *_ = vector.step(np.ones(3, dtype=np.int64))
    assert observations.shape == (3, 2) and rewards.tolist() == [1.0, 1.0, 1.0]


def test_bad_wrapper_arguments_are_named():
    with pytest.raises(ValueError, match="keep"):
        HiddenVelocity(gym.make("CartPole-v1"), keep=(7,))
    with pytest.raises(ValueError, match="1-D Box"):
        HiddenVelocity(gym.make("FrozenLake-v1"))
