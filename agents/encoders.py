"""Observation encoders chosen from the observation space.

- Images (a ``Box`` of rank 3, read as ``H x W x C``, or a ``uint8`` ``Box`` of rank 2, read
  as ``H x W`` with one channel): a convolutional encoder. ``uint8`` pixels are scaled to
  ``[0, 1]`` inside the encoder; floating images are used as they are.

  - ``"small"``: the encoder of the RMC paper's Box-World agent (Santoro et al. 2018,
    App. A.3): two 2x2 convolutions with 12 and 24 kernels, stride 1, ReLU after each.
    The coordinate maps the paper adds are added by ``feature_map_rows`` when the cells
    become the input rows of a relational core.
  - ``"deep"``: the strided encoder of the DQN / IMPALA-shallow Atari agents for large
    frames such as 84x84: 8x8 stride 4 (32), 4x4 stride 2 (64), 3x3 stride 1 (64), ReLU.
  - ``"auto"``: ``"small"`` when the image has at most ``SMALL_IMAGE_MAX_CELLS`` cells
    (grid worlds such as Box-World and Mini PacMan), ``"deep"`` otherwise.

  With ``symbols=True`` a ``uint8`` image is read as a grid of symbols instead of pixels:
  each channel's value is a category with its own learned embedding (``SYMBOL_EMBEDDING_SIZE``
  per channel), as BabyAI's agents read MiniGrid grids, whose cells hold an object index
  (0-10), a colour (0-5) and a state (0-2). Scaled as pixels, a key (5) and a ball (6)
  reach the convolutions 0.004 apart, a change the untrained agent's core state shows at
  1e-4 of its size (docs/learning.md, candidate M).

  Output sizes come from a test forward pass, never from hard-coded numbers.
- Other ``Box`` spaces and ``MultiBinary``: flattened to floats, then a two-layer MLP (ReLU
  or tanh, ``mlp_activation``).
- ``MultiDiscrete``: concatenated one-hots, then the MLP.
- ``Discrete``: a learned embedding.
- ``Dict`` / ``Tuple``: one encoder per leaf, joined by the policy (feature maps stay
  spatial, the other leaves are concatenated into one flat vector). Leaves that are not
  numeric arrays (``Text`` such as MiniGrid's mission, ``Sequence``, ``Graph``) are left out
  (``agents.spaces.encodable_space``); a space with nothing else is refused.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from agents.normalization import ObservationNormalizer
from agents.spaces import Path, encodable_space, get_leaf, left_out_leaves, space_leaves

__all__ = [
    "SMALL_IMAGE_MAX_CELLS",
    "EncodedObservation",
    "ImageEncoder",
    "VectorEncoder",
    "DiscreteEncoder",
    "ObservationEncoder",
    "is_image_space",
    "feature_map_rows",
    "MLP_ACTIVATIONS",
    "mlp_activation_module",
    "ReceptiveFields",
]

SYMBOL_EMBEDDING_SIZE = 8
"""Width of each channel's embedding when an image is read as symbols (``ImageEncoder(symbols=True)``)."""

SMALL_IMAGE_MAX_CELLS = 32 * 32
"""``encoder="auto"`` picks the small (paper) encoder for images with at most this many cells."""


def is_image_space(space: gym.Space) -> bool:
    """True for a Box read as an image: rank 3 (H x W x C), or rank 2 with dtype uint8."""
    if not isinstance(space, gym.spaces.Box):
        return False
    return len(space.shape) == 3 or (len(space.shape) == 2 and space.dtype == np.uint8)


class EncodedObservation(NamedTuple):
    """The encoders' output for a flat batch of ``N`` observations.

    Attributes:
        feature_maps: one ``[N, C, H, W]`` map per image leaf (empty list if none).
        flat: ``[N, F]`` all other leaves' features concatenated, or None if there are none.
    """

    feature_maps: list[torch.Tensor]
    flat: torch.Tensor | None


class ReceptiveFields(NamedTuple):
    """Where the cells of a feature map look in the input image, per axis ``(y, x)``.

    Feature cell ``i`` along an axis sees the input cells ``[start + i * stride,
    start + i * stride + size)`` (``start`` is negative where padding adds cells).

    Attributes:
        start: first input cell seen by feature cell 0.
        stride: input cells between neighbouring feature cells.
        size: input cells seen by one feature cell.
    """

    start: tuple[int, int]
    stride: tuple[int, int]
    size: tuple[int, int]


