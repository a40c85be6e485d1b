"""Producing one unroll into a buffer slot: the acting code that every backend shares.

A ``Rollout`` owns a batch of ``E`` games, a CPU copy of the policy and the recurrent
carry between unrolls (core state, previous action and reward, which games reset next).
``unroll(buffers, slot, version)`` steps the games ``T`` times and writes the result
into one slot of a ``RolloutBuffers`` in the layout of ``agents.trajectory.Trajectory``
(NEXT_STEP autoreset). How the slot reaches the learner is the caller's business: the
local actor process (``launch.impala.actor``) writes into shared memory and sends the slot
index over a pipe; the Ray actor (``launch.impala.ray_actor``) writes into a private one-slot
buffer and returns its arrays through Ray's object store.
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import torch

from agents.spaces import encodable_observation, map_leaves
from agents.trajectory import Trajectory
from launch.impala.buffers import RolloutBuffers
from launch.impala.config import TrainConfig, resolve_device
from launch.impala.env_factory import EpisodeRecord, episode_stats, make_vector_env
from launch.impala.exploration import (game_hold_shares, hold_previous_actions, hold_probability, holds_actions,
                                      on_policy_games)


def compiles_acting(config: TrainConfig) -> bool:
    """Whether actors compile their acting step: ``compile_acting`` 'on' or 'off', or for
    'auto' when the run's learner is on a CUDA device (a GPU machine, where the actors set the
    pace once the learner is fast). On a small CPU machine the learner sets the pace, and the
    compile (about 20 s per actor) would not pay for short runs."""
    if config.compile_acting == "auto":
        return resolve_device(config.device).type == "cuda"
    return config.compile_acting == "on"


def actor_seed(run_seed: int, generation: int) -> int:
    """The seed of the ``generation``-th actor started in a run seeded ``run_seed``.

    A vector env seeds its games ``seed + i``, so seeds spaced by the number of games (as
    they once were) gave runs with neighbouring ``--seed`` values all but one of
    the same level streams. Hashing ``(run_seed, generation)`` gives every run and actor its
    own range.
    """
    state = np.random.SeedSequence([run_seed, generation]).generate_state(1, dtype=np.uint32)
    return int(state[0])


class Rollout:
    """The games, policy copy and recurrent carry of one actor.

    Args:
        config: the run's config (env, agent, ``envs_per_actor``, ``unroll_length``).
        seed: seed of the torch RNG (action sampling) and of the games' first reset.
    """

    def __init__(self, config: TrainConfig, seed: int) -> None:
        from launch.impala.policy_factory import build_policy

        torch.manual_seed(seed)
        self.config = config
        self.env = make_vector_env(config.env, config.envs_per_actor, config.env_kwargs, config.wrappers,
                                   config.env_package)
        self.policy = build_policy(config, self.env.single_observation_space, self.env.single_action_space)
        self.policy.eval()
        self.act = self.policy.act
        """The acting step: ``policy.act``, or its ``torch.compile``'d version (``compile_acting``),
        which reads the weights as inputs, so ``SharedWeights.read_into`` reaches it."""
        if compiles_acting(config):
            import torch._inductor.config as inductor_config

            inductor_config.compile_threads = 1  # the actors compile side by side, one core each
            self.act = torch.compile(self.policy.act, dynamic=False)
        policy, num_envs = self.policy, config.envs_per_actor
        self.observation, _ = self.env.reset(seed=seed)
        self.state = policy.initial_state(num_envs)
        self.reset = torch.ones(num_envs, dtype=torch.bool)
        self.holds = holds_actions(config, self.env.single_action_space)
        self.hold_shares = game_hold_shares(config)  # [E]
        self.on_policy_games = on_policy_games(config, self.holds)  # [E]
        self.previous_action = torch.zeros((num_envs, *policy.action_shape), dtype=policy.action_dtype)
        self.previous_reward = torch.zeros(num_envs, dtype=torch.float32)
        self.autoreset_next = np.zeros(num_envs, dtype=bool)  # games whose next step is a reset step

    def make_buffers(self, num_buffers: int, shared: bool) -> RolloutBuffers:
        """Buffers whose slots fit this rollout's unrolls."""
        return RolloutBuffers(num_buffers, self.config.unroll_length, self.config.envs_per_actor,
                              self.env.single_observation_space, self.policy.action_shape, self.policy.action_dtype,
                              self.policy.initial_state(self.config.envs_per_actor), shared=shared,
                              explores=self.holds)

    @torch.inference_mode()
    def unroll(self, buffers: RolloutBuffers, slot: int, version: int) -> list[EpisodeRecord]:
        """Step the games ``T`` times, writing one unroll into ``buffers`` slot ``slot``.

        Runs in inference mode (no autograd bookkeeping at all, where ``no_grad`` still keeps
        version counters): ``policy.act`` 1.03-1.12x faster (benchmarks/policy_speed.py).

        Args:
            buffers: where the unroll goes.
            slot: the slot to overwrite.
            version: the learner update the policy's current weights came from.

        Returns:
            The episodes that ended during the unroll.
        """
        policy, unroll_length = self.policy, self.config.unroll_length
        buffers.policy_version[slot] = version
        hold = hold_probability(self.config, version) if self.holds else 0.0
        for part, stored in zip(self.state, buffers.core_state):
            stored[slot].copy_(part)
        episodes: list[EpisodeRecord] = []
        observation_space = self.env.single_observation_space
        for t in range(unroll_length + 1):
            kept_observation = encodable_observation(self.observation, observation_space)  # the buffers' part
            map_leaves(lambda dst, src: dst[slot, t].copy_(torch.as_tensor(src)), buffers.obs, kept_observation)
            buffers.reset[slot, t] = self.reset
            buffers.previous_action[slot, t] = self.previous_action
            buffers.previous_reward[slot, t] = self.previous_reward
            if t == unroll_length:
                break  # obs[T] is also obs[0] of the next unroll (the step is taken then)
            obs_tensor = map_leaves(lambda leaf: leaf[slot, t], buffers.obs)
            output, self.state = self.act(obs_tensor, self.previous_action, self.previous_reward, self.reset,
                                          self.state)
            action, behaviour_log_prob, policy_log_prob = output.action, output.log_prob, output.log_prob
            if hold > 0.0:
                action, behaviour_log_prob, policy_log_prob = hold_previous_actions(
                    action, output.policy_params, self.previous_action, self.reset, hold * self.hold_shares)
            self.observation, reward, terminated, truncated, info = self.env.step(policy.to_env_action(action))
            buffers.action[slot, t] = action
            buffers.behaviour_log_prob[slot, t] = behaviour_log_prob
            buffers.policy_log_prob[slot, t] = policy_log_prob
            reward_tensor = torch.as_tensor(reward, dtype=torch.float32)
            buffers.reward[slot, t] = reward_tensor
            buffers.terminated[slot, t] = torch.as_tensor(terminated)
            buffers.truncated[slot, t] = torch.as_tensor(truncated)
            episodes.extend(episode_stats(info, self.on_policy_games))
            self.reset = torch.from_numpy(self.autoreset_next.copy())  # that step reset these games
            self.autoreset_next = np.logical_or(terminated, truncated)
            keep = ~self.reset
            shape = (-1,) + (1,) * len(policy.action_shape)
            self.previous_action = action * keep.view(shape).to(action.dtype)
            self.previous_reward = reward_tensor * keep
        return episodes

    def close(self) -> None:
        self.env.close()


