"""Starting, watching and replacing the actor processes; routing buffer slots.

The pool lives in the learner process. Each actor ``a`` owns the slots
``a * per_actor ... (a + 1) * per_actor - 1`` for the whole run. A slot is either *ready*
(a full unroll the learner has not consumed yet) or *with the actor* (free or being
written). When an actor dies, every one of its slots that is not ready goes to its
replacement, so no slot is ever lost; ready slots are still consumed and then returned
to whichever process holds the actor's index.

Liveness: ``multiprocessing.connection.wait`` watches every actor's pipe and process
sentinel, so a death is seen at once (any signal, or an exception in the env, reported
over the pipe first). An actor silent for ``actor_timeout_s`` while it has a slot to
write into (at least ``STARTUP_GRACE_S`` before its first unroll: importing torch and
building the env and policy can be slow on a busy machine) is killed and replaced. The
learner never blocks on one actor.

Restarts cure transient faults (a crash mid-run, a killed process), not a deterministic
one: an actor that dies before its first unroll with the same error as the previous start
of its index (an env that cannot be made, reset or stepped at all) would die the same way
on every restart. The pool then raises ``ActorStartupFailure`` at once with that error
instead of restarting it up to ``max_actor_restarts`` times.
"""

from __future__ import annotations

import os
import signal
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

import torch

from launch.impala.actor import ActorSpec, run_actor
from launch.impala.buffers import RolloutBuffers
from launch.impala.config import TrainConfig
from launch.impala.env_factory import EpisodeRecord
from launch.impala.rollout import actor_seed
from launch.impala.shared_weights import SharedWeights


STARTUP_GRACE_S = 120.0
"""Least time an actor gets to send its first unroll before it counts as hung."""


class ActorFailure(RuntimeError):
    """Actors kept dying: more restarts than ``max_actor_restarts``, or a start-up failure."""


class ActorStartupFailure(ActorFailure):
    """An actor died before its first unroll with the same error as the previous start of
    its index, so restarting it cannot help.

    Attributes:
        actor: the actor's index.
        error: the error on one line (``'Type: message'``, or how the process died).
        bad_input: the error is a ``ConfigError`` or ``EnvConfigError`` (the launcher's
            bad-input class).
    """

    def __init__(self, actor: int, error: str, bad_input: bool) -> None:
        super().__init__(f"actor {actor} died before its first unroll with the same error on two starts in a row, "
                         f"so restarting it cannot help: {error}")
        self.actor = actor
        self.error = error
        self.bad_input = bad_input


@dataclass
class _Actor:
    index: int
    """Index of the actor, 0 .. num_actors - 1."""
    process: Any
    connection: Connection
    last_message: float
    error: str | None = None
    """The actor's exception on one line, when it reported one before dying."""
    error_details: str = ""
    bad_input: bool = False
    heard_from: bool = False
    sent_unroll: bool = False


@dataclass
class PollResult:
    episodes: list[EpisodeRecord] = field(default_factory=list)
    replaced: int = 0


def describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "is unresponsive"
    if exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