class ImageEncoder(nn.Module):
    """Convolutional encoder for an ``H x W x C`` (or ``H x W`` uint8) image space.

    Args:
        space: the image Box space.
        kind: ``"small"``, ``"deep"`` or ``"auto"`` (see the module docstring).
        normalize: normalise each channel by its running mean and standard deviation over
            every cell (``agents.normalization.ObservationNormalizer`` with one statistic per
            channel; the learner updates them) after the ``uint8`` scaling. Some envs pack
            symbols, not pixels, into ``uint8`` images: MiniGrid's cells hold an object index
            (0-10), a colour (0-5) and a state (0-2), so after the division by 255 a key and
            a ball differ by 0.004. Normalised, channels reach the convolutions at unit scale
            whatever their units.
        symbols: read a ``uint8`` image as symbols: each channel's value (0-255) is looked
            up in that channel's learned embedding, and the embeddings of all channels,
            side by side, are the convolutions' input (see the module docstring).

    Raises:
        ValueError: for an unknown kind, an image too small for the deep encoder, or
            ``symbols`` with a non-``uint8`` image or with ``normalize``.
    """

    def __init__(self, space: gym.spaces.Box, kind: Literal["auto", "small", "deep"] = "auto",
                 normalize: bool = False, symbols: bool = False) -> None:
        super().__init__()
        height, width = space.shape[:2]
        channels = space.shape[2] if len(space.shape) == 3 else 1
        self.symbols: nn.Embedding | None = None
        if symbols:
            if space.dtype != np.uint8:
                raise ValueError(f"symbols needs a uint8 image, got dtype {space.dtype}")
            if normalize:
                raise ValueError("an image read as symbols is not normalised: use symbols or normalize, not both")
            self.symbols = nn.Embedding(channels * 256, SYMBOL_EMBEDDING_SIZE)  # one table of 256 rows per channel
            self.register_buffer("symbol_offsets", torch.arange(channels) * 256, persistent=False)
        input_channels = channels * SYMBOL_EMBEDDING_SIZE if symbols else channels
        if kind == "auto":
            kind = "small" if height * width <= SMALL_IMAGE_MAX_CELLS else "deep"
        if kind == "small":
            layers = [nn.Conv2d(input_channels, 12, 2), nn.ReLU(), nn.Conv2d(12, 24, 2), nn.ReLU()]
        elif kind == "deep":
            layers = [nn.Conv2d(input_channels, 32, 8, stride=4), nn.ReLU(), nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
                      nn.Conv2d(64, 64, 3, stride=1), nn.ReLU()]
        else:
            raise ValueError(f"encoder must be 'auto', 'small' or 'deep', got {kind!r}")
        self.kind = kind
        self.convolutions = nn.Sequential(*layers)
        self.scale = 1.0 / 255.0 if space.dtype == np.uint8 else 1.0
        self.image_rank = len(space.shape)
        self.normalizer = ObservationNormalizer(channels) if normalize else None
        try:
            with torch.no_grad():
                probe = self.convolutions(torch.zeros(1, input_channels, height, width))
        except RuntimeError as error:
            raise ValueError(
                f"image observations of shape {space.shape} are too small for the {kind!r} encoder; "
                "use encoder='small'"
            ) from error
        self.output_shape: tuple[int, int, int] = tuple(probe.shape[1:])  # (C', H', W')

    def receptive_fields(self) -> ReceptiveFields:
        """The input cells each feature-map cell sees, from the convolutions' kernels,
        strides and paddings (the small encoder: 3x3 patches, one cell apart)."""
        start, stride, size = [0, 0], [1, 1], [1, 1]
        for layer in self.convolutions:
            if isinstance(layer, nn.Conv2d):
                for axis in range(2):
                    kernel = layer.kernel_size[axis] - 1
                    size[axis] += (kernel * layer.dilation[axis]) * stride[axis]
                    start[axis] -= layer.padding[axis] * stride[axis]
                    stride[axis] *= layer.stride[axis]
        return ReceptiveFields(tuple(start), tuple(stride), tuple(size))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``[N, H, W, C]`` (or ``[N, H, W]``) raw pixels -> ``[N, C', H', W']`` features."""
        if self.symbols is not None:
            cells = image.unsqueeze(-1) if self.image_rank == 2 else image  # [N, H, W, C]
            x = self.symbols(cells.long() + self.symbol_offsets).flatten(3)  # [N, H, W, C * embedding]
            return self.convolutions(x.permute(0, 3, 1, 2))
        x = image.to(next(self.convolutions.parameters()).dtype) * self.scale  # float32 unless the module was cast
        x = x.unsqueeze(-1) if self.image_rank == 2 else x  # [N, H, W, C]
        if self.normalizer is not None:
            x = self.normalizer(x)  # per channel: the statistics broadcast over the last axis
        return self.convolutions(x.permute(0, 3, 1, 2))  # [N, C, H, W]

    def update_normalization(self, image: torch.Tensor) -> None:
        """Move the channels' running statistics towards ``[N, H, W(, C)]`` raw images (if normalised)."""
        if self.normalizer is not None:
            channels = self.normalizer.mean.shape[0]
            self.normalizer.update(image.reshape(-1, channels).float() * self.scale)


MLP_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}
"""The activations of the agent's vector MLPs (``mlp_activation``); the convolutions keep ReLU."""


