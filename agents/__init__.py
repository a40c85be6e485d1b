"""Agents: a space-generic RMC actor-critic, V-trace and the IMPALA loss.

- ``agents.policy.ActorCritic``: encoder chosen from the observation space, an ``rmc`` /
  ``lstm`` / ``none`` core, value and action heads chosen from the action space.
- ``agents.vtrace``: ``from_importance_weights`` and ``from_log_probs``.
- ``agents.loss``: ``LossConfig`` and ``impala_loss``.
- ``agents.trajectory.Trajectory``: the unroll an actor hands to the learner.

The public names are loaded lazily, so ``import agents`` stays cheap (and never touches
CUDA); ``from agents import ActorCritic`` loads the policy module on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ActorCritic": "agents.policy",
    "ActOutput": "agents.policy",
    "UnrollOutput": "agents.policy",
    "CORE_PRESETS": "agents.policy",
    "ActionDistribution": "agents.distributions",
    "LossConfig": "agents.loss",
    "LossOutput": "agents.loss",
    "impala_loss": "agents.loss",
    "Trajectory": "agents.trajectory",
    "UnsupportedSpaceError": "agents.spaces",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'agents' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