def record_unroll(config: TrainConfig, model_state: dict[str, torch.Tensor], games: int, steps: int, seed: int,
                  warmup_unrolls: int = 0) -> tuple[Trajectory, tuple[torch.Tensor, ...], gym.Space, gym.Space]:
    """``games`` fresh games played by the policy of ``model_state``, one unroll of ``steps`` kept.

    The games first play ``warmup_unrolls`` unrolls of ``steps`` (thrown away), so the kept
    one starts mid-episode with the core state the policy carried there, as an actor's
    unrolls do after the first; with none, every game starts at its first step.

    Returns:
        ``(trajectory, initial_state, observation_space, action_space)``: the unroll in the
        learner's layout (``[T(+1), games, ...]``) and the core state at its first step.
    """
    acting = dataclasses.replace(config, envs_per_actor=games, unroll_length=steps, compile_acting="off")
    rollout = Rollout(acting, seed)
    try:
        rollout.policy.load_state_dict(model_state)
        buffers = rollout.make_buffers(1, shared=False)
        for _ in range(warmup_unrolls + 1):
            rollout.unroll(buffers, 0, 0)
        trajectory, state, _ = buffers.gather([0], torch.device("cpu"))
        return trajectory, state, rollout.env.single_observation_space, rollout.env.single_action_space
    finally:
        rollout.close()