def mlp_activation_module(name: str) -> nn.Module:
    """A new activation module for ``name`` in ``MLP_ACTIVATIONS``.

    Raises:
        ValueError: for another name.
    """
    if name not in MLP_ACTIVATIONS:
        raise ValueError(f"mlp_activation must be one of {sorted(MLP_ACTIVATIONS)}, got {name!r}")
    return MLP_ACTIVATIONS[name]()


class VectorEncoder(nn.Module):
    """Two-layer MLP over a flattened Box / MultiBinary / MultiDiscrete observation.

    Args:
        space: the leaf space.
        hidden_size: width of both layers.
        normalize: normalise a Box leaf's features by their running statistics first
            (``agents.normalization.ObservationNormalizer``; the learner updates them).
            MultiBinary and MultiDiscrete leaves are never normalised.
        activation: ``"relu"`` or ``"tanh"`` after each layer.
    """

    def __init__(self, space: gym.spaces.Box | gym.spaces.MultiBinary | gym.spaces.MultiDiscrete,
                 hidden_size: int, normalize: bool = False, activation: str = "relu") -> None:
        super().__init__()
        self.shape = tuple(space.shape)
        if isinstance(space, gym.spaces.MultiDiscrete):
            self.nvec: tuple[int, ...] | None = tuple(int(n) for n in np.asarray(space.nvec).reshape(-1))
            self.register_buffer("start", torch.as_tensor(np.asarray(space.start).reshape(-1), dtype=torch.int64),
                                 persistent=False)
            input_size = sum(self.nvec)
        else:
            self.nvec = None
            input_size = int(np.prod(self.shape))
        self.normalizer = (ObservationNormalizer(input_size)
                           if normalize and isinstance(space, gym.spaces.Box) else None)
        self.mlp = nn.Sequential(nn.Linear(input_size, hidden_size), mlp_activation_module(activation),
                                 nn.Linear(hidden_size, hidden_size), mlp_activation_module(activation))
        self.output_size = hidden_size

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        """``[N, *shape]`` -> ``[N, hidden_size]``."""
        flat = observation.reshape(observation.shape[0], -1)  # [N, D]
        if self.nvec is not None:
            indices = flat.long() - self.start
            flat = torch.cat([F.one_hot(indices[:, i], n) for i, n in enumerate(self.nvec)], dim=-1)
        flat = flat.to(next(self.mlp.parameters()).dtype)  # float32 unless the module was cast
        if self.normalizer is not None:
            flat = self.normalizer(flat)
        return self.mlp(flat)

    def update_normalization(self, observation: torch.Tensor) -> None:
        """Move the running statistics towards ``[N, *shape]`` raw observations (if normalised)."""
        if self.normalizer is not None:
            self.normalizer.update(observation.reshape(observation.shape[0], -1).float())


class DiscreteEncoder(nn.Module):
    """Learned embedding of a ``Discrete(n, start)`` observation.

    Args:
        space: the Discrete space.
        embedding_size: size of the embedding.
    """

    def __init__(self, space: gym.spaces.Discrete, embedding_size: int) -> None:
        super().__init__()
        self.start = int(space.start)
        self.embedding = nn.Embedding(int(space.n), embedding_size)
        self.output_size = embedding_size

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        """``[N]`` -> ``[N, embedding_size]``."""
        return self.embedding(observation.long().reshape(-1) - self.start)


