"""The actors as Ray actors spread over a Ray cluster; the learner stays in this process.

``RayActorPool`` offers the Trainer the interface of ``launch.impala.actor_pool.ActorPool``
(``start``, ``poll``, ``ready``, ``take``, ``release``, ``publish_weights``, ``close``),
so one training loop serves both backends. The actors run ``launch.impala.ray_actor.RolloutActor``
(the same ``Rollout`` code as local actor processes) on whichever nodes Ray picks, spread
over the nodes (``SPREAD``), each reserving ``ray_actor_cpus`` CPUs and no GPU.

Transport: the learner owns ``num_buffers`` unshared slots. Each request to an actor
reserves a free slot; the actor returns the unroll's numpy arrays, which Ray keeps in
its object store until the learner has copied them into that slot. A slot goes back to
the free list when the learner releases it. So the object store never holds more than
``num_actors * ray_max_inflight`` unrolls, and actors that outpace the learner wait for
slots (backpressure). New weights are put into the object store once per update and the
reference goes with every request; an actor fetches them only when the version changed.

Faults: a request that fails tells that its actor died (process killed, node gone) or
raised; an actor with requests outstanding but no result for ``actor_timeout_s`` (at
least ``STARTUP_GRACE_S`` before its first result) counts as hung and is killed. Either
way its slots return to the free list and a replacement is started as soon as the
cluster has a free CPU for it; until then the run continues with fewer actors. When no
actor at all has been running for ``actor_timeout_s`` (none could be placed) the pool
raises ``ActorFailure``, so the learner never waits forever. Every wait on Ray is
bounded by a timeout.

Network: without ``ray_address`` the pool starts a private Ray instance with every
service on 127.0.0.1. Ray rewrites a loopback address to the machine's routable address
unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is set before Ray is imported (its
single-machine mode); ``import_ray`` sets it for a missing or loopback address and
``start`` checks afterwards that the node really is on 127.0.0.1.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import torch

from launch.impala.actor_pool import STARTUP_GRACE_S, ActorFailure, ActorStartupFailure, PollResult
from launch.impala.buffers import RolloutBuffers
from launch.impala.config import ConfigError, TrainConfig
from launch.impala.env_factory import EpisodeRecord
from launch.impala.ray_actor import RolloutActor
from launch.impala.rollout import actor_seed

INSTALL_HINT = "install it with: pip install 'relational-rl[ray]' (or: pip install ray)"
LOCAL_OBJECT_STORE_BYTES = 256 * 2**20
"""Object store of the private Ray instance started when no ``ray_address`` is given."""
RESULT_TIMEOUT_S = 60.0
"""Longest wait for the bytes of a result Ray already reported ready (e.g. on a dying node)."""
VACANCY_RETRY_S = 2.0
"""Seconds between attempts to place a replacement actor while the cluster has no CPU free."""
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def is_loopback_address(address: str | None) -> bool:
    """True for no address (a private instance) or a ``HOST:PORT`` on the loopback interface."""
    if address is None:
        return True
    host = address.split("://")[-1].rsplit(":", 1)[0]
    return host in _LOOPBACK_HOSTS or host.startswith("127.")


def import_ray(address: str | None) -> ModuleType:
    """Import Ray, keeping a private or loopback cluster on 127.0.0.1 (see the module doc).

    Raises:
        ConfigError: Ray is not installed (the message says how to install it).
    """
    if is_loopback_address(address):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError as error:
        raise ConfigError(f"--backend ray needs Ray, which is not installed ({error}); {INSTALL_HINT}") from None
    return ray


def check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """Fail fast when nothing accepts connections at ``address`` (Ray itself retries for minutes).

    Raises:
        ConfigError: a malformed address, or no answer within ``timeout`` s.
    """
    if address is None:
        return
    host, _, port = address.split("://")[-1].rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"ray_address must be HOST:PORT of the Ray head (e.g. 10.0.0.5:6379), got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as error:
        raise ConfigError(f"nothing answers at ray_address={address!r} ({error}); start the head with "
                          "'ray start --head' (docs/ray.md) or fix the address") from None


def connect(ray: ModuleType, config: TrainConfig) -> None:
    """Join the cluster at ``config.ray_address``, or start a private loopback instance."""
    common: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": True}
    sigterm_handler = signal.getsignal(signal.SIGTERM)  # ray.init installs its own; the Trainer's must stay
    try:
        _init(ray, config, common)
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, sigterm_handler)
    if is_loopback_address(config.ray_address):
        node_ip = ray.util.get_node_ip_address()
        if not node_ip.startswith("127."):
            ray.shutdown()
            raise ConfigError(f"Ray put this node on {node_ip}, not 127.0.0.1: Ray was imported before "
                              "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 was set; set it in the environment")


def _init(ray: ModuleType, config: TrainConfig, common: dict[str, Any]) -> None:
    if config.ray_address is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False,
                 num_cpus=max(cores, math.ceil(config.num_actors * config.ray_actor_cpus)),
                 object_store_memory=LOCAL_OBJECT_STORE_BYTES, **common)
    else:
        try:
            ray.init(address=config.ray_address, **common)
        except (ConnectionError, ValueError, RuntimeError) as error:
            raise ConfigError(
                f"cannot join the Ray cluster at ray_address={config.ray_address!r}: {error}. If the cluster uses "
                "token authentication, set RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN or ~/.ray/auth_token) "
                "in this shell too (docs/ray.md)") from None


@dataclass
class _Member:
    """One running Ray actor and its outstanding requests."""

    index: int
    handle: Any
    placement_ref: Any | None
    inflight: dict[Any, int] = field(default_factory=dict)
    """Object reference of each outstanding unroll request -> the learner slot reserved for it."""
    waiting_since: float | None = None
    """When the actor last delivered, or was first asked while idle; None with nothing outstanding."""
    heard_from: bool = False
    pid: int | None = None
    node: str | None = None

    @property
    def name(self) -> str:
        where = f" on node {self.node[:12]}" if self.node else ""
        return f"actor {self.index} (pid {self.pid}{where})" if self.pid else f"actor {self.index}"


def describe_ray_error(error: Exception) -> tuple[str, str | None]:
    """``(short reason, full text or None)`` for a failed Ray request."""
    import ray

    if isinstance(error, ray.exceptions.RayTaskError):
        cause = getattr(error, "cause", None)
        headline = f"{type(cause).__name__}: {cause}" if cause is not None else str(error).strip().splitlines()[0]
        return f"raised an exception: {headline}", str(error)
    if isinstance(error, ray.exceptions.GetTimeoutError):
        return f"delivered no data within {RESULT_TIMEOUT_S:g} s of reporting a result", None
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return f"died ({type(error).__name__}: {lines[0] if lines else 'no detail'})", None


BAD_INPUT_ERRORS = ("BadInput", "ConfigError", "EnvConfigError", "UnsupportedSpaceError", "CheckpointError")
"""Names of the launcher's bad-input exceptions, as they come back from a Ray actor."""


