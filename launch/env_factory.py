"""Making the batch of games an actor steps, from an env id, kwargs and wrappers.

An id registered with a ``vector_entry_point`` (every ``rmc/`` game) gets its batch-native
vector env; any other id gets Gymnasium's ``SyncVectorEnv`` over single envs. Either is
wrapped in Gymnasium's vector ``RecordEpisodeStatistics`` (episode return and length in
``info["episode"]``). The rollout layout needs NEXT_STEP autoreset; other modes are
rejected.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers.vector import RecordEpisodeStatistics

SUPPORTED_SPACES = (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary,
                    gym.spaces.Dict, gym.spaces.Tuple)


class EnvConfigError(ValueError):
    """An env id, kwargs, wrapper or space the launcher cannot use; the message says why."""


def import_env_packages(packages: Sequence[str]) -> None:
    """Import the project's games and each user module that registers envs."""
    importlib.import_module("envs")
    for name in packages:
        try:
            importlib.import_module(name)
        except ImportError as error:
            raise EnvConfigError(f"--env-package {name!r} could not be imported: {error}") from None


def resolve_wrapper(text: str) -> Callable[[gym.Env], gym.Env]:
    """``'module:callable'`` -> the callable (applied to each single env)."""
    module_name, _, attribute = text.partition(":")
    if not module_name or not attribute:
        raise EnvConfigError(f"a wrapper must be given as 'module:callable', got {text!r}")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        raise EnvConfigError(f"wrapper {text!r} could not be found: {error}") from None
    if not callable(target):
        raise EnvConfigError(f"wrapper {text!r} is not callable")
    return target


def env_spec(env_id: str) -> gym.envs.registration.EnvSpec:
    """The registered spec of ``env_id``; an unknown id names close matches."""
    if env_id not in gym.registry:
        close = difflib.get_close_matches(env_id, list(gym.registry), n=5, cutoff=0.5)
        hint = f"; did you mean one of {close}?" if close else ""
        raise EnvConfigError(
            f"unknown env id {env_id!r}{hint} (use --env-package MODULE to import a module that registers it)"
        )
    return gym.spec(env_id)


def make_vector_env(
    env_id: str,
    num_envs: int,
    env_kwargs: dict[str, Any] | None = None,
    wrappers: Sequence[str] = (),
    env_packages: Sequence[str] = (),
) -> gym.vector.VectorEnv:
    """A vector env of ``num_envs`` games with episode statistics, NEXT_STEP autoreset."""
    import_env_packages(env_packages)
    spec = env_spec(env_id)
    kwargs = dict(env_kwargs or {})
    try:
        if spec.vector_entry_point is not None and not wrappers:
            env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
        else:
            env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync",
                               wrappers=[resolve_wrapper(text) for text in wrappers], **kwargs)
    except EnvConfigError:
        raise
    except Exception as error:  # the env's own constructor rejected the kwargs
        raise EnvConfigError(f"could not make {env_id!r} with kwargs {kwargs}: {type(error).__name__}: {error}") from None
    mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if mode != AutoresetMode.NEXT_STEP and str(mode) != str(AutoresetMode.NEXT_STEP):
        env.close()
        raise EnvConfigError(f"{env_id!r} autoresets in mode {mode}; the launcher needs NEXT_STEP autoreset")
    check_space(env.single_observation_space, "observation")
    check_space(env.single_action_space, "action")
    return RecordEpisodeStatistics(env)


def make_single_env(
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    wrappers: Sequence[str] = (),
    env_packages: Sequence[str] = (),
    render_mode: str | None = None,
) -> gym.Env:
    """One game of ``env_id`` with the run's wrappers (for watching and recording it).

    Raises:
        EnvConfigError: an unknown id, kwargs the env rejects, an unsupported space, or a
            ``render_mode`` the env does not offer.
    """
    import_env_packages(env_packages)
    spec = env_spec(env_id)
    kwargs = dict(env_kwargs or {})
    if render_mode is not None:
        modes = _render_modes(spec)
        if modes is not None and render_mode not in modes:
            raise EnvConfigError(f"{env_id!r} cannot render {render_mode!r} frames; its render modes are {modes}")
    try:
        env = gym.make(env_id, render_mode=render_mode, **kwargs)
        for text in wrappers:
            env = resolve_wrapper(text)(env)
    except EnvConfigError:
        raise
    except Exception as error:
        raise EnvConfigError(f"could not make {env_id!r} with kwargs {kwargs}: {type(error).__name__}: {error}") from None
    check_space(env.observation_space, "observation")
    check_space(env.action_space, "action")
    return env


def _render_modes(spec: gym.envs.registration.EnvSpec) -> list[str] | None:
    """The render modes the env class declares in its metadata, or None when unknown."""
    try:
        entry = spec.entry_point
        if isinstance(entry, str):
            module_name, _, attribute = entry.partition(":")
            entry = getattr(importlib.import_module(module_name), attribute)
        modes = getattr(entry, "metadata", {}).get("render_modes")
    except (ImportError, AttributeError):
        return None
    return list(modes) if modes is not None else None


def check_space(space: gym.Space, role: str) -> None:
    """Raise EnvConfigError for a space the rollout buffers cannot hold."""
    if not isinstance(space, SUPPORTED_SPACES):
        raise EnvConfigError(
            f"unsupported {role} space {space}; supported: {[kind.__name__ for kind in SUPPORTED_SPACES]}"
        )
    children = space.spaces.values() if isinstance(space, gym.spaces.Dict) else (
        space.spaces if isinstance(space, gym.spaces.Tuple) else ())
    for child in children:
        check_space(child, role)


def episode_stats(info: dict[str, Any]) -> list[tuple[float, int, float | None]]:
    """``(return, length, success or None)`` of each episode that ended at this step."""
    if "_episode" not in info:
        return []
    ended = info["_episode"]
    returns, lengths = info["episode"]["r"], info["episode"]["l"]
    success = info.get("success")
    success_mask = info.get("_success")
    results = []
    for index in ended.nonzero()[0]:
        value: float | None = None
        if success is not None and success_mask is not None and success_mask[index]:
            value = float(success[index])
        results.append((float(returns[index]), int(lengths[index]), value))
    return results
