"""Data for the N-th farthest task of Santoro et al. (2018), section 4.1.

A sequence shows ``num_vectors`` vectors drawn from U(-1, 1)^num_dims, one per time step.
Each vector carries a label, a one-hot in ``num_vectors`` classes drawn without
replacement within the sequence, and every step also carries the question: a one-hot ``n``
and a one-hot label ``m``. The per-step input is ``(x; label; n; m)``, of width
``num_dims + 3 * num_vectors`` (40 for the paper's 8 vectors of 16 dims). The target is
the label of the vector that is the ``n``-th farthest (Euclidean) from the vector labelled
``m``: ``n = 0`` is the farthest; ``n = num_vectors - 1`` is ``m`` itself (distance 0),
which, as in DeepMind's generator, counts among the candidates.

By default we follow the paper's wording (``question="farthest"``). DeepMind's example
generator (``sonnet/examples/dataset_nth_farthest.py``), whose script the paper's numbers
presumably come from, asks something else: it takes ``np.where(argsort(distances) == n)[1][m]``,
the distance rank (ascending, 0 being ``m`` itself) of the vector labelled ``n`` as seen from
the vector labelled ``m``. ``question="rank"`` asks that: the one-hot ``n`` then names a
vector's label, and the target is a rank, not a label. Both questions have the same inputs
and the same no-comparison plateau of 2/N (when ``n`` is ``m`` the answer is rank 0).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor


class NthFarthestBatch(NamedTuple):
    """One batch of N-th farthest questions.

    Attributes:
        inputs: ``[T, B, num_dims + 3 * num_vectors]`` time-major, ``T = num_vectors``.
        targets: ``[B]`` int64, the label of the answer vector.
    """

    inputs: Tensor
    targets: Tensor


QUESTIONS = ("farthest", "rank")
"""``farthest``: the label of the n-th farthest vector from m (the paper's wording);
``rank``: the distance rank from m of the vector labelled n (DeepMind's generator)."""


def nth_farthest_batch(
    batch_size: int,
    num_vectors: int,
    num_dims: int,
    generator: torch.Generator | None = None,
    question: str = "farthest",
) -> NthFarthestBatch:
    """Samples a batch of N-th farthest sequences (float32, CPU).

    Args:
        batch_size: B.
        num_vectors: Vectors per sequence (also the number of labels, ``n`` and ``m`` values).
        num_dims: Dimensions of each vector.
        generator: Random source (for reproducible or held-out data).
        question: One of :data:`QUESTIONS` (see the module docstring).

    Raises:
        ValueError: A size is < 1 (``num_vectors`` < 2), or an unknown ``question``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if num_vectors < 2:
        raise ValueError(f"num_vectors must be >= 2, got {num_vectors}")
    if num_dims < 1:
        raise ValueError(f"num_dims must be >= 1, got {num_dims}")
    if question not in QUESTIONS:
        raise ValueError(f"question must be one of {QUESTIONS}, got {question!r}")
    vectors = torch.rand(batch_size, num_vectors, num_dims, generator=generator) * 2 - 1  # [B, N, D]
    labels = torch.rand(batch_size, num_vectors, generator=generator).argsort(dim=1)  # [B, N] a permutation
    nth = torch.randint(num_vectors, (batch_size,), generator=generator)  # [B]
    reference_label = torch.randint(num_vectors, (batch_size,), generator=generator)  # [B]

    rows = torch.arange(batch_size)
    position_of_label = labels.argsort(dim=1)  # [B, N] the inverse permutation
    reference_vector = vectors[rows, position_of_label[rows, reference_label]]  # [B, D] vector m
    distances = (vectors - reference_vector[:, None]).norm(dim=-1)  # [B, N]
    if question == "farthest":
        by_distance = distances.argsort(dim=1, descending=True, stable=True)  # [B, N], farthest first
        targets = labels[rows, by_distance[rows, nth]]
    else:
        # Ascending rank of the vector labelled nth; ties are measure-zero except m itself.
        targets = (distances < distances[rows, position_of_label[rows, nth]][:, None]).sum(dim=1)

    label_one_hot = F.one_hot(labels, num_vectors).float()  # [B, N, N]
    query = torch.cat([F.one_hot(nth, num_vectors), F.one_hot(reference_label, num_vectors)], dim=-1).float()
    inputs = torch.cat([vectors, label_one_hot, query[:, None].expand(-1, num_vectors, -1)], dim=-1)
    return NthFarthestBatch(inputs.transpose(0, 1).contiguous(), targets)


def vectors_by_label(inputs: Tensor, num_vectors: int, num_dims: int) -> Tensor:
    """The vectors of each sequence sorted by their labels: what a perfect memory would hold.

    The task shows the vectors in a random order, each with its label; answering needs each
    vector found by its label (the label ``m`` names the reference, and for the paper's
    question the answer is a label). This is the vectors re-ordered so that row ``j`` is the
    vector labelled ``j``, for diagnostics of that binding.

    Args:
        inputs: ``[T, B, num_dims + 3 * num_vectors]`` as made by :func:`nth_farthest_batch`.
        num_vectors: N (= T).
        num_dims: D.

    Returns:
        ``[B, N, D]``.

    Raises:
        ValueError: ``inputs`` does not have the layout of that task size.
    """
    width = num_dims + 3 * num_vectors
    if inputs.dim() != 3 or inputs.shape[0] != num_vectors or inputs.shape[-1] != width:
        raise ValueError(
            f"inputs must be [T={num_vectors}, B, {width}] for {num_vectors} vectors of {num_dims} dims, "
            f"got shape {list(inputs.shape)}"
        )
    vectors = inputs[..., :num_dims]  # [T, B, D]
    labels = inputs[..., num_dims : num_dims + num_vectors]  # [T, B, N] one-hot
    return torch.einsum("tbd,tbn->bnd", vectors, labels)
