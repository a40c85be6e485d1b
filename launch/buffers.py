"""Shared-memory unroll buffers: actors write into them, the learner batches them.

``num_buffers`` slots are allocated once, in shared memory, before the actor processes
start; each slot holds one unroll of ``E`` games (``E = envs_per_actor``) in the layout of
``agents.trajectory.Trajectory`` (``T + 1`` observations, ``T`` transitions) plus the core
state at the unroll's first step and the policy version that acted. Only slot indices
cross process boundaries (see ``launch.actor`` and ``launch.learner``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.trajectory import Trajectory


def map_structure(function: Callable[[Any], Any], tree: Any) -> Any:
    """Apply ``function`` to every leaf of nested dicts / tuples."""
    if isinstance(tree, dict):
        return {key: map_structure(function, value) for key, value in tree.items()}
    if isinstance(tree, (tuple, list)):
        return tuple(map_structure(function, value) for value in tree)
    return function(tree)


def map_structures(function: Callable[..., Any], first: Any, *others: Any) -> Any:
    """``map_structure`` over several trees of the same shape, leaf by leaf."""
    if isinstance(first, dict):
        return {key: map_structures(function, first[key], *(other[key] for other in others)) for key in first}
    if isinstance(first, (tuple, list)):
        return tuple(map_structures(function, *items) for items in zip(first, *others))
    return function(first, *others)


def torch_dtype(dtype: np.dtype) -> torch.dtype:
    """The torch dtype that holds values of numpy ``dtype`` exactly."""
    return torch.from_numpy(np.zeros((), dtype=np.dtype(dtype))).dtype


def space_layout(space: gym.Space) -> Any:
    """A tree of ``(shape, torch dtype)`` leaves for one observation of ``space``."""
    if isinstance(space, gym.spaces.Dict):
        return {key: space_layout(child) for key, child in space.spaces.items()}
    if isinstance(space, gym.spaces.Tuple):
        return tuple(space_layout(child) for child in space.spaces)
    if isinstance(space, (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)):
        return (tuple(space.shape), torch_dtype(space.dtype))
    raise ValueError(f"unsupported space {space}; supported: Box, Discrete, MultiDiscrete, MultiBinary, Dict, Tuple")


def _is_layout_leaf(tree: Any) -> bool:
    return isinstance(tree, tuple) and len(tree) == 2 and isinstance(tree[1], torch.dtype)


def _allocate(layout: Any, prefix: tuple[int, ...]) -> Any:
    if _is_layout_leaf(layout):
        shape, dtype = layout
        return torch.zeros(prefix + tuple(shape), dtype=dtype).share_memory_()
    if isinstance(layout, dict):
        return {key: _allocate(value, prefix) for key, value in layout.items()}
    return tuple(_allocate(value, prefix) for value in layout)


class RolloutBuffers:
    """``num_buffers`` shared-memory unroll slots of ``E`` games and ``T`` steps each.

    Args:
        num_buffers: slots N.
        unroll_length: transitions T per unroll.
        num_envs: games E per slot.
        observation_space: the single-game observation space.
        action_shape / action_dtype: tensor layout of one action (``ActorCritic.action_shape``).
        initial_state: the core state for E games (tuple of ``[E, ...]`` tensors), as a template.

    Attributes: one shared tensor (or tree of them) per ``Trajectory`` field with the
    ``[N, T(+1), E]`` prefix, ``core_state`` (tuple of ``[N, E, ...]``) and
    ``policy_version`` (``[N]`` int64, the learner update the acting weights came from).
    """

    def __init__(
        self,
        num_buffers: int,
        unroll_length: int,
        num_envs: int,
        observation_space: gym.Space,
        action_shape: Sequence[int],
        action_dtype: torch.dtype,
        initial_state: tuple[torch.Tensor, ...],
    ) -> None:
        if num_buffers < 1:
            raise ValueError(f"num_buffers must be >= 1, got {num_buffers}")
        steps, transitions = (num_buffers, unroll_length + 1, num_envs), (num_buffers, unroll_length, num_envs)
        self.num_buffers = num_buffers
        self.unroll_length = unroll_length
        self.num_envs = num_envs
        self.obs = _allocate(space_layout(observation_space), steps)
        self.reset = torch.zeros(steps, dtype=torch.bool).share_memory_()
        self.previous_action = torch.zeros(steps + tuple(action_shape), dtype=action_dtype).share_memory_()
        self.previous_reward = torch.zeros(steps, dtype=torch.float32).share_memory_()
        self.action = torch.zeros(transitions + tuple(action_shape), dtype=action_dtype).share_memory_()
        self.behaviour_log_prob = torch.zeros(transitions, dtype=torch.float32).share_memory_()
        self.reward = torch.zeros(transitions, dtype=torch.float32).share_memory_()
        self.terminated = torch.zeros(transitions, dtype=torch.bool).share_memory_()
        self.truncated = torch.zeros(transitions, dtype=torch.bool).share_memory_()
        self.core_state = tuple(
            torch.zeros((num_buffers,) + tuple(part.shape), dtype=part.dtype).share_memory_() for part in initial_state
        )
        self.policy_version = torch.zeros(num_buffers, dtype=torch.int64).share_memory_()

    def gather(self, indices: Sequence[int], device: torch.device) -> tuple[Trajectory, tuple[torch.Tensor, ...], torch.Tensor]:
        """Copy the slots ``indices`` out as one batch of ``len(indices) * E`` unrolls.

        Returns:
            ``(trajectory, initial_state, policy_version)``: the trajectory with leaves
            ``[T(+1), len(indices) * E, ...]`` on ``device``, the core state at its first
            step (``[len(indices) * E, ...]``), and the acting policy version per slot. The
            slots may be reused as soon as this returns.
        """
        index = torch.as_tensor(list(indices), dtype=torch.long)
        pin = device.type == "cuda"

        def batch_time_major(field: torch.Tensor) -> torch.Tensor:
            stacked = field.index_select(0, index)  # [K, T(+1), E, ...]
            merged = stacked.transpose(0, 1).flatten(1, 2)  # [T(+1), K*E, ...]
            if pin:
                merged = merged.pin_memory()
            return merged.to(device, non_blocking=pin)

        def batch_first(field: torch.Tensor) -> torch.Tensor:
            return field.index_select(0, index).flatten(0, 1).to(device)  # [K*E, ...]

        trajectory = Trajectory(
            obs=map_structure(batch_time_major, self.obs),
            reset=batch_time_major(self.reset),
            previous_action=batch_time_major(self.previous_action),
            previous_reward=batch_time_major(self.previous_reward),
            action=batch_time_major(self.action),
            behaviour_log_prob=batch_time_major(self.behaviour_log_prob),
            reward=batch_time_major(self.reward),
            terminated=batch_time_major(self.terminated),
            truncated=batch_time_major(self.truncated),
        )
        state = tuple(batch_first(part) for part in self.core_state)
        return trajectory, state, self.policy_version.index_select(0, index).clone()


def buffers_per_actor(unrolls_per_batch: int, num_actors: int) -> int:
    """Slots per actor so the learner can hold a full batch while every actor keeps one
    slot to write into (no deadlock, acting overlaps learning)."""
    return max(2, -(-unrolls_per_batch // num_actors) + 1)
