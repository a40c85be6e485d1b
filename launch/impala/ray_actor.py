"""The Ray actor: a ``launch.impala.rollout.Rollout`` whose unrolls travel through Ray's object store.

The class is plain Python; ``launch.impala.ray_pool`` turns it into a Ray actor with
``ray.remote`` (so this module imports without Ray). Each ``produce`` call writes one
unroll into the actor's private one-slot buffer and returns that slot's arrays; Ray puts
the returned numpy arrays into the object store, where the learner reads them without a
copy. New weights arrive as an object reference wrapped in a list: Ray would fetch and
deserialise a bare reference argument on every call, the list lets the actor fetch only
when the version changed.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import torch

from launch.impala.config import TrainConfig
from launch.impala.env_factory import EpisodeRecord
from launch.impala.rollout import Rollout


class RolloutActor:
    """Acts for the learner on whichever node Ray placed it.

    Args:
        config: the run's config.
        seed: seed of this actor start (distinct for every start in a run).
    """

    def __init__(self, config: TrainConfig, seed: int) -> None:
        torch.set_num_threads(1)
        self.rollout = Rollout(config, seed)
        self.buffers = self.rollout.make_buffers(1, shared=False)
        self.version: int | None = None

    def placement(self) -> tuple[int, str, str]:
        """``(pid, node id, host name)`` of this actor's process."""
        import ray

        return os.getpid(), ray.get_runtime_context().get_node_id(), socket.gethostname()

    def produce(self, weights: list[Any], version: int) -> tuple[dict[str, Any], list[EpisodeRecord]]:
        """One unroll acted with the weights of ``version``.

        Args:
            weights: ``[ref]``, an object reference to a ``{name: numpy array}`` state dict.
            version: the learner update those weights came from.

        Returns:
            ``(arrays, episodes)``: the unroll as ``RolloutBuffers.read_slot`` output, and
            the episodes that ended during it.
        """
        if version != self.version:
            import ray

            state = ray.get(weights[0])  # read-only views into the object store: copied below
            self.rollout.policy.load_state_dict({name: torch.from_numpy(value.copy()) for name, value in state.items()})
            self.version = version
        episodes = self.rollout.unroll(self.buffers, 0, version)
        return self.buffers.read_slot(0), episodes