class ObservationEncoder(nn.Module):
    """One encoder per leaf of ``encodable_space(space)``, the numeric part of the space.

    Args:
        space: the environment's (single, unbatched) observation space.
        image_encoder: ``"auto"``, ``"small"`` or ``"deep"``, for every image leaf.
        hidden_size: width of the vector MLPs.
        embedding_size: size of Discrete embeddings.
        normalize_vectors: normalise Box vector leaves by running statistics (see
            ``VectorEncoder``).
        mlp_activation: the vector MLPs' activation, ``"relu"`` or ``"tanh"``.
        normalize_images: normalise image leaves per channel by running statistics (see
            ``ImageEncoder``).
        image_symbols: read ``uint8`` image leaves as grids of symbols (see ``ImageEncoder``).

    Attributes:
        left_out_paths: the paths of the leaves of ``space`` that are not encoded (empty
            for a space of numeric leaves only).

    Raises:
        UnsupportedSpaceError: for a space with nothing to encode, naming it.
    """

    def __init__(self, space: gym.Space, image_encoder: Literal["auto", "small", "deep"] = "auto",
                 hidden_size: int = 256, embedding_size: int = 32, normalize_vectors: bool = False,
                 mlp_activation: str = "relu", normalize_images: bool = False, image_symbols: bool = False) -> None:
        super().__init__()
        self.image_paths: list[Path] = []
        self.flat_paths: list[Path] = []
        image_modules: list[ImageEncoder] = []
        flat_modules: list[nn.Module] = []
        self.left_out_paths: list[Path] = [path for path, _ in left_out_leaves(space)]
        for path, leaf in space_leaves(encodable_space(space)):
            if is_image_space(leaf):
                self.image_paths.append(path)
                image_modules.append(ImageEncoder(leaf, image_encoder, normalize_images, image_symbols))
            elif isinstance(leaf, (gym.spaces.Box, gym.spaces.MultiBinary, gym.spaces.MultiDiscrete)):
                self.flat_paths.append(path)
                flat_modules.append(VectorEncoder(leaf, hidden_size, normalize_vectors, mlp_activation))
            elif isinstance(leaf, gym.spaces.Discrete):
                self.flat_paths.append(path)
                flat_modules.append(DiscreteEncoder(leaf, embedding_size))
        self.image_encoders = nn.ModuleList(image_modules)
        self.flat_encoders = nn.ModuleList(flat_modules)
        self.feature_map_shapes: list[tuple[int, int, int]] = [m.output_shape for m in image_modules]
        self.flat_size = sum(m.output_size for m in flat_modules)

    def forward(self, observation: object) -> EncodedObservation:
        """Encodes a flat batch of ``encodable_space`` observations: every leaf is ``[N, *leaf_shape]``."""
        maps = [encoder(get_leaf(observation, path)) for path, encoder in zip(self.image_paths, self.image_encoders)]
        flats = [encoder(get_leaf(observation, path)) for path, encoder in zip(self.flat_paths, self.flat_encoders)]
        return EncodedObservation(maps, torch.cat(flats, dim=-1) if flats else None)

    def update_normalization(self, observation: object) -> None:
        """Move the normalised leaves' running statistics towards a flat batch of observations."""
        for path, encoder in zip(self.flat_paths, self.flat_encoders):
            if isinstance(encoder, VectorEncoder):
                encoder.update_normalization(get_leaf(observation, path))
        for path, encoder in zip(self.image_paths, self.image_encoders):
            encoder.update_normalization(get_leaf(observation, path))


def feature_map_rows(feature_map: torch.Tensor) -> torch.Tensor:
    """Turns a ``[N, C, H, W]`` map into ``[N, H*W, C + 2]`` rows, one per cell, each with its
    x and y coordinates in ``[-1, 1]`` appended (the RMC paper's coordinate maps)."""
    n, _, height, width = feature_map.shape
    ys = torch.linspace(-1.0, 1.0, height, device=feature_map.device, dtype=feature_map.dtype)
    xs = torch.linspace(-1.0, 1.0, width, device=feature_map.device, dtype=feature_map.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")  # [H, W] each
    coordinates = torch.stack([grid_x, grid_y]).expand(n, 2, height, width)
    with_coordinates = torch.cat([feature_map, coordinates], dim=1)  # [N, C+2, H, W]
    return with_coordinates.flatten(2).transpose(1, 2)  # [N, H*W, C+2]
