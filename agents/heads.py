"""Policy heads chosen from the action space.

An ``ActionHead`` maps the policy's hidden features to a flat parameter tensor, builds the
matching ``ActionDistribution`` from it, and knows the tensor layout of one action
(``action_shape``, ``action_dtype``), how to send it to the environment
(``to_env_action``) and how to feed it back to the policy as the previous action
(``encode_action``).

Supported action spaces:

- ``Discrete(n, start)``: categorical; actions are indices ``0..n-1`` (``start`` is added
  by ``to_env_action``); previous action one-hot.
- ``MultiDiscrete(nvec, start)``: one categorical per component; same index convention;
  previous action concatenated one-hots.
- ``MultiBinary(n)``: independent Bernoullis; previous action the bits as floats.
- ``Box`` with a floating dtype: diagonal Gaussian with a state-independent learnable
  log standard deviation (initialised to 0); samples are unbounded and *clipped* to the
  bounds by ``to_env_action`` (no tanh squashing, so log-probabilities are exact); the
  previous action is fed back clipped to the bounds.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from agents.distributions import (
    ActionDistribution,
    BernoulliDistribution,
    CategoricalDistribution,
    DiagonalGaussianDistribution,
    MultiCategoricalDistribution,
)
from agents.spaces import UnsupportedSpaceError

__all__ = [
    "ActionHead",
    "DiscreteHead",
    "MultiDiscreteHead",
    "MultiBinaryHead",
    "GaussianHead",
    "make_action_head",
]


class ActionHead(nn.Module):
    """Base class: a Linear layer from features to distribution parameters.

    Args:
        input_size: size of the hidden features fed to the head.
        num_params: size of the flat parameter vector the distribution needs.
        action_shape: tensor shape of one action.
        action_dtype: tensor dtype of actions.
        encoded_action_size: size of ``encode_action``'s output.
    """

    def __init__(self, input_size: int, num_params: int, action_shape: tuple[int, ...],
                 action_dtype: torch.dtype, encoded_action_size: int) -> None:
        super().__init__()
        self.linear = nn.Linear(input_size, num_params)
        self.num_params = num_params
        self.action_shape = action_shape
        self.action_dtype = action_dtype
        self.encoded_action_size = encoded_action_size

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``[..., input_size]`` -> ``[..., num_params]`` distribution parameters."""
        return self.linear(features)

    def distribution(self, params: torch.Tensor) -> ActionDistribution:
        """The action distribution for ``[..., num_params]`` parameters."""
        raise NotImplementedError

    def encode_action(self, action: torch.Tensor) -> torch.Tensor:
        """``[..., *action_shape]`` actions -> ``[..., encoded_action_size]`` float features."""
        raise NotImplementedError

    def to_env_action(self, action: torch.Tensor) -> np.ndarray:
        """A batch of actions in tensor layout -> the numpy actions the environment takes."""
        raise NotImplementedError


class DiscreteHead(ActionHead):
    """Categorical head for ``gymnasium.spaces.Discrete``."""

    def __init__(self, input_size: int, space: gym.spaces.Discrete) -> None:
        n = int(space.n)
        super().__init__(input_size, n, (), torch.int64, n)
        self.n = n
        self.start = int(space.start)
        self.env_dtype = space.dtype

    def distribution(self, params: torch.Tensor) -> CategoricalDistribution:
        return CategoricalDistribution(params)

    def encode_action(self, action: torch.Tensor) -> torch.Tensor:
        return F.one_hot(action.long(), self.n).float()

    def to_env_action(self, action: torch.Tensor) -> np.ndarray:
        return (action.detach().cpu().numpy() + self.start).astype(self.env_dtype)


