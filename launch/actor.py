"""The actor process: steps a batch of games with a CPU copy of the policy, writes unrolls.

Each actor owns a fixed set of buffer slots. It fills a free slot with one unroll (the
layout of ``agents.trajectory.Trajectory``, NEXT_STEP autoreset), sends the slot index and
the episodes that ended to the learner over its own pipe, and gets slots back over the
same pipe once the learner has copied them. Before each unroll it picks up newer weights
(``launch.shared_weights``) and records their version, so the learner can measure
policy lag.

Protocol (pickled tuples on a private duplex pipe, so a dying actor can never wedge a
queue shared with others):

- actor -> learner: ``("unroll", slot, episodes)`` with ``episodes`` a list of
  ``(return, length, success or None)``; ``("error", text)`` before exiting on an exception.
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

import numpy as np
import torch

from launch.buffers import RolloutBuffers, map_structure, map_structures
from launch.config import TrainConfig
from launch.env_factory import episode_stats, make_vector_env
from launch.shared_weights import SharedWeights


@dataclasses.dataclass
class ActorSpec:
    """What one actor process needs (pickled to the spawned process)."""

    slot: int
    """Index of the actor (its buffer slots are fixed per index)."""
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
        text = f"{type(error).__name__}: {error}\n{traceback.format_exc()}"
        try:
            spec.connection.send(("error", text))
        except OSError:
            pass
        sys.stderr.write(f"actor {spec.slot} failed: {text}")
        sys.stderr.flush()
        os._exit(1)  # at once: no interpreter teardown that could stall the learner's join


class ActorLoop:
    """The state of one actor between unrolls."""

    def __init__(self, spec: ActorSpec) -> None:
        from launch.policy_factory import build_policy

        self.spec = spec
        config = spec.config
        torch.manual_seed(spec.seed)
        self.env = make_vector_env(config.env, config.envs_per_actor, config.env_kwargs, config.wrappers,
                                   config.env_package)
        self.policy = build_policy(config, self.env.single_observation_space, self.env.single_action_space)
        self.policy.eval()
        self.version = spec.weights.read_into(self.policy)
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
        spec, buffers, policy = self.spec, self.spec.buffers, self.policy
        num_envs, unroll_length = spec.config.envs_per_actor, spec.config.unroll_length
        observation, _ = self.env.reset(seed=spec.seed)
        state = policy.initial_state(num_envs)
        reset = torch.ones(num_envs, dtype=torch.bool)
        previous_action = torch.zeros((num_envs, *policy.action_shape), dtype=policy.action_dtype)
        previous_reward = torch.zeros(num_envs, dtype=torch.float32)
        autoreset_next = np.zeros(num_envs, dtype=bool)  # games whose next step is a reset step
        while True:
            slot = self._next_slot()
            newer = spec.weights.read_into(policy, self.version)
            if newer is not None:
                self.version = newer
            buffers.policy_version[slot] = self.version
            for part, stored in zip(state, buffers.core_state):
                stored[slot].copy_(part)
            episodes: list[tuple[float, int, float | None]] = []
            for t in range(unroll_length + 1):
                map_structures(lambda dst, src: dst[slot, t].copy_(torch.as_tensor(src)), buffers.obs, observation)
                buffers.reset[slot, t] = reset
                buffers.previous_action[slot, t] = previous_action
                buffers.previous_reward[slot, t] = previous_reward
                if t == unroll_length:
                    break  # obs[T] is also obs[0] of the next unroll (the step is taken then)
                obs_tensor = map_structure(lambda leaf: leaf[slot, t], buffers.obs)
                output, state = policy.act(obs_tensor, previous_action, previous_reward, reset, state)
                observation, reward, terminated, truncated, info = self.env.step(policy.to_env_action(output.action))
                buffers.action[slot, t] = output.action
                buffers.behaviour_log_prob[slot, t] = output.log_prob
                reward_tensor = torch.as_tensor(reward, dtype=torch.float32)
                buffers.reward[slot, t] = reward_tensor
                buffers.terminated[slot, t] = torch.as_tensor(terminated)
                buffers.truncated[slot, t] = torch.as_tensor(truncated)
                episodes.extend(episode_stats(info))
                reset = torch.from_numpy(autoreset_next.copy())  # that step reset these games
                autoreset_next = np.logical_or(terminated, truncated)
                keep = ~reset
                previous_action = output.action * keep.view((-1,) + (1,) * len(policy.action_shape)).to(output.action.dtype)
                previous_reward = reward_tensor * keep
            spec.connection.send(("unroll", slot, episodes))
