"""A trained policy from what a run left on disk: the checkpoint file (a run directory's
latest or best), its config and weights, and the policy built from them.

Used by every tool that plays or inspects a checkpoint (``launch.evaluate``,
``launch.watch``, ``launch.tools``) and by ``benchmarks/learning_suite.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from launch.impala.checkpoint import BEST_CHECKPOINT, CheckpointError, best_checkpoint, latest_checkpoint, load_checkpoint
from launch.impala.config import TrainConfig

if TYPE_CHECKING:
    from agents import ActorCritic

__all__ = ["load_trained", "resolve_checkpoint", "trained_policy"]


def resolve_checkpoint(path: str | Path, best: bool = False) -> Path:
    """A checkpoint file, or a run directory's latest checkpoint (its ``best.pt`` with ``best``).

    Raises:
        CheckpointError: no such checkpoint.
    """
    path = Path(path)
    if best:
        if not path.is_dir():
            raise CheckpointError(f"--best needs a run directory, got {str(path)!r}")
        found = best_checkpoint(path / "checkpoints")
        if found is None:
            raise CheckpointError(
                f"{str(path)!r} has no checkpoints/{BEST_CHECKPOINT}: the run saw fewer training episodes than its "
                "best_window_episodes, turned it off (0), or was made before best checkpoints existed"
            )
        return found
    if path.is_dir():
        found = latest_checkpoint(path / "checkpoints") or latest_checkpoint(path)
        if found is None:
            raise CheckpointError(f"{str(path)!r} holds no checkpoint (expected a run directory or a .pt file)")
        return found
    return path


def load_trained(path: str | Path, env: str | None = None, env_kwargs: dict[str, Any] | None = None,
                 env_package: list[str] | None = None,
                 best: bool = False) -> tuple[TrainConfig, dict[str, torch.Tensor]]:
    """The config and model weights of a checkpoint file or run directory (its latest).

    Args:
        path: a checkpoint file or a run directory.
        best: take the run directory's best policy (``checkpoints/best.pt``) instead of its latest.
        env: play this env id instead of the checkpoint's (its spaces must match).
        env_kwargs: env kwargs instead of the checkpoint's.
        env_package: modules to import, in addition to the checkpoint's, that register envs.

    Raises:
        CheckpointError: the file is missing, unreadable or not a launch.train checkpoint.
        ConfigError: the checkpoint's config is not a valid TrainConfig.
    """
    resolved = resolve_checkpoint(path, best)
    checkpoint = load_checkpoint(resolved)
    try:
        config = TrainConfig.from_saved_json(json.loads(checkpoint["config"]))
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{str(resolved)!r} holds an invalid config: {error}") from None
    if env is not None:
        config.env = env
    if env_kwargs is not None:
        config.env_kwargs = env_kwargs
    if env_package:
        config.env_package = list(config.env_package) + list(env_package)
    return config, checkpoint["model"]


def trained_policy(config: TrainConfig, model_state: dict[str, torch.Tensor], observation_space: Any,
                   action_space: Any) -> ActorCritic:
    """The policy of ``config`` with ``model_state`` loaded, in eval mode.

    Raises:
        CheckpointError: the weights do not fit these spaces (a checkpoint of another env).
    """
    from launch.impala.policy_factory import build_policy

    policy = build_policy(config, observation_space, action_space)
    try:
        policy.load_state_dict(model_state)
    except RuntimeError as error:
        detail = str(error).splitlines()[1].strip() if len(str(error).splitlines()) > 1 else str(error)
        raise CheckpointError(
            f"the checkpoint's weights do not fit {config.env!r} (observation space {observation_space}, action "
            f"space {action_space}): was it trained on another env? ({detail})"
        ) from None
    return policy.eval()
