"""Making the batch of games an actor steps, from an env id, kwargs and wrappers.

An id registered with a ``vector_entry_point`` (every ``rmc/`` game, and ids of other
packages such as ale_py's ``ALE/*-v5``) gets that vector env only when it passes a probe:
made with the requested number of games, it must reset with the seeds the actors use and
autoreset in NEXT_STEP mode. Any other id, a run with wrappers (they wrap single envs), or
a vector env that fails the probe gets Gymnasium's ``SyncVectorEnv`` over single envs
(``reset(seed=s)`` gives game ``i`` the seed ``s + i``, whatever the env). Either is wrapped
in Gymnasium's vector ``RecordEpisodeStatistics`` (episode return and length in
``info["episode"]``). The rollout layout needs NEXT_STEP autoreset; other modes are
rejected.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from agents.spaces import UnsupportedSpaceError, encodable_space
from launch.cli import BadInput

SUPPORTED_SPACES = (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary,
                    gym.spaces.Dict, gym.spaces.Tuple)


class EnvConfigError(BadInput):
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


PROBE_SEED = 2**32 - 1
"""The seed of the probe reset: the largest an actor resets its games with
(``launch.impala.rollout.actor_seed`` draws 32-bit seeds), so a vector env that takes it takes
every actor's seed. ale_py 0.12's ``AtariVectorEnv``, for one, hands the games' seeds to
C++ as 32-bit signed ints and raises ``TypeError`` for larger ones."""


def make_vector_env(
    env_id: str,
    num_envs: int,
    env_kwargs: dict[str, Any] | None = None,
    wrappers: Sequence[str] = (),
    env_packages: Sequence[str] = (),
    log: Callable[[str], None] | None = None,
) -> gym.vector.VectorEnv:
    """A vector env of ``num_envs`` games with episode statistics, NEXT_STEP autoreset.

    The env's own vector env (its ``vector_entry_point``) is used when it passes
    ``probe_vector_entry_point``; otherwise Gymnasium's ``SyncVectorEnv`` over single envs.
    The probe is deterministic, so the learner and every actor process choose the same
    kind of vector env, and so see the same spaces.

    Args:
        env_id: a registered id.
        num_envs: games in the batch.
        env_kwargs: keyword arguments of the env's constructor.
        wrappers: ``'module:callable'`` wrappers applied to each single env.
        env_packages: modules to import first (they register ids).
        log: receives one line naming the kind of vector env chosen and why.

    Raises:
        EnvConfigError: an unknown id, kwargs the env rejects, or an unsupported space.
    """
    import_env_packages(env_packages)
    spec = env_spec(env_id)
    kwargs = dict(env_kwargs or {})
    env: gym.vector.VectorEnv | None = None
    why_not_own = ""
    if spec.vector_entry_point is not None:
        if wrappers:
            why_not_own = "the wrappers apply to single envs"
        else:
            env, why_not_own = probe_vector_entry_point(env_id, num_envs, kwargs)
    own = _entry_point_name(spec.vector_entry_point)
    if env is not None:
        choice = f"its own vector env ({own})"
    else:
        try:
            env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync",
                               wrappers=[resolve_wrapper(text) for text in wrappers], **kwargs)
        except EnvConfigError:
            raise
        except Exception as error:  # the env's own constructor rejected the kwargs
            hint = f" (its vector_entry_point was not used: {why_not_own})" if why_not_own else ""
            message = f"could not make {env_id!r} with kwargs {kwargs}: {describe_error(error)}{hint}"
            raise EnvConfigError(message) from None
        choice = "Gymnasium's SyncVectorEnv over single envs"
        if why_not_own:
            choice += f", not its vector_entry_point ({own}): {why_not_own}"
    mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if not _is_next_step(mode):
        env.close()
        raise EnvConfigError(f"{env_id!r} autoresets in mode {mode}; the launcher needs NEXT_STEP autoreset")
    check_space(env.single_observation_space, "observation")
    check_space(env.single_action_space, "action")
    if log is not None:
        log(f"games of {env_id}: {choice}")
    return RecordEpisodeStatistics(env)


def probe_vector_entry_point(env_id: str, num_envs: int,
                             kwargs: dict[str, Any]) -> tuple[gym.vector.VectorEnv | None, str]:
    """The env's own vector env of ``num_envs`` games if the actors can use it, else why not.

    A vector env registered by another package may take seeds and options its own way; the
    rollout resets once, ``env.reset(seed=SEED)`` with a Python int, and relies on NEXT_STEP
    autoreset after that. So the vector env is made, reset with ``PROBE_SEED`` and its
    autoreset mode read; whatever fails is described rather than raised, and the caller
    falls back to single envs.

    Returns:
        ``(env, "")`` when it passes (the env has been reset once), else ``(None, reason)``.
    """
    try:
        env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    except Exception as error:
        return None, f"making it raised {describe_error(error)}"
    try:
        env.reset(seed=PROBE_SEED)
    except Exception as error:
        _close_quietly(env)
        return None, f"reset(seed={PROBE_SEED}) raised {describe_error(error)}"
    mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if not _is_next_step(mode):
        _close_quietly(env)
        return None, f"it autoresets in mode {mode}, not NEXT_STEP"
    return env, ""


def describe_error(error: BaseException) -> str:
    """``'Type: message'`` on one line (native bindings often raise multi-line messages)."""
    message = " ".join(str(error).split())
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _entry_point_name(entry_point: Any) -> str:
    """``'module:name'`` of a registered entry point, given as a string or a callable."""
    if entry_point is None or isinstance(entry_point, str):
        return str(entry_point)
    return f"{entry_point.__module__}:{getattr(entry_point, '__qualname__', repr(entry_point))}"


def _is_next_step(mode: Any) -> bool:
    return mode == AutoresetMode.NEXT_STEP or str(mode) == str(AutoresetMode.NEXT_STEP)


def _close_quietly(env: gym.vector.VectorEnv) -> None:
    try:
        env.close()
    except Exception:
        pass


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
    """Raise EnvConfigError for a space the rollout buffers cannot hold.

    Of an observation space only ``agents.spaces.encodable_space`` is checked: the parts of
    a Dict / Tuple the agent does not encode (a MiniGrid mission string) never reach the
    buffers. A space with nothing else gets the agent's message, which suggests a wrapper.
    """
    if role == "observation":
        try:
            space = encodable_space(space)
        except UnsupportedSpaceError as error:
            raise EnvConfigError(str(error)) from None
    if not isinstance(space, SUPPORTED_SPACES):
        raise EnvConfigError(
            f"unsupported {role} space {space}; supported: {[kind.__name__ for kind in SUPPORTED_SPACES]}"
        )
    children = space.spaces.values() if isinstance(space, gym.spaces.Dict) else (
        space.spaces if isinstance(space, gym.spaces.Tuple) else ())
    for child in children:
        check_space(child, role)


class EpisodeRecord(NamedTuple):
    """One episode that ended: what the actors report to the learner, and evaluation counts."""

    return_: float
    length: int
    success: float | None
    """The env's ``info["success"]`` at the episode's end; None when it reports none."""
    on_policy: bool = True
    """Whether the game acted with the policy itself; False for a game whose actions the
    actors' exploration holds (launch/impala/exploration.py)."""


def episode_stats(info: dict[str, Any], on_policy: np.ndarray | None = None) -> list[EpisodeRecord]:
    """The ``EpisodeRecord`` of each episode that ended at this step; ``on_policy`` (``[E]``
    bool, default all True) marks the games that act with the policy itself."""
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
        acted_on_policy = True if on_policy is None else bool(on_policy[index])
        results.append(EpisodeRecord(float(returns[index]), int(lengths[index]), value, acted_on_policy))
    return results
