"""Shared-memory unroll buffers: actors write into them, the learner batches them.

``num_buffers`` slots are allocated once, in shared memory, before the actor processes
start; each slot holds one unroll of ``E`` games (``E = envs_per_actor``) in the layout of
``agents.trajectory.Trajectory`` (``T + 1`` observations, ``T`` transitions) plus the core
state at the unroll's first step and the policy version that acted. With local actor
processes only slot indices cross process boundaries (see ``launch.impala.actor``); a Ray actor
sends a slot's arrays (``read_slot``) and the learner copies them into its own, unshared
buffers (``write_slot``, see ``launch.impala.ray_pool``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.spaces import encodable_space, map_leaves
from agents.trajectory import Trajectory


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


def _allocate(layout: Any, prefix: tuple[int, ...], shared: bool) -> Any:
    if _is_layout_leaf(layout):
        shape, dtype = layout
        return _zeros(prefix + tuple(shape), dtype, shared)
    if isinstance(layout, dict):
        return {key: _allocate(value, prefix, shared) for key, value in layout.items()}
    return tuple(_allocate(value, prefix, shared) for value in layout)


def _zeros(shape: tuple[int, ...], dtype: torch.dtype, shared: bool) -> torch.Tensor:
    tensor = torch.zeros(shape, dtype=dtype)
    return tensor.share_memory_() if shared else tensor


class RolloutBuffers:
    """``num_buffers`` shared-memory unroll slots of ``E`` games and ``T`` steps each.

    Args:
        num_buffers: slots N.
        unroll_length: transitions T per unroll.
        num_envs: games E per slot.
        observation_space: the single-game observation space; the slots hold its
            ``agents.spaces.encodable_space``, the part the agent sees (a MiniGrid mission
            string, for example, is not stored).
        action_shape / action_dtype: tensor layout of one action (``ActorCritic.action_shape``).
        initial_state: the core state for E games (tuple of ``[E, ...]`` tensors), as a template.
        shared: allocate in shared memory (local actor processes write into it); False for
            buffers that stay in one process (a Ray actor's own slot, the Ray learner's slots).
        explores: the actors explore around their policy (a hold probability above 0), so
            ``gather`` hands over the actors' ``policy_log_prob`` beside the behaviour's
            (otherwise the two are equal and the trajectory's field is None).

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
        shared: bool = True,
        explores: bool = False,
    ) -> None:
        if num_buffers < 1:
            raise ValueError(f"num_buffers must be >= 1, got {num_buffers}")
        steps, transitions = (num_buffers, unroll_length + 1, num_envs), (num_buffers, unroll_length, num_envs)
        self.num_buffers = num_buffers
        self.unroll_length = unroll_length
        self.num_envs = num_envs
        self.explores = explores
        self.obs = _allocate(space_layout(encodable_space(observation_space)), steps, shared)
        self.reset = _zeros(steps, torch.bool, shared)
        self.previous_action = _zeros(steps + tuple(action_shape), action_dtype, shared)
        self.previous_reward = _zeros(steps, torch.float32, shared)
        self.action = _zeros(transitions + tuple(action_shape), action_dtype, shared)
        self.behaviour_log_prob = _zeros(transitions, torch.float32, shared)
        self.policy_log_prob = _zeros(transitions, torch.float32, shared)
        self.reward = _zeros(transitions, torch.float32, shared)
        self.terminated = _zeros(transitions, torch.bool, shared)
        self.truncated = _zeros(transitions, torch.bool, shared)
        self.core_state = tuple(_zeros((num_buffers,) + tuple(part.shape), part.dtype, shared) for part in initial_state)
        self.policy_version = _zeros((num_buffers,), torch.int64, shared)

    def _fields(self) -> dict[str, Any]:
        """Every per-slot tensor (or tree of them), by name; each has the slot index first."""
        return {"obs": self.obs, "reset": self.reset, "previous_action": self.previous_action,
                "previous_reward": self.previous_reward, "action": self.action,
                "behaviour_log_prob": self.behaviour_log_prob, "policy_log_prob": self.policy_log_prob,
                "reward": self.reward,
                "terminated": self.terminated, "truncated": self.truncated, "core_state": self.core_state,
                "policy_version": self.policy_version}

    def read_slot(self, slot: int) -> dict[str, Any]:
        """A copy of one slot as a tree of numpy arrays (what a Ray actor sends)."""
        return map_leaves(lambda field: field[slot].numpy().copy(), self._fields())

    def write_slot(self, slot: int, arrays: dict[str, Any]) -> None:
        """Overwrite one slot with ``read_slot`` output of buffers of the same layout.

        Raises:
            ValueError: when ``arrays`` does not have this layout (names or shapes).
        """
        fields = self._fields()
        if set(arrays) != set(fields):
            raise ValueError(f"unroll fields {sorted(arrays)} do not match the buffers' {sorted(fields)}")

        def copy(field: torch.Tensor, array: np.ndarray) -> None:
            if tuple(array.shape) != tuple(field.shape[1:]):
                raise ValueError(f"unroll array of shape {tuple(array.shape)} does not fit a slot of shape "
                                 f"{tuple(field.shape[1:])}")
            field[slot].numpy()[...] = array  # numpy copy: Ray's arrays are read-only views

        map_leaves(copy, fields, arrays)

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
            obs=map_leaves(batch_time_major, self.obs),
            reset=batch_time_major(self.reset),
            previous_action=batch_time_major(self.previous_action),
            previous_reward=batch_time_major(self.previous_reward),
            action=batch_time_major(self.action),
            behaviour_log_prob=batch_time_major(self.behaviour_log_prob),
            reward=batch_time_major(self.reward),
            terminated=batch_time_major(self.terminated),
            truncated=batch_time_major(self.truncated),
            policy_log_prob=batch_time_major(self.policy_log_prob) if self.explores else None,
        )
        state = tuple(batch_first(part) for part in self.core_state)
        return trajectory, state, self.policy_version.index_select(0, index).clone()


