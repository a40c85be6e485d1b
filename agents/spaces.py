"""Helpers for Gymnasium spaces and the nested (dict / tuple) tensors that mirror them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch

__all__ = ["UnsupportedSpaceError", "space_leaves", "get_leaf", "map_leaves", "to_tensor_tree"]

Path = tuple[str | int, ...]


class UnsupportedSpaceError(ValueError):
    """Raised for a Gymnasium space the agent cannot encode or act in; names the space."""


def space_leaves(space: gym.Space, path: Path = ()) -> list[tuple[Path, gym.Space]]:
    """Flattens nested Dict / Tuple spaces into ``(path, leaf_space)`` pairs, in key order."""
    if isinstance(space, gym.spaces.Dict):
        return [leaf for key, sub in space.spaces.items() for leaf in space_leaves(sub, (*path, key))]
    if isinstance(space, gym.spaces.Tuple):
        return [leaf for index, sub in enumerate(space.spaces) for leaf in space_leaves(sub, (*path, index))]
    return [(path, space)]


def get_leaf(tree: Any, path: Path) -> Any:
    """The element of a nested dict / tuple structure at ``path``."""
    for key in path:
        tree = tree[key]
    return tree


def map_leaves(function: Callable[[Any], Any], tree: Any) -> Any:
    """Applies ``function`` to every leaf of a nested dict / tuple / list structure."""
    if isinstance(tree, Mapping):
        return {key: map_leaves(function, value) for key, value in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(map_leaves(function, value) for value in tree)
    return function(tree)


def to_tensor_tree(tree: Any, device: torch.device | str | None = None) -> Any:
    """Converts every numpy / scalar leaf of a nested structure to a tensor (no copy if possible)."""
    return map_leaves(lambda leaf: torch.as_tensor(np.asarray(leaf) if not torch.is_tensor(leaf) else leaf,
                                                   device=device), tree)