def startup_signature(error: Exception) -> str | None:
    """``'Type: message'`` of the exception a Ray actor raised (in its constructor or in a
    request), the same on every start that fails the same way; None for deaths a restart may
    cure (a killed process, a lost node, a timeout)."""
    import ray

    if isinstance(error, ray.exceptions.RayTaskError):
        cause = getattr(error, "cause", None)
        return f"{type(cause).__name__}: {cause}" if cause is not None else None
    if isinstance(error, ray.exceptions.ActorDiedError) and getattr(error, "actor_init_failed", False):
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        return lines[-1] if lines else None  # the creation task's traceback ends with 'Type: message'
    return None


class RayActorPool:
    """The Ray actors of a run and the learner-side slots they fill.

    Args:
        config: the run's config (``backend == "ray"``).
        buffers: the learner's slots (unshared); at least ``num_actors`` of them.
        state_dict: the initial weights.
        version: their version (non-zero when a run resumes).
        first_generation: actors started before this pool (distinct seeds per start).
        log: where reports go (one line each).
    """

    def __init__(self, config: TrainConfig, buffers: RolloutBuffers, state_dict: Mapping[str, torch.Tensor],
                 version: int = 0, first_generation: int = 0, log: Callable[[str], None] = print) -> None:
        if buffers.num_buffers < config.num_actors:
            raise ValueError(f"buffers hold {buffers.num_buffers} slots, need at least num_actors={config.num_actors}")
        self.config = config
        self.buffers = buffers
        self.log = log
        self.generation = first_generation
        self.restarts = 0
        self.ready: deque[int] = deque()
        self.free: deque[int] = deque(range(buffers.num_buffers))
        self.members: list[_Member | None] = [None] * config.num_actors
        self.startup_errors: list[str | None] = [None] * config.num_actors
        self.vacant_since: dict[int, float] = {}
        self._initial_weights = (state_dict, version)
        self._next_vacancy_try = 0.0
        self._reported_shortage = False
        self.ray: ModuleType | None = None
        self._actor_class: Any = None
        self._weights_ref: Any = None
        self._version = version
        self.actor_cores_here = 0.0
        """Cores of this machine Ray may give to actors (known after ``start``)."""

    # --- start and weights ----------------------------------------------------------------
    def start(self) -> None:
        """Connect to Ray, publish the initial weights and start every actor."""
        self.ray = ray = import_ray(self.config.ray_address)
        connect(ray, self.config)
        self._actor_class = ray.remote(num_cpus=self.config.ray_actor_cpus, num_gpus=0, max_restarts=0,
                                       max_task_retries=0)(RolloutActor)
        self.publish_weights(*self._initial_weights)
        self._initial_weights = None  # type: ignore[assignment]
        nodes = [node for node in ray.nodes() if node.get("Alive")]
        resources = ray.cluster_resources()
        self.log(f"Ray cluster at {self.config.ray_address or 'a private local instance (127.0.0.1)'}: "
                 f"{len(nodes)} node(s), {resources.get('CPU', 0):g} CPU(s), {resources.get('GPU', 0):g} GPU(s)")
        here = [node["Resources"] for node in nodes if node["NodeID"] == ray.get_runtime_context().get_node_id()]
        local_gpus = sum(node_resources.get("GPU", 0) for node_resources in here)
        self.actor_cores_here = min(sum(node_resources.get("CPU", 0) for node_resources in here),
                                    self.config.num_actors * self.config.ray_actor_cpus)
        if resources.get("GPU", 0) > 0 and local_gpus == 0:
            self.log("the cluster has GPUs but the learner (this process) runs on a node without one: "
                     "start the training command on a GPU node (docs/ray.md)")
        now = time.monotonic()
        for index in range(self.config.num_actors):
            self.vacant_since[index] = now
        self._fill_vacancies(now)  # actors beyond the free CPUs wait as vacancies, retried every VACANCY_RETRY_S
        self._request_unrolls()

    def publish_weights(self, state_dict: Mapping[str, torch.Tensor], version: int) -> None:
        """Put the weights into the object store once; later requests carry the reference."""
        assert self.ray is not None, "call start() first"
        arrays = {name: value.detach().cpu().numpy() for name, value in state_dict.items()}
        self._weights_ref = self.ray.put(arrays)
        self._version = version

    @property
    def pids(self) -> list[int]:
        return [member.pid for member in self.members if member is not None and member.pid is not None]

    def describe(self) -> str:
        running = sum(member is not None for member in self.members)
        return f"{running} Ray actor(s) requested ({self.config.ray_actor_cpus:g} CPU each, spread over the nodes)"

    # --- actors -------------------------------------------------------------------------------
    def _spawn(self, index: int) -> None:
        seed = actor_seed(self.config.seed, self.generation)
        handle = self._actor_class.options(scheduling_strategy="SPREAD").remote(self.config, seed)
        self.generation += 1
        self.members[index] = _Member(index, handle, handle.placement.remote())
        self.vacant_since.pop(index, None)

    def _fill_vacancies(self, now: float) -> None:
        """Start replacements for vacant indices while the cluster has CPUs free."""
        if not self.vacant_since or now < self._next_vacancy_try:
            return
        assert self.ray is not None
        self._next_vacancy_try = now + VACANCY_RETRY_S
        free_cpus = self.ray.available_resources().get("CPU", 0.0)
        for index in sorted(self.vacant_since):
            if free_cpus < self.config.ray_actor_cpus:
                break
            self._spawn(index)
            free_cpus -= self.config.ray_actor_cpus
        running = sum(member is not None for member in self.members)
        if self.vacant_since and not self._reported_shortage:
            self.log(f"no CPU free in the Ray cluster for {len(self.vacant_since)} actor(s); continuing with "
                     f"{running} actor(s) and retrying every {VACANCY_RETRY_S:g} s")
            self._reported_shortage = True
        if not self.vacant_since:
            self._reported_shortage = False
        if running == 0 and now - min(self.vacant_since.values()) > self.config.actor_timeout_s:
            raise ActorFailure(f"no Ray actor could be placed for {self.config.actor_timeout_s:g} s (actor_timeout_s); "
                               f"the cluster has {self.ray.available_resources().get('CPU', 0):g} CPU(s) free and "
                               f"each actor needs ray_actor_cpus={self.config.ray_actor_cpus:g}")

    def _remove(self, member: _Member, reason: str, detail: str | None, result: PollResult,
                startup_error: str | None = None) -> None:
        """Drop a failed actor: its slots go back to the free list, its index waits for a
        replacement. ``startup_error``: how it failed before its first unroll, when a restart
        would repeat it; the same on two starts of one index in a row stops the run
        (``ActorStartupFailure``), as with local actors.
        """
        assert self.ray is not None
        self.free.extend(member.inflight.values())
        member.inflight.clear()
        try:
            self.ray.kill(member.handle, no_restart=True)
        except Exception:  # already gone with its node
            pass
        self.members[member.index] = None
        previous, self.startup_errors[member.index] = self.startup_errors[member.index], startup_error
        if startup_error is not None and startup_error == previous:
            self.log(f"{member.name} {reason}; not replacing it: its previous start died the same way before "
                     "its first unroll")
            raise ActorStartupFailure(member.index, startup_error, startup_error.split(":")[0] in BAD_INPUT_ERRORS)
        self.vacant_since[member.index] = time.monotonic()
        self.restarts += 1
        result.replaced += 1
        self.log(f"{member.name} {reason}; replacing it "
                 f"(restart {self.restarts} of at most {self.config.max_actor_restarts})")
        if detail:
            self.log(detail.rstrip())
        if self.restarts > self.config.max_actor_restarts:
            raise ActorFailure(f"actors died {self.restarts} times (more than max_actor_restarts="
                               f"{self.config.max_actor_restarts}); last: {member.name} {reason}")

    def _request_unrolls(self) -> None:
        """Hand free slots to the actors with the fewest requests outstanding (at most ray_max_inflight each)."""
        now = time.monotonic()
        while self.free:
            candidates = [member for member in self.members
                          if member is not None and len(member.inflight) < self.config.ray_max_inflight]
            if not candidates:
                return
            member = min(candidates, key=lambda candidate: len(candidate.inflight))
            slot = self.free.popleft()
            reference = member.handle.produce.remote([self._weights_ref], self._version)
            if not member.inflight:
                member.waiting_since = now
            member.inflight[reference] = slot

    # --- the learner's side -------------------------------------------------------------
    def poll(self, timeout: float) -> PollResult:
        """Wait up to ``timeout`` s for results; copy finished unrolls into their slots;
        replace failed or hung actors; hand free slots out as new requests."""
        assert self.ray is not None, "call start() first"
        ray, result = self.ray, PollResult()
        owners: dict[Any, _Member] = {}
        for member in self.members:
            if member is not None:
                owners.update((reference, member) for reference in member.inflight)
                if member.placement_ref is not None:
                    owners[member.placement_ref] = member
        done: list[Any] = []
        if owners:
            done, _ = ray.wait(list(owners), num_returns=1, timeout=timeout)
            if done:
                done, _ = ray.wait(list(owners), num_returns=len(owners), timeout=0)
        else:
            time.sleep(timeout)
        failed: dict[int, tuple[_Member, str, str | None, str | None]] = {}
        for reference in done:
            member = owners[reference]
            if member.index in failed:
                continue
            if reference is member.placement_ref:
                member.placement_ref = None
                try:
                    member.pid, member.node, host = ray.get(reference, timeout=RESULT_TIMEOUT_S)
                except ray.exceptions.RayError as error:
                    failed[member.index] = (member, *describe_ray_error(error), startup_signature(error))
                    continue
                self.log(f"actor {member.index} (pid {member.pid}) runs on node {member.node} (host {host})")
                continue
            slot = member.inflight.pop(reference)
            try:
                arrays, episodes = ray.get(reference, timeout=RESULT_TIMEOUT_S)
            except ray.exceptions.RayError as error:
                self.free.append(slot)
                failed[member.index] = (member, *describe_ray_error(error),
                                        None if member.heard_from else startup_signature(error))
                continue
            self.buffers.write_slot(slot, arrays)
            self.ready.append(slot)
            result.episodes.extend(EpisodeRecord(*episode) for episode in episodes)
            member.heard_from = True
            member.waiting_since = time.monotonic() if member.inflight else None
        now = time.monotonic()
        for member in self.members:
            if member is None or member.index in failed or member.waiting_since is None:
                continue
            limit = self.config.actor_timeout_s if member.heard_from else max(self.config.actor_timeout_s,
                                                                              STARTUP_GRACE_S)
            if now - member.waiting_since > limit:
                failed[member.index] = (member, f"sent nothing for {now - member.waiting_since:.0f} s while it had "
                                                f"work; killing it", None, None)
        for member, reason, detail, startup_error in failed.values():
            self._remove(member, reason, detail, result, startup_error)
        self._fill_vacancies(now)
        self._request_unrolls()
        return result

    def take(self, count: int) -> list[int]:
        """The ``count`` oldest ready slots (the caller must ``release`` them after copying)."""
        if len(self.ready) < count:
            raise ValueError(f"only {len(self.ready)} slots are ready, asked for {count}")
        return [self.ready.popleft() for _ in range(count)]

    def release(self, slots: list[int]) -> None:
        """Return consumed slots to the free list; the next ``poll`` turns them into requests
        (after the learner published the weights of its update)."""
        self.free.extend(slots)

    def close(self, timeout: float = 10.0) -> None:
        """Kill every actor and leave the cluster (a private instance shuts down)."""
        if self.ray is None:
            return
        for member in self.members:
            if member is not None:
                try:
                    self.ray.kill(member.handle, no_restart=True)
                except Exception:
                    pass
        self.members = [None] * len(self.members)
        self.ray.shutdown()
        self.ray = None
