"""Helpers for Gymnasium spaces and the nested (dict / tuple) tensors that mirror them.

The agent encodes numeric leaves only (``ENCODABLE_LEAF_SPACES``). Other leaves of a Dict /
Tuple observation, such as the mission string (a ``Text`` space) of MiniGrid, are left out:
``encodable_space`` is the part of a space the agent sees (and the rollout buffers hold),
``encodable_observation`` the matching part of an observation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch

__all__ = [
    "ENCODABLE_LEAF_SPACES",
    "UnsupportedSpaceError",
    "space_leaves",
    "is_encodable_leaf",
    "left_out_leaves",
    "path_name",
    "encodable_space",
    "encodable_observation",
    "get_leaf",
    "map_leaves",
    "to_tensor_tree",
]

Path = tuple[str | int, ...]

ENCODABLE_LEAF_SPACES = (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)
"""Leaf spaces the agent encodes: each observation of one is a numeric array of a fixed shape."""

_WRAPPER_HINT = ("wrap the env so that its observations are numeric (launch: --wrappers MODULE:CALLABLE; "
                 "for MiniGrid: --wrappers minigrid.wrappers:ImgObsWrapper)")


class UnsupportedSpaceError(ValueError):
    """Raised for a Gymnasium space the agent cannot encode or act in; names the space."""


def space_leaves(space: gym.Space, path: Path = ()) -> list[tuple[Path, gym.Space]]:
    """Flattens nested Dict / Tuple spaces into ``(path, leaf_space)`` pairs, in key order."""
    if isinstance(space, gym.spaces.Dict):
        return [leaf for key, sub in space.spaces.items() for leaf in space_leaves(sub, (*path, key))]
    if isinstance(space, gym.spaces.Tuple):
        return [leaf for index, sub in enumerate(space.spaces) for leaf in space_leaves(sub, (*path, index))]
    return [(path, space)]


def is_encodable_leaf(space: gym.Space) -> bool:
    """True for a leaf space the agent encodes (one of ``ENCODABLE_LEAF_SPACES``)."""
    return isinstance(space, ENCODABLE_LEAF_SPACES)


def left_out_leaves(space: gym.Space) -> list[tuple[Path, gym.Space]]:
    """The ``(path, leaf_space)`` pairs of ``space`` that ``encodable_space`` leaves out."""
    return [(path, leaf) for path, leaf in space_leaves(space) if not is_encodable_leaf(leaf)]


def path_name(path: Path) -> str:
    """A leaf's path as a user reads it: ``'mission'``, ``'extra/1'``."""
    return repr("/".join(str(key) for key in path))


def _reduce(space: gym.Space) -> gym.Space | None:
    """``space`` without its non-encodable leaves, or None if nothing encodable is left."""
    if isinstance(space, gym.spaces.Dict):
        kept = {key: reduced for key, sub in space.spaces.items() if (reduced := _reduce(sub)) is not None}
        return gym.spaces.Dict(kept) if kept else None
    if isinstance(space, gym.spaces.Tuple):
        kept_items = [reduced for sub in space.spaces if (reduced := _reduce(sub)) is not None]
        return gym.spaces.Tuple(kept_items) if kept_items else None
    return space if is_encodable_leaf(space) else None


def encodable_space(space: gym.Space) -> gym.Space:
    """The part of an observation space the agent encodes and the rollout buffers hold.

    Leaves that are not numeric arrays of a fixed shape (``Text``, ``Sequence``, ``Graph``,
    ...) are removed from Dicts and Tuples, and so are Dicts and Tuples left empty; a space
    without such leaves is returned as it is. A MiniGrid observation, for example, keeps
    its ``image`` and ``direction`` and loses its ``mission`` string, which the agent has no
    encoder for (and which is the same in every episode of a task such as MiniGrid-Memory).

    Raises:
        UnsupportedSpaceError: when nothing encodable is left (a ``Text`` space, or a Dict of
            ``Text`` only); the message names the space or its keys and suggests a wrapper.
    """
    if not left_out_leaves(space):
        return space
    reduced = _reduce(space)
    if reduced is not None:
        return reduced
    supported = ("the agent encodes Box, Discrete, MultiDiscrete and MultiBinary, alone or inside a Dict / Tuple "
                 "with at least one of them")
    if isinstance(space, (gym.spaces.Dict, gym.spaces.Tuple)):
        parts = ", ".join(f"{path_name(path)} ({type(leaf).__name__})" for path, leaf in space_leaves(space))
        raise UnsupportedSpaceError(f"unsupported observation space {space!r}: none of its parts can be encoded "
                                    f"({parts or 'it is empty'}); {supported}; {_WRAPPER_HINT}")
    raise UnsupportedSpaceError(f"unsupported observation space {space!r}: {supported}; {_WRAPPER_HINT}")


def encodable_observation(observation: Any, space: gym.Space) -> Any:
    """The part of an observation of ``space`` that ``encodable_space(space)`` describes.

    Works on single observations and on batches alike (leaves are selected, never read).
    An observation that is already reduced is returned unchanged, so the policy can take
    either: a Dict keeps the kept keys it finds, and a Tuple whose length is that of the
    reduced Tuple is taken as reduced (the lengths differ whenever a position was dropped).

    Raises:
        ValueError: for a Tuple observation of neither length.
    """
    if not left_out_leaves(space):
        return observation
    return _select(observation, space)


def _select(observation: Any, space: gym.Space) -> Any:
    if isinstance(space, gym.spaces.Dict):
        return {key: _select(observation[key], sub) for key, sub in space.spaces.items() if _reduce(sub) is not None}
    if isinstance(space, gym.spaces.Tuple):
        kept = [index for index, sub in enumerate(space.spaces) if _reduce(sub) is not None]
        if len(observation) == len(space.spaces):
            items = [observation[index] for index in kept]
        elif len(observation) == len(kept):
            items = list(observation)
        else:
            raise ValueError(f"a tuple observation of {len(space.spaces)} parts ({len(kept)} once reduced) was "
                             f"expected, got {len(observation)}")
        return tuple(_select(item, space.spaces[index]) for item, index in zip(items, kept))
    return observation


def get_leaf(tree: Any, path: Path) -> Any:
    """The element of a nested dict / tuple structure at ``path``."""
    for key in path:
        tree = tree[key]
    return tree


def map_leaves(function: Callable[..., Any], tree: Any, *others: Any) -> Any:
    """Applies ``function`` to every leaf of a nested dict / tuple / list structure, keeping
    the structure (a named tuple stays one). With ``others`` (trees of the same structure)
    ``function`` gets the matching leaf of each: ``function(leaf, *other_leaves)``. None is
    an absent part (an optional field of a named tuple) and stays None."""
    if tree is None:
        return None
    if isinstance(tree, Mapping):
        return {key: map_leaves(function, value, *(other[key] for other in others)) for key, value in tree.items()}
    if isinstance(tree, (tuple, list)):
        mapped = [map_leaves(function, *items) for items in zip(tree, *others)]
        return type(tree)(*mapped) if hasattr(tree, "_fields") else type(tree)(mapped)
    return function(tree, *others)


def to_tensor_tree(tree: Any, device: torch.device | str | None = None) -> Any:
    """Converts every numpy / scalar leaf of a nested structure to a tensor (no copy if possible)."""
    return map_leaves(lambda leaf: torch.as_tensor(np.asarray(leaf) if not torch.is_tensor(leaf) else leaf,
                                                   device=device), tree)
