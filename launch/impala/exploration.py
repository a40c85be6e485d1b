"""Exploration that holds the previous action: the actors' behaviour policy.

With probability ``p`` an actor repeats the game's previous action instead of the action the
policy sampled (never at an episode's first step, which has no previous action). The
behaviour policy is then the mixture ``mu(a) = p * [a == previous] + (1 - p) * pi(a)``, and
its log-probability is what the rollout records, so V-trace's importance weights correct for
it like for any behaviour policy; the rollout records ``log pi`` of the action taken too, and
PPO's clip is taken against ``pi`` with the weight ``min(1, pi / mu)`` (agents/loss.py). The
policy that is learned and evaluated is ``pi``. ``p`` falls linearly to 0 over the first
``action_hold_steps`` frames (200K by default, or the run's frames if fewer), as DQN anneals
its epsilon, and the actors act on the policy alone after that; with ``action_hold_spread``
each actor's games hold with probabilities spread from 0 to ``p``.

Why: on Acrobot-v1 a random policy that keeps its previous action with probability 0.8
meets the goal in 21 of 50 episodes, one that samples every step in none
(docs/learning.md, probe 9). With the clip taken against the actors' policy, the
probabilities spread over the games and its end at 200K frames it is the default
(docs/learning.md, candidates O, P and Q). Discrete action spaces only: on others the actors
sample the policy at every step.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from launch.impala.config import TrainConfig


def hold_probability(config: TrainConfig, version: int) -> float:
    """``config.action_hold_probability`` falling linearly to 0 over the run's first
    ``action_hold_steps`` frames (all of them with 0, or when the run is shorter), at the
    policy of learner update ``version``."""
    horizon = config.total_steps
    if config.action_hold_steps:
        horizon = min(horizon, config.action_hold_steps)
    return config.action_hold_probability * max(0.0, 1.0 - version * config.steps_per_update / horizon)


def holds_actions(config: TrainConfig, action_space: gym.Space) -> bool:
    """Whether the actors hold actions: a hold probability above 0 and a Discrete action
    space (a held action of another space has no probability mass to mix with)."""
    return config.action_hold_probability > 0.0 and isinstance(action_space, gym.spaces.Discrete)


def game_hold_shares(config: TrainConfig) -> torch.Tensor:
    """``[E]`` each game's share of the hold probability: 1 for every game, or, with
    ``action_hold_spread``, ``i / (E - 1)`` for game ``i`` (Ape-X's spread of exploration
    rates over its actors, here over one actor's games; 1 for a single game)."""
    games = config.envs_per_actor
    if not config.action_hold_spread or games == 1:
        return torch.ones(games)
    return torch.linspace(0.0, 1.0, games)


def on_policy_games(config: TrainConfig, holds: bool) -> np.ndarray:
    """``[E]`` bool: the games of an actor that act with the policy itself (never hold): every
    game when the actors do not hold actions, else the games whose share is 0 (with
    ``action_hold_spread``, game 0)."""
    return (game_hold_shares(config) == 0).numpy() | (not holds)


def hold_previous_actions(action: torch.Tensor, logits: torch.Tensor, previous_action: torch.Tensor,
                          reset: torch.Tensor, probability: float | torch.Tensor
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Replace each game's sampled action by its previous one with ``probability``.

    Args:
        action: ``[B]`` int64 actions sampled from the policy.
        logits: ``[B, n]`` the policy's logits.
        previous_action: ``[B]`` each game's previous action (ignored where ``reset``).
        reset: ``[B]`` bool, True at an episode's first step (the action is never held there).
        probability: ``p``, one for every game or ``[B]``, one per game.

    Returns:
        ``(action, behaviour_log_prob, policy_log_prob)``: the actions taken, ``log mu(action)``
        and ``log pi(action)``.
    """
    hold = (~reset).to(logits.dtype) * probability  # p per game, 0 at episode starts
    held = torch.rand(action.shape) < hold
    taken = torch.where(held, previous_action, action)
    policy_prob = torch.softmax(logits, dim=-1).gather(-1, taken.unsqueeze(-1)).squeeze(-1)
    behaviour_prob = hold * (taken == previous_action).to(logits.dtype) + (1.0 - hold) * policy_prob
    return taken, behaviour_prob.log(), policy_prob.log()
