"""Which vector env ``make_vector_env`` gives an id: its own vector env only when that
resets with the actors' seeds and autoresets in NEXT_STEP mode, else single envs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from launch.impala.config import TrainConfig
from launch.impala.env_factory import PROBE_SEED, EnvConfigError, make_vector_env
from launch.impala.rollout import Rollout, actor_seed

FAULTY = ["tests.launch.faulty_envs"]


def test_a_vector_env_that_rejects_the_actors_seeds_gives_way_to_single_envs() -> None:
    lines: list[str] = []
    env = make_vector_env("test/NarrowSeedCartPole-v0", 3, env_packages=FAULTY, log=lines.append)
    try:
        assert type(env.unwrapped) is gym.vector.SyncVectorEnv  # not its NarrowSeedVectorEnv subclass
        assert len(lines) == 1
        assert "SyncVectorEnv over single envs, not its vector_entry_point (tests.launch.faulty_envs:" \
               "NarrowSeedVectorEnv)" in lines[0]
        assert f"reset(seed={PROBE_SEED}) raised TypeError: reset(): incompatible function arguments" in lines[0]
        observation, _ = env.reset(seed=PROBE_SEED)  # the largest seed an actor uses
        assert observation.shape == (3, 4)
        env.step(np.zeros(3, dtype=np.int64))
    finally:
        env.close()


def test_a_vector_env_that_autoresets_in_the_same_step_gives_way_to_single_envs() -> None:
    lines: list[str] = []
    env = make_vector_env("test/SameStepCartPole-v0", 2, env_packages=FAULTY, log=lines.append)
    try:
        assert type(env.unwrapped) is gym.vector.SyncVectorEnv
        assert env.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
        assert "it autoresets in mode AutoresetMode.SAME_STEP, not NEXT_STEP" in lines[0]
    finally:
        env.close()


def test_a_vector_env_that_passes_the_probe_is_kept_and_named() -> None:
    lines: list[str] = []
    env = make_vector_env("rmc/BoxWorldEasy-v0", 2, log=lines.append)
    env.close()
    assert type(env.unwrapped).__name__ == "BoxWorldVectorEnv"
    assert lines == ["games of rmc/BoxWorldEasy-v0: its own vector env (envs.boxworld_vector:BoxWorldVectorEnv)"]


def test_kwargs_no_env_takes_are_reported_with_why_the_vector_env_was_not_used() -> None:
    with pytest.raises(EnvConfigError) as caught:
        make_vector_env("test/NarrowSeedCartPole-v0", 2, {"no_such_option": 1}, env_packages=FAULTY)
    message = str(caught.value)
    assert "could not make 'test/NarrowSeedCartPole-v0' with kwargs {'no_such_option': 1}: TypeError" in message
    assert "its vector_entry_point was not used: making it raised TypeError" in message


def test_ale_games_reset_with_actor_seeds_and_fill_an_unroll() -> None:
    pytest.importorskip("ale_py")
    lines: list[str] = []
    env = make_vector_env("ALE/Pong-v5", 2, env_packages=["ale_py"], log=lines.append)
    try:
        for seed in (0, 2**31 + 5, PROBE_SEED):  # actor seeds span 32 bits
            observation, _ = env.reset(seed=seed)
            assert observation.shape[0] == 2
    finally:
        env.close()
    assert lines and lines[0].startswith("games of ALE/Pong-v5: ")
    config = TrainConfig(env="ALE/Pong-v5", env_package=["ale_py"], core="lstm", core_kwargs={"hidden_size": 8},
                         hidden_size=8, unroll_length=3, envs_per_actor=2, batch_size=2)
    rollout = Rollout(config, actor_seed(0, 1))
    try:
        buffers = rollout.make_buffers(1, shared=False)
        rollout.unroll(buffers, 0, 0)
        assert bool(torch.as_tensor(buffers.reset[0, 0]).all())  # every game starts an episode
        assert tuple(buffers.action.shape[1:3]) == (3, 2)  # [T, E]
    finally:
        rollout.close()
