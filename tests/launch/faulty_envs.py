"""Envs that misbehave on purpose, for the launcher's fault tests (imported with --env-package)."""

from __future__ import annotations

import os

import gymnasium as gym
from gymnasium.envs.classic_control import CartPoleEnv
from gymnasium.envs.registration import register


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


register(id="test/RaiseOnceCartPole-v0", entry_point=RaiseOnceCartPole, max_episode_steps=200)
register(id="test/NanRewardCartPole-v0", entry_point=NanRewardCartPole, max_episode_steps=200)
register(id="test/TextObservation-v0", entry_point=TextObservationEnv)
