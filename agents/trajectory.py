"""The unroll an actor hands to the learner: the data contract between launch/ and agents/.

Layout (time-major, ``T`` transitions, ``T + 1`` observations; consecutive unrolls of one
actor overlap by one observation, as in TorchBeast):

- step ``t`` in ``0..T`` holds the observation ``obs[t]`` the policy saw, whether it is the
  first observation of an episode (``reset[t]``), and the previous action and reward fed
  to the policy at that step (``previous_action[t]``, ``previous_reward[t]``: zero where
  ``reset[t]``);
- transition ``t`` in ``0..T-1`` holds the action taken at ``obs[t]``, its behaviour
  log-probability, and the reward / terminated / truncated the environment returned;
  ``policy_log_prob`` is the log-probability of that action under the actors' own policy
  network. It differs from the behaviour log-probability only where the actors explore
  around their policy (``launch.impala.exploration``: a held previous action); None means
  the two are equal.

Vector envs autoreset in Gymnasium's NEXT_STEP mode: after a step that ends an episode the
next observation is the episode's *final* observation, and the following step resets and
returns the new episode's first observation (reward 0, action ignored). That reset
transition is not a real transition: ``valid[t] = ~reset[t + 1]`` masks it out of every
loss term. Termination zeroes the discount; truncation keeps it, so the learner
bootstraps from the value of the final observation; both reset the core at the next
episode's first observation.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch


class Trajectory(NamedTuple):
    """One batch of unrolls, time-major. ``obs`` and ``previous_action`` may be nested
    (dict or tuple) for Dict / Tuple spaces; every leaf has the ``[T(+1), B]`` prefix."""

    obs: Any  # [T+1, B, *obs_shape] per leaf, raw dtype (uint8 images stay uint8)
    reset: torch.Tensor  # [T+1, B] bool: obs[t] is the first observation of an episode
    previous_action: Any  # [T+1, B, *action_shape]
    previous_reward: torch.Tensor  # [T+1, B] float32
    action: Any  # [T, B, *action_shape]
    behaviour_log_prob: torch.Tensor  # [T, B] float32
    reward: torch.Tensor  # [T, B] float32
    terminated: torch.Tensor  # [T, B] bool
    truncated: torch.Tensor  # [T, B] bool
    policy_log_prob: torch.Tensor | None = None  # [T, B] float32: log pi_actor(a_t), None: as behaviour

    @property
    def valid(self) -> torch.Tensor:
        """[T, B] bool: False for the autoreset step that leads into a new episode."""
        return ~self.reset[1:]