class MultiDiscreteHead(ActionHead):
    """One categorical per component for ``gymnasium.spaces.MultiDiscrete``."""

    def __init__(self, input_size: int, space: gym.spaces.MultiDiscrete) -> None:
        self.nvec = tuple(int(n) for n in np.asarray(space.nvec).reshape(-1))
        super().__init__(input_size, sum(self.nvec), tuple(space.shape), torch.int64, sum(self.nvec))
        self.start = np.asarray(space.start)
        self.env_dtype = space.dtype

    def distribution(self, params: torch.Tensor) -> MultiCategoricalDistribution:
        return MultiCategoricalDistribution(params, self.nvec, self.action_shape)

    def encode_action(self, action: torch.Tensor) -> torch.Tensor:
        flat = action.long().reshape(*action.shape[: action.dim() - len(self.action_shape)], len(self.nvec))
        return torch.cat([F.one_hot(flat[..., i], n) for i, n in enumerate(self.nvec)], dim=-1).float()

    def to_env_action(self, action: torch.Tensor) -> np.ndarray:
        return (action.detach().cpu().numpy() + self.start).astype(self.env_dtype)


class MultiBinaryHead(ActionHead):
    """Independent Bernoulli bits for ``gymnasium.spaces.MultiBinary``."""

    def __init__(self, input_size: int, space: gym.spaces.MultiBinary) -> None:
        size = int(np.prod(space.shape))
        super().__init__(input_size, size, tuple(space.shape), torch.int64, size)
        self.env_dtype = space.dtype

    def distribution(self, params: torch.Tensor) -> BernoulliDistribution:
        return BernoulliDistribution(params, self.action_shape)

    def encode_action(self, action: torch.Tensor) -> torch.Tensor:
        return action.reshape(*action.shape[: action.dim() - len(self.action_shape)], -1).float()

    def to_env_action(self, action: torch.Tensor) -> np.ndarray:
        return action.detach().cpu().numpy().astype(self.env_dtype)


class GaussianHead(ActionHead):
    """Diagonal Gaussian for a floating ``gymnasium.spaces.Box``, clipped to its bounds."""

    def __init__(self, input_size: int, space: gym.spaces.Box) -> None:
        size = int(np.prod(space.shape))
        super().__init__(input_size, size, tuple(space.shape), torch.float32, size)
        self.num_params = 2 * size
        self.log_std = nn.Parameter(torch.zeros(size))
        self.register_buffer("low", torch.as_tensor(space.low, dtype=torch.float32).reshape(-1), persistent=False)
        self.register_buffer("high", torch.as_tensor(space.high, dtype=torch.float32).reshape(-1), persistent=False)
        self.env_low = space.low
        self.env_high = space.high
        self.env_dtype = space.dtype

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        mean = self.linear(features)  # [..., d]
        return torch.cat([mean, self.log_std.expand_as(mean)], dim=-1)  # [..., 2d]

    def distribution(self, params: torch.Tensor) -> DiagonalGaussianDistribution:
        return DiagonalGaussianDistribution(params, self.action_shape)

    def encode_action(self, action: torch.Tensor) -> torch.Tensor:
        flat = action.reshape(*action.shape[: action.dim() - len(self.action_shape)], -1).float()
        return torch.maximum(torch.minimum(flat, self.high), self.low)

    def to_env_action(self, action: torch.Tensor) -> np.ndarray:
        return np.clip(action.detach().cpu().numpy(), self.env_low, self.env_high).astype(self.env_dtype)


def make_action_head(action_space: gym.Space, input_size: int) -> ActionHead:
    """Chooses the policy head for ``action_space``.

    Args:
        action_space: the environment's (single, unbatched) action space.
        input_size: size of the features the head reads.

    Returns:
        The matching ``ActionHead``.

    Raises:
        UnsupportedSpaceError: for any other space, naming it.
    """
    if isinstance(action_space, gym.spaces.Discrete):
        return DiscreteHead(input_size, action_space)
    if isinstance(action_space, gym.spaces.MultiDiscrete):
        return MultiDiscreteHead(input_size, action_space)
    if isinstance(action_space, gym.spaces.MultiBinary):
        return MultiBinaryHead(input_size, action_space)
    if isinstance(action_space, gym.spaces.Box):
        if not np.issubdtype(action_space.dtype, np.floating):
            raise UnsupportedSpaceError(
                f"unsupported action space {action_space!r}: a Box action space needs a floating "
                f"dtype, got {action_space.dtype}"
            )
        return GaussianHead(input_size, action_space)
    raise UnsupportedSpaceError(
        f"unsupported action space {action_space!r}: supported are Discrete, MultiDiscrete, "
        "MultiBinary and Box (floating dtype)"
    )
