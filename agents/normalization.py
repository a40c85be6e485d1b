"""Running statistics that make the agent independent of the scale of rewards and observations.

``PopArtValueHead`` normalises the value targets; ``ObservationNormalizer`` normalises
vector observations. Both keep their statistics in buffers, so they travel with
``state_dict`` to the actors and into checkpoints, and both are updated by the learner
only, once per batch, so every actor acts with the statistics of the weights it holds.

PopArt: a value head whose outputs keep their meaning while its targets are normalised.

Van Hasselt et al. 2016, "Learning values across many orders of magnitude"; Hessel et al.
2019, "Multi-task deep reinforcement learning with PopArt" (applied to IMPALA). The head
keeps running estimates ``mu`` and ``sigma`` of the value targets' first and second moments
and predicts a *normalised* value ``n(x)``; the value the rest of the agent sees is
``V(x) = sigma * n(x) + mu``. Three things follow:

- The value loss is taken in normalised units, ``0.5 * ((v_s - V(x)) / sigma)^2``, and the
  policy-gradient advantage is divided by ``sigma`` (``agents.loss``). With raw returns an
  env whose discounted returns are ~100 (CartPole) makes the value term ~1e4 times the
  entropy bonus and the advantages ~100 times those of an env with returns ~1: one set of
  loss weights cannot serve both. Normalised, they can.
- "ART" (adaptively rescaling targets): after each learner batch the moments move towards
  the batch's V-trace targets (``update``).
- "POP" (preserving outputs precisely): whenever ``mu`` and ``sigma`` change, the head's
  weight and bias are rescaled so that ``V(x)`` is unchanged for every input: the values
  V-trace bootstraps from do not jump when the statistics do.

The head subclasses ``nn.Linear`` so its weight and bias keep the names of a plain value
head; the statistics are buffers, so they travel with ``state_dict`` to the actors and into
checkpoints.

Step size: the moments are exponential moving averages with step ``max(step_size, 1 / k)``
at the k-th update, so the first batches set them directly (no slow start from the initial
``mu = 0, sigma = 1``) and later ones track returns that grow as the agent improves. The
variance has a floor (``min_variance``, as Sample Factory's running statistics add an
epsilon): while every target is the same (an env whose agent has not yet been rewarded)
``sigma`` stays at ``sqrt(min_variance)`` instead of 0, so the first reward cannot produce
an enormous normalised error.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ObservationNormalizer", "PopArtValueHead", "moving_average_step"]


def moving_average_step(updates: int, step_size: float) -> float:
    """Step of the k-th update (``updates = k``) of a moving average: ``1 / k`` at first (the
    plain mean of every batch so far, so the first batch sets the statistics) and
    ``step_size`` once ``1 / k`` falls below it (an exponential average that follows data
    whose distribution moves as the agent learns)."""
    return max(step_size, 1.0 / max(updates, 1))


def _register_moments(module: nn.Module, shape: tuple[int, ...], step_size: float) -> None:
    """The buffers both normalisers keep: ``mean``, ``mean_square`` (starting at 0 and 1,
    a unit variance) and the number of ``updates``."""
    if not 0.0 < step_size <= 1.0:
        raise ValueError(f"step_size must be in (0, 1], got {step_size}")
    module.register_buffer("mean", torch.zeros(shape))
    module.register_buffer("mean_square", torch.ones(shape))
    module.register_buffer("updates", torch.zeros((), dtype=torch.int64))


def _move_moments(module: nn.Module, batch_mean: torch.Tensor, batch_mean_square: torch.Tensor,
                  step_size: float) -> None:
    """One ``moving_average_step`` of a module's ``mean`` and ``mean_square`` towards a batch's."""
    module.updates += 1
    step = moving_average_step(int(module.updates), step_size)
    module.mean.lerp_(batch_mean, step)
    module.mean_square.lerp_(batch_mean_square, step)


class PopArtValueHead(nn.Linear):
    """``Linear(input_size, 1)`` predicting normalised values, returning unnormalised ones.

    Args:
        input_size: size of the features the head reads.
        step_size: smallest step of the moments' moving averages (see the module docstring).
        min_variance: floor of the variance estimate; ``sigma >= sqrt(min_variance)``.
    """

    def __init__(self, input_size: int, step_size: float = 1e-2, min_variance: float = 1e-4) -> None:
        if not min_variance > 0.0:
            raise ValueError(f"min_variance must be > 0, got {min_variance}")
        super().__init__(input_size, 1)
        self.step_size = step_size
        self.min_variance = min_variance
        _register_moments(self, (), step_size)

    @property
    def scale(self) -> torch.Tensor:
        """``sigma``: the running standard deviation of the value targets (a scalar tensor)."""
        return (self.mean_square - self.mean.square()).clamp(min=self.min_variance).sqrt()

    def normalized(self, features: torch.Tensor) -> torch.Tensor:
        """``n(x)``: ``[..., input_size]`` -> ``[..., 1]`` values in normalised units."""
        return super().forward(features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``V(x) = sigma * n(x) + mu``: ``[..., input_size]`` -> ``[..., 1]``."""
        return self.normalized(features) * self.scale + self.mean

    @torch.no_grad()
    def update(self, targets: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        """Move the moments towards a batch of value targets and rescale the weights so that
        every output ``V(x)`` stays what it was.

        Args:
            targets: value targets in unnormalised units (any shape).
            mask: bool, the same shape: which targets count; None counts all. A batch with
                no counted target changes nothing.
        """
        targets = targets.detach().to(self.mean.dtype)
        weight = torch.ones_like(targets) if mask is None else mask.to(targets.dtype)
        count = weight.sum()
        if float(count) == 0.0:
            return
        batch_mean = (targets * weight).sum() / count
        batch_mean_square = (targets.square() * weight).sum() / count
        old_mean, old_scale = self.mean.clone(), self.scale
        _move_moments(self, batch_mean, batch_mean_square, self.step_size)
        new_scale = self.scale
        # sigma * (w x + b) + mu == sigma' * (w' x + b') + mu' for every x:
        self.weight.mul_(old_scale / new_scale)
        self.bias.mul_(old_scale).add_(old_mean - self.mean).div_(new_scale)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, step_size={self.step_size}, min_variance={self.min_variance}"


class ObservationNormalizer(nn.Module):
    """Per-feature running mean and standard deviation of vector observations.

    ``forward`` maps ``[N, D]`` features to ``(x - mean) / sqrt(var + eps)``, clipped to
    ``[-clip, clip]``, as Stable-Baselines3's ``VecNormalize`` and Sample Factory's input
    normalisation do: a feature measured in small units (CartPole's pole angle, about 0.1
    rad) then reaches the network at the same scale as one in large units, and no setting
    depends on the env's units. Unlike PopArt nothing is preserved when the statistics move;
    they settle as the visited states do.

    Args:
        size: D, the number of features.
        step_size: smallest step of the moving averages (``moving_average_step``).
        epsilon: added to the variance.
        clip: bound of the normalised features.
    """

    def __init__(self, size: int, step_size: float = 1e-3, epsilon: float = 1e-8, clip: float = 10.0) -> None:
        super().__init__()
        self.step_size = step_size
        self.epsilon = epsilon
        self.clip = clip
        _register_moments(self, (size,), step_size)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        variance = (self.mean_square - self.mean.square()).clamp(min=0.0)
        normalised = (features - self.mean) / (variance + self.epsilon).sqrt()
        return normalised.clamp(-self.clip, self.clip)

    @torch.no_grad()
    def update(self, features: torch.Tensor) -> None:
        """Move the statistics towards a batch ``[N, D]`` of raw features."""
        features = features.detach().to(self.mean.dtype).reshape(-1, self.mean.shape[0])
        if features.shape[0] == 0:
            return
        _move_moments(self, features.mean(0), features.square().mean(0), self.step_size)
