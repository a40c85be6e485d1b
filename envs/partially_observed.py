"""Partially observed versions of Gymnasium's classic-control tasks: memory benchmarks.

``HiddenVelocity`` keeps only the positions of CartPole's observation (cart position and
pole angle) and drops both velocities, as Stable-Baselines3's ``CartPoleNoVel`` does for
its recurrent PPO benchmarks. A policy without memory sees where the pole is but not where
it is going, so it cannot balance it for long; a recurrent policy can recover the
velocities from consecutive observations.

Registered ids:
    ``rmc/CartPoleNoVel-v1``: CartPole-v1 (its dynamics, reward of +1 per step, termination
    and its 500-step truncation) with a ``Box(2,)`` observation ``[x, theta]``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

__all__ = ["HiddenVelocity", "make_cartpole_no_velocity"]


class HiddenVelocity(gym.ObservationWrapper):
    """Keeps the observation entries at ``keep`` (default: CartPole's positions 0 and 2).

    Args:
        env: an env with a 1-D ``Box`` observation space.
        keep: indices of the entries to keep.
    """

    def __init__(self, env: gym.Env, keep: tuple[int, ...] = (0, 2)) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise ValueError(f"HiddenVelocity needs a 1-D Box observation space, got {space}")
        if not keep or any(not 0 <= index < space.shape[0] for index in keep):
            raise ValueError(f"keep must name entries 0..{space.shape[0] - 1}, got {keep}")
        self.keep = np.asarray(keep)
        self.observation_space = gym.spaces.Box(space.low[self.keep], space.high[self.keep], dtype=space.dtype)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation[self.keep]


def make_cartpole_no_velocity(**kwargs: Any) -> gym.Env:
    """CartPole-v1 without its velocities (``kwargs`` go to ``CartPoleEnv``, e.g. ``render_mode``)."""
    return HiddenVelocity(CartPoleEnv(**kwargs))
