"""Action distributions built from a flat parameter tensor ``[..., P]``.

Each distribution exposes ``sample``, ``log_prob``, ``entropy`` and ``mode`` over the batch
prefix ``[...]`` of its parameters, so V-trace and the loss never assume softmax logits.
Factorised distributions (MultiDiscrete, MultiBinary, diagonal Gaussian) sum log-probs
and entropies over the action dimensions.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F

__all__ = [
    "ActionDistribution",
    "CategoricalDistribution",
    "MultiCategoricalDistribution",
    "BernoulliDistribution",
    "DiagonalGaussianDistribution",
]


class ActionDistribution(ABC):
    """A batch of action distributions with batch shape ``params.shape[:-1]``."""

    @abstractmethod
    def sample(self) -> torch.Tensor:
        """Draws one action per batch element: ``[..., *action_shape]``."""

    @abstractmethod
    def log_prob(self, action: torch.Tensor) -> torch.Tensor:
        """Log-probability (density for continuous actions) of ``action``: ``[...]``."""

    @abstractmethod
    def entropy(self) -> torch.Tensor:
        """Entropy of each distribution: ``[...]``."""

    @abstractmethod
    def mode(self) -> torch.Tensor:
        """The most likely action (the deterministic action): ``[..., *action_shape]``."""


class CategoricalDistribution(ActionDistribution):
    """Softmax over ``A`` choices; actions are int64 indices of shape ``[...]``.

    Args:
        logits: ``[..., A]`` unnormalised log-probabilities.
    """

    def __init__(self, logits: torch.Tensor) -> None:
        self.log_probs = F.log_softmax(logits, dim=-1)  # [..., A]

    def sample(self) -> torch.Tensor:
        probs = self.log_probs.exp()
        flat = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1)  # [N, 1]
        return flat.reshape(probs.shape[:-1])

    def log_prob(self, action: torch.Tensor) -> torch.Tensor:
        return self.log_probs.gather(-1, action.long().unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> torch.Tensor:
        return -(self.log_probs.exp() * self.log_probs).sum(-1)

    def mode(self) -> torch.Tensor:
        return self.log_probs.argmax(-1)


class MultiCategoricalDistribution(ActionDistribution):
    """Independent categoricals, one per entry of ``nvec`` (Gymnasium's MultiDiscrete).

    Args:
        logits: ``[..., sum(nvec)]``, the logits of each component concatenated.
        nvec: the number of choices of each component, in flattened order.
        action_shape: the shape of one action (``nvec``'s shape in the space).
    """

    def __init__(self, logits: torch.Tensor, nvec: tuple[int, ...], action_shape: tuple[int, ...]) -> None:
        if logits.shape[-1] != sum(nvec):
            raise ValueError(f"expected {sum(nvec)} logits for nvec {nvec}, got {logits.shape[-1]}")
        self.components = [CategoricalDistribution(part) for part in logits.split(list(nvec), dim=-1)]
        self.batch_shape = logits.shape[:-1]
        self.action_shape = action_shape

    def _stack(self, parts: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(parts, dim=-1).reshape(*self.batch_shape, *self.action_shape)

    def sample(self) -> torch.Tensor:
        return self._stack([component.sample() for component in self.components])

    def log_prob(self, action: torch.Tensor) -> torch.Tensor:
        flat = action.reshape(*self.batch_shape, len(self.components))  # [..., k]
        return sum(c.log_prob(flat[..., i]) for i, c in enumerate(self.components))

    def entropy(self) -> torch.Tensor:
        return sum(component.entropy() for component in self.components)

    def mode(self) -> torch.Tensor:
        return self._stack([component.mode() for component in self.components])


class BernoulliDistribution(ActionDistribution):
    """Independent binary choices (Gymnasium's MultiBinary); actions are int64 0/1.

    Args:
        logits: ``[..., n]`` log-odds of each bit being 1, flattened.
        action_shape: the shape of one action (the space's shape).
    """

    def __init__(self, logits: torch.Tensor, action_shape: tuple[int, ...]) -> None:
        self.logits = logits
        self.action_shape = action_shape

    def _shape(self, flat: torch.Tensor) -> torch.Tensor:
        return flat.reshape(*self.logits.shape[:-1], *self.action_shape)

    def sample(self) -> torch.Tensor:
        return self._shape((torch.rand_like(self.logits) < torch.sigmoid(self.logits)).long())

    def log_prob(self, action: torch.Tensor) -> torch.Tensor:
        bits = action.reshape(self.logits.shape).to(self.logits.dtype)
        return -F.binary_cross_entropy_with_logits(self.logits, bits, reduction="none").sum(-1)

    def entropy(self) -> torch.Tensor:
        probs = torch.sigmoid(self.logits)
        return F.binary_cross_entropy_with_logits(self.logits, probs, reduction="none").sum(-1)

    def mode(self) -> torch.Tensor:
        return self._shape((self.logits > 0).long())


class DiagonalGaussianDistribution(ActionDistribution):
    """Diagonal Gaussian over ``d`` real action dimensions (Gymnasium's Box).

    Samples are unbounded; bounds are applied when the action is sent to the environment
    (``ActionHead.to_env_action`` clips), so log-probabilities stay exact.

    Args:
        params: ``[..., 2 * d]``: means, then log standard deviations.
        action_shape: the shape of one action (the space's shape, ``prod == d``).
    """

    def __init__(self, params: torch.Tensor, action_shape: tuple[int, ...]) -> None:
        self.mean, self.log_std = params.chunk(2, dim=-1)  # [..., d] each
        self.action_shape = action_shape

    def _shape(self, flat: torch.Tensor) -> torch.Tensor:
        return flat.reshape(*self.mean.shape[:-1], *self.action_shape)

    def sample(self) -> torch.Tensor:
        return self._shape(self.mean + self.log_std.exp() * torch.randn_like(self.mean))

    def log_prob(self, action: torch.Tensor) -> torch.Tensor:
        flat = action.reshape(self.mean.shape).to(self.mean.dtype)
        z = (flat - self.mean) * torch.exp(-self.log_std)
        return (-0.5 * z.square() - self.log_std - 0.5 * math.log(2 * math.pi)).sum(-1)

    def entropy(self) -> torch.Tensor:
        return (self.log_std + 0.5 * (1.0 + math.log(2 * math.pi))).sum(-1)

    def mode(self) -> torch.Tensor:
        return self._shape(self.mean)
