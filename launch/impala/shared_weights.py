"""Learner -> actor weight publishing through shared memory, versioned, without locks.

The learner is the only writer. It bumps a shared sequence number to an odd value, copies
the new parameters into shared CPU tensors, and bumps it again to an even value (a
seqlock). An actor copies the tensors into its own CPU policy and keeps the copy only if
the sequence number was even and unchanged across the copy. No lock is held across
processes, so an actor killed mid-read can never block the learner.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import torch
from torch import nn


class SharedWeights:
    """The latest published ``state_dict`` and its version (the learner's update count).

    Args:
        state_dict: the initial weights (any device; copied to shared CPU memory).
        version: the version of those weights (non-zero when a run resumes).
    """

    def __init__(self, state_dict: Mapping[str, torch.Tensor], version: int = 0) -> None:
        self.tensors = {name: value.detach().to("cpu", copy=True).share_memory_() for name, value in state_dict.items()}
        self.sequence = torch.full((1,), 2 * version, dtype=torch.int64).share_memory_()

    @property
    def version(self) -> int:
        """Version of the weights currently published."""
        return int(self.sequence.item()) // 2

    def publish(self, state_dict: Mapping[str, torch.Tensor], version: int) -> None:
        """Copy ``state_dict`` in as ``version`` (learner only)."""
        self.sequence.fill_(2 * version - 1)  # odd: a copy is in progress
        with torch.no_grad():
            for name, value in state_dict.items():
                self.tensors[name].copy_(value.detach())
        self.sequence.fill_(2 * version)

    def read_into(self, module: nn.Module, known_version: int | None = None) -> int | None:
        """Load the published weights into ``module`` when newer than ``known_version``.

        Returns:
            The version loaded, or None when ``known_version`` is already the latest.
        """
        while True:
            before = int(self.sequence.item())
            if before % 2:
                time.sleep(0.0002)
                continue
            if known_version is not None and before // 2 == known_version:
                return None
            module.load_state_dict(self.tensors)
            if int(self.sequence.item()) == before:
                return before // 2
