"""The local actor process: a ``launch.impala.rollout.Rollout`` behind a pipe and shared memory.

Each actor owns a fixed set of buffer slots. It fills a free slot with one unroll (the
layout of ``agents.trajectory.Trajectory``, NEXT_STEP autoreset), sends the slot index and
the episodes that ended to the learner over its own pipe, and gets slots back over the
same pipe once the learner has copied them. Before each unroll it picks up newer weights
(``launch.impala.shared_weights``) and records their version, so the learner can measure
policy lag.

Protocol (pickled tuples on a private duplex pipe, so a dying actor can never wedge a
queue shared with others):

- actor -> learner: ``("unroll", slot, episodes)`` with ``episodes`` a list of
  ``(return, length, success or None)``; ``("error", summary, details, bad_input)`` before
  exiting on an exception: ``summary`` is ``'Type: message'`` on one line, ``details`` the
  traceback, ``bad_input`` whether the exception is a ``ConfigError`` or ``EnvConfigError``
  (the run's config or env cannot work, as the launcher reports bad input).
- learner -> actor: ``("free", slot)`` and ``("stop",)``.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import signal
import sys
import traceback
from collections import deque
from multiprocessing.connection import Connection

import torch

from launch.impala.buffers import RolloutBuffers
from launch.impala.config import ConfigError, TrainConfig
from launch.impala.env_factory import EnvConfigError, describe_error
from launch.impala.rollout import Rollout
from launch.impala.shared_weights import SharedWeights


@dataclasses.dataclass
class ActorSpec:
    """What one actor process needs (pickled to the spawned process)."""

    index: int
    """Index of the actor, 0 .. num_actors - 1 (its buffer slots are fixed per index)."""
    generation: int
    """How many actors the run had started before this one (distinct seeds per start)."""
    config: TrainConfig
    buffers: RolloutBuffers
    weights: SharedWeights
    buffer_ids: list[int]
    """Slots this actor owns and may write into now."""
    connection: Connection
    parent_pid: int
    seed: int


class StopActor(Exception):
    """The learner asked this actor to stop, or went away."""


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no orphans on a learner crash)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def run_actor(spec: ActorSpec) -> None:
    """Process entry point: act until told to stop; report an exception and exit 1."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the learner decides
    _die_with_parent()
    if os.getppid() != spec.parent_pid:
        return
    torch.set_num_threads(1)
    try:
        ActorLoop(spec).run()
    except (StopActor, EOFError, BrokenPipeError, ConnectionResetError):
        return
    except BaseException as error:  # report what went wrong to the learner, then die
        summary, details = describe_error(error), traceback.format_exc()
        try:
            spec.connection.send(("error", summary, details, isinstance(error, (ConfigError, EnvConfigError))))
        except OSError:
            pass
        sys.stderr.write(f"actor {spec.index} failed: {summary}\n{details}")
        sys.stderr.flush()
        os._exit(1)  # at once: no interpreter teardown that could stall the learner's join


class ActorLoop:
    """The pipe transport around a ``Rollout``: pick a free slot, refresh the weights,
    write one unroll into the slot, report it."""

    def __init__(self, spec: ActorSpec) -> None:
        self.spec = spec
        self.rollout = Rollout(spec.config, spec.seed)
        self.version = spec.weights.read_into(self.rollout.policy)
        self.free = deque(spec.buffer_ids)

    def _handle(self, message: tuple) -> None:
        if message[0] == "free":
            self.free.append(message[1])
        elif message[0] == "stop":
            raise StopActor
        else:
            raise RuntimeError(f"unknown message from the learner: {message!r}")

    def _next_slot(self) -> int:
        connection = self.spec.connection
        while connection.poll():
            self._handle(connection.recv())
        while not self.free:
            self._handle(connection.recv())  # blocks until the learner returns a slot
        return self.free.popleft()

    def run(self) -> None:
        while True:
            slot = self._next_slot()
            newer = self.spec.weights.read_into(self.rollout.policy, self.version)
            if newer is not None:
                self.version = newer
            episodes = self.rollout.unroll(self.spec.buffers, slot, self.version)
            self.spec.connection.send(("unroll", slot, episodes))