def select_games(trajectory: Trajectory, state: tuple[torch.Tensor, ...], index: torch.Tensor
                 ) -> tuple[Trajectory, tuple[torch.Tensor, ...]]:
    """The unrolls of the games at ``index`` (a 1-D index into the batch dimension B): every
    ``[T(+1), B, ...]`` leaf of the trajectory and every ``[B, ...]`` core state tensor, as
    new contiguous tensors."""
    return (Trajectory(*(map_leaves(lambda leaf: leaf[:, index], field) for field in trajectory)),
            tuple(leaf[index] for leaf in state))


def split_batch(trajectory: Trajectory, state: tuple[torch.Tensor, ...], parts: int
                ) -> list[tuple[Trajectory, tuple[torch.Tensor, ...]]]:
    """Cut a gathered batch into ``parts`` equal batches of whole unrolls, in game order.

    Used when the learner's batch is smaller than an actor buffer's ``E`` games: one
    buffer then feeds ``E // batch_size`` updates.
    """
    games = trajectory.reward.shape[1]
    if parts < 1 or games % parts:
        raise ValueError(f"cannot split a batch of {games} unrolls into {parts} equal parts")
    width = games // parts
    device = trajectory.reward.device
    return [select_games(trajectory, state, torch.arange(first, first + width, device=device))
            for first in range(0, games, width)]


def buffers_per_actor(unrolls_per_batch: int, num_actors: int, learner_sets_pace: bool = False) -> int:
    """Slots per actor: enough that the learner can hold a full batch while actors keep
    slots to write into (no deadlock, acting overlaps learning).

    With ``learner_sets_pace`` (a CPU learner), one slot each when the actors outnumber a
    batch's unrolls: the actors whose slots the learner does not hold write the next batch
    while it learns, and every further slot would only queue data, each queued batch adding
    one update to the policy lag (with two slots per actor the learning suite's runs on 2
    cores trained on data 4 updates old). Otherwise one slot more than an even share of a
    batch, so every actor has a slot to write into while the learner holds a batch: where
    the actors set the pace (a GPU learner) none of them then waits for the learner.
    """
    if learner_sets_pace and num_actors > unrolls_per_batch:
        return 1
    return max(2, -(-unrolls_per_batch // num_actors) + 1)