class ActorPool:
    """The actor processes of a run.

    Args:
        context: a multiprocessing context ("spawn" or "forkserver": never "fork", the
            learner may hold CUDA state).
        config: the run's config.
        buffers: the shared slots (``num_actors * per_actor`` of them).
        weights: the shared, versioned weights.
        per_actor: slots owned by each actor.
        first_generation: actors started before this pool (a resumed run keeps counting,
            so every actor start gets fresh env seeds).
        log: where reports go (one line each).
    """

    def __init__(self, context: Any, config: TrainConfig, buffers: RolloutBuffers, weights: SharedWeights,
                 per_actor: int, first_generation: int = 0, log: Callable[[str], None] = print) -> None:
        if buffers.num_buffers != config.num_actors * per_actor:
            raise ValueError(f"buffers hold {buffers.num_buffers} slots, expected {config.num_actors * per_actor}")
        self.context = context
        self.config = config
        self.buffers = buffers
        self.weights = weights
        self.per_actor = per_actor
        self.generation = first_generation
        self.log = log
        self.restarts = 0
        self.ready: deque[int] = deque()
        self.actors: list[_Actor | None] = [None] * config.num_actors
        self.startup_errors: list[str | None] = [None] * config.num_actors
        """Per actor index: how its latest start died before its first unroll, or None."""

    def slots_of(self, actor: int) -> list[int]:
        return list(range(actor * self.per_actor, (actor + 1) * self.per_actor))

    def start(self) -> None:
        for actor in range(self.config.num_actors):
            self._spawn(actor)

    @property
    def pids(self) -> list[int]:
        return [entry.process.pid for entry in self.actors if entry is not None]

    @property
    def actor_cores_here(self) -> float:
        """Cores of this machine the actors keep busy: one per actor process."""
        return float(self.config.num_actors)

    def describe(self) -> str:
        return f"actor pids {self.pids}"

    def publish_weights(self, state_dict: Mapping[str, torch.Tensor], version: int) -> None:
        """Make ``state_dict`` the weights every actor picks up before its next unroll."""
        self.weights.publish(state_dict, version)

    def _spawn(self, actor: int) -> None:
        ready = set(self.ready)
        owned = [slot for slot in self.slots_of(actor) if slot not in ready]
        learner_end, actor_end = self.context.Pipe(duplex=True)
        seed = actor_seed(self.config.seed, self.generation)
        spec = ActorSpec(index=actor, generation=self.generation, config=self.config, buffers=self.buffers,
                         weights=self.weights, buffer_ids=owned, connection=actor_end, parent_pid=os.getpid(),
                         seed=seed)
        process = self.context.Process(target=run_actor, args=(spec,), name=f"actor-{actor}", daemon=True)
        process.start()
        actor_end.close()
        self.generation += 1
        self.actors[actor] = _Actor(actor, process, learner_end, time.monotonic())

    def poll(self, timeout: float) -> PollResult:
        """Wait up to ``timeout`` s for messages; collect ready slots and episodes; replace
        dead or hung actors."""
        result = PollResult()
        watched: dict[Any, _Actor] = {}
        for entry in self.actors:
            assert entry is not None
            watched[entry.connection] = entry
            watched[entry.process.sentinel] = entry
        dead: dict[int, _Actor] = {}
        for ready_object in wait(list(watched), timeout):
            entry = watched[ready_object]
            if ready_object is entry.connection:
                if not self._drain(entry, result):
                    dead[entry.index] = entry
            else:
                dead[entry.index] = entry
        now = time.monotonic()
        ready = set(self.ready)
        for entry in self.actors:
            assert entry is not None
            has_free_slot = any(slot not in ready for slot in self.slots_of(entry.index))
            timeout = self.config.actor_timeout_s if entry.heard_from else max(self.config.actor_timeout_s,
                                                                                STARTUP_GRACE_S)
            if entry.index not in dead and has_free_slot and now - entry.last_message > timeout:
                self.log(f"actor {entry.index} (pid {entry.process.pid}) sent nothing for "
                         f"{now - entry.last_message:.0f} s while it had a free buffer; killing it")
                entry.process.kill()
                dead[entry.index] = entry
        for entry in dead.values():
            self._replace(entry, result)
        return result

    def _drain(self, entry: _Actor, result: PollResult) -> bool:
        """Read every pending message of one actor; False when its pipe is closed."""
        try:
            while entry.connection.poll():
                message = entry.connection.recv()
                entry.last_message = time.monotonic()
                entry.heard_from = True
                if message[0] == "unroll":
                    entry.sent_unroll = True
                    self.ready.append(message[1])
                    result.episodes.extend(EpisodeRecord(*episode) for episode in message[2])
                elif message[0] == "error":
                    entry.error, entry.error_details, entry.bad_input = message[1:4]
        except (EOFError, OSError):
            return False
        return True

    def _replace(self, entry: _Actor, result: PollResult) -> None:
        self._drain(entry, result)  # unrolls it finished before dying are still good
        entry.process.join(timeout=5.0)
        if entry.process.exitcode is None:
            entry.process.kill()
            entry.process.join(timeout=5.0)
        entry.connection.close()
        reason = "raised an exception" if entry.error else describe_exit(entry.process.exitcode)
        detail = f": {entry.error}" if entry.error else ""
        startup_error, previous = self._startup_error(entry), self.startup_errors[entry.index]
        self.startup_errors[entry.index] = startup_error
        if startup_error is not None and startup_error == previous:
            self.log(f"actor {entry.index} (pid {entry.process.pid}) {reason}{detail}; not replacing it: "
                     f"its previous start died the same way before its first unroll")
            raise ActorStartupFailure(entry.index, startup_error, entry.bad_input)
        self.restarts += 1
        result.replaced += 1
        self.log(f"actor {entry.index} (pid {entry.process.pid}) {reason}{detail}; "
                 f"replacing it (restart {self.restarts} of at most {self.config.max_actor_restarts})")
        if entry.error_details:
            self.log(entry.error_details.rstrip())
        if self.restarts > self.config.max_actor_restarts:
            raise ActorFailure(
                f"actors died {self.restarts} times (more than max_actor_restarts={self.config.max_actor_restarts}); "
                f"last: actor {entry.index} {reason}{detail}"
            )
        self._spawn(entry.index)

    @staticmethod
    def _startup_error(entry: _Actor) -> str | None:
        """How a dead actor failed, if it died before its first unroll in a way a restart
        would repeat: its exception, or a death by itself (an exit code, a signal such as
        SIGSEGV). None after an unroll, and for SIGKILL: the pool kills hung actors with it,
        and so does the kernel when memory runs out, neither of which says the env is broken.
        """
        if entry.sent_unroll:
            return None
        if entry.error:
            return entry.error
        exitcode = entry.process.exitcode
        if exitcode is None or exitcode == -signal.SIGKILL:
            return None
        return f"the actor process {describe_exit(exitcode)}"

    def take(self, count: int) -> list[int]:
        """The ``count`` oldest ready slots (the caller must ``release`` them after copying)."""
        if len(self.ready) < count:
            raise ValueError(f"only {len(self.ready)} slots are ready, asked for {count}")
        return [self.ready.popleft() for _ in range(count)]

    def release(self, slots: list[int]) -> None:
        """Give consumed slots back to their actors."""
        for slot in slots:
            entry = self.actors[slot // self.per_actor]
            assert entry is not None
            try:
                entry.connection.send(("free", slot))
            except OSError:
                pass  # the actor just died; its replacement gets the slot when it starts

    def close(self, timeout: float = 10.0) -> None:
        """Stop every actor: ask, wait up to ``timeout`` s in all, then kill what is left."""
        for entry in self.actors:
            if entry is not None:
                try:
                    entry.connection.send(("stop",))
                except OSError:
                    pass
        deadline = time.monotonic() + timeout
        for entry in self.actors:
            if entry is not None:
                entry.process.join(timeout=max(0.0, deadline - time.monotonic()))
        for entry in self.actors:
            if entry is not None:
                if entry.process.exitcode is None:
                    entry.process.kill()
                    entry.process.join(timeout=5.0)
                entry.connection.close()
        self.actors = [None] * len(self.actors)
