"""Envs that misbehave on purpose, for the launcher's fault tests (imported with --env-package)."""

from __future__ import annotations

import multiprocessing
import os

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control import CartPoleEnv
from gymnasium.envs.registration import register
from gymnasium.vector import AutoresetMode


class RaiseOnceCartPole(CartPoleEnv):
    """CartPole that raises in ``step`` once per ``marker`` file: the first env to get
    ``raise_after`` steps creates the file and raises; every later env plays normally."""

    def __init__(self, marker: str, raise_after: int = 30, **kwargs) -> None:
        super().__init__(**kwargs)
        self.marker = marker
        self.raise_after = raise_after
        self.steps_taken = 0

    def step(self, action):
        self.steps_taken += 1
        if self.steps_taken >= self.raise_after:
            try:
                descriptor = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.close(descriptor)
                raise RuntimeError("deliberate env failure for the fault test")
        return super().step(action)


class NanRewardCartPole(CartPoleEnv):
    """CartPole whose rewards become NaN after ``nan_after`` steps of this instance."""

    def __init__(self, nan_after: int = 200, **kwargs) -> None:
        super().__init__(**kwargs)
        self.nan_after = nan_after
        self.steps_taken = 0

    def step(self, action):
        self.steps_taken += 1
        observation, reward, terminated, truncated, info = super().step(action)
        if self.steps_taken > self.nan_after:
            reward = float("nan")
        return observation, reward, terminated, truncated, info


class TextObservationEnv(gym.Env):
    """An env whose observation space (Text) no agent supports."""

    observation_space = gym.spaces.Text(8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return "a", {}

    def step(self, action):
        return "a", 0.0, False, False, {}


class MissionOnlyEnv(TextObservationEnv):
    """An env whose Dict observation has nothing but a Text mission, which the agent leaves out."""

    observation_space = gym.spaces.Dict({"mission": gym.spaces.Text(8)})

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return {"mission": "a"}, {}

    def step(self, action):
        return {"mission": "a"}, 0.0, False, False, {}


class NarrowSeedVectorEnv(gym.vector.SyncVectorEnv):
    """CartPole games behind a vector env that takes seeds the way a native binding may
    (ale_py 0.12's ``AtariVectorEnv``, for one): a Python int (or an array, one per game)
    whose games' seeds fit a 32-bit signed int, and no options; anything else raises the
    ``TypeError`` a pybind11 binding raises."""

    def __init__(self, num_envs: int, max_episode_steps: int = 200, **kwargs) -> None:
        super().__init__([lambda: gym.wrappers.TimeLimit(CartPoleEnv(**kwargs), max_episode_steps)
                          for _ in range(num_envs)])

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            seeds = np.arange(seed, seed + self.num_envs) if type(seed) is int else np.asarray(seed)
            if isinstance(seed, np.integer) or seeds.shape != (self.num_envs,) or not (seeds < 2**31).all():
                raise TypeError("reset(): incompatible function arguments. The following argument types are "
                                "supported:\n    1. reset(self, arg0: Sequence[int], arg1: Sequence[int], /)")
            seed = [int(value) for value in seeds]
        if options:
            raise TypeError(f"reset() got options it does not take: {sorted(options)}")
        return super().reset(seed=seed)


class SameStepVectorEnv(gym.vector.SyncVectorEnv):
    """CartPole games in a vector env that autoresets in SAME_STEP mode."""

    def __init__(self, num_envs: int, max_episode_steps: int = 200, **kwargs) -> None:
        super().__init__([lambda: gym.wrappers.TimeLimit(CartPoleEnv(**kwargs), max_episode_steps)
                          for _ in range(num_envs)],
                         autoreset_mode=AutoresetMode.SAME_STEP)


class BrokenResetCartPole(CartPoleEnv):
    """CartPole whose ``reset`` always raises: every actor dies at its first reset."""

    def reset(self, *, seed=None, options=None):
        raise RuntimeError("deliberate reset failure for the fault test")


class ActorOnlyFailureCartPole(CartPoleEnv):
    """CartPole that cannot be made in a child process (as an env needing something only the
    launching process has), so the launcher's checks pass and every actor fails to make it."""

    def __init__(self, **kwargs) -> None:
        if multiprocessing.parent_process() is not None:
            raise RuntimeError("deliberate failure to make the env in an actor process")
        super().__init__(**kwargs)


register(id="test/RaiseOnceCartPole-v0", entry_point=RaiseOnceCartPole, max_episode_steps=200)
register(id="test/NanRewardCartPole-v0", entry_point=NanRewardCartPole, max_episode_steps=200)
register(id="test/TextObservation-v0", entry_point=TextObservationEnv)
register(id="test/NarrowSeedCartPole-v0", entry_point=CartPoleEnv, vector_entry_point=NarrowSeedVectorEnv,
         max_episode_steps=200)
register(id="test/SameStepCartPole-v0", entry_point=CartPoleEnv, vector_entry_point=SameStepVectorEnv,
         max_episode_steps=200)
register(id="test/BrokenResetCartPole-v0", entry_point=BrokenResetCartPole, max_episode_steps=200)
register(id="test/ActorOnlyFailureCartPole-v0", entry_point=ActorOnlyFailureCartPole, max_episode_steps=200)
register(id="test/MissionOnly-v0", entry_point=MissionOnlyEnv)
