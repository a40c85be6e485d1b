"""Multi-head dot-product attention as the Relational Memory Core uses it.

The reference (Sonnet v1 ``RelationalMemory._multihead_attention``) projects every row to a
query, key and value for all heads with ONE Linear layer, layer-normalises that whole
``H * (2 * key_size + head_size)`` vector per row, splits it per head into
``[q | k | v]``, scales the queries by ``key_size ** -0.5``, applies a softmax over all rows
(no mask) and concatenates the heads with no output projection. This module holds the
pieces: :class:`AttentionBlock` (the per-block weights) and :func:`attend` (the fused
attention itself).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def split_heads(qkv: Tensor, num_heads: int, key_size: int, value_size: int) -> tuple[Tensor, Tensor, Tensor]:
    """Splits a normalised ``[..., N, H * (2K + V)]`` projection into per-head q, k, v.

    The layout per row is ``H`` consecutive chunks of ``[q (K) | k (K) | v (V)]``, as in
    the reference's reshape to ``[B, N, H, 2K + V]``.

    Args:
        qkv: Projected rows, ``[B, N, H * (2K + V)]``.
        num_heads: H.
        key_size: K, the query and key width per head.
        value_size: V, the value width per head.

    Returns:
        ``(q [B, H, N, K], k [B, H, N, K], v [B, H, N, V])``.
    """
    batch, rows, _ = qkv.shape
    per_head = qkv.view(batch, rows, num_heads, 2 * key_size + value_size).transpose(1, 2)  # [B, H, N, 2K+V]
    return per_head.split([key_size, key_size, value_size], dim=-1)


def attend(
    query: Tensor, key: Tensor, value: Tensor, scale: float, return_weights: bool = False
) -> tuple[Tensor, Tensor | None]:
    """Softmax dot-product attention over all key rows (no mask).

    The default path uses ``F.scaled_dot_product_attention`` with the reference's query
    scale passed explicitly; ``return_weights=True`` takes an explicit path that also
    returns the softmax weights (numerically the same result).

    Args:
        query: ``[B, H, Nq, K]``.
        key: ``[B, H, Nk, K]``.
        value: ``[B, H, Nk, V]``.
        scale: Multiplier of the dot products (``key_size ** -0.5`` in the reference).
        return_weights: Also return the ``[B, H, Nq, Nk]`` softmax weights.

    Returns:
        ``(output [B, H, Nq, V], weights or None)``.
    """
    if not return_weights:
        return F.scaled_dot_product_attention(query, key, value, scale=scale), None
    weights = torch.softmax((query * scale) @ key.transpose(-1, -2), dim=-1)  # [B, H, Nq, Nk]
    return weights @ value, weights


def merge_heads(per_head: Tensor) -> Tensor:
    """``[B, H, N, V] -> [B, N, H * V]`` (heads concatenated per row, no projection)."""
    batch, heads, rows, width = per_head.shape
    return per_head.transpose(1, 2).reshape(batch, rows, heads * width)


class AttentionBlock(nn.Module):
    """The weights of one attention block of the RMC: the q/k/v Linear and three LayerNorms.

    In the reference every block builds its own q/k/v Linear, q/k/v LayerNorm and the two
    post-norm LayerNorms (after attention and after the MLP); the MLP itself is built once
    and shared by all blocks, so it lives in :class:`~rmc_core.RelationalMemory`.

    Args:
        mem_size: Width of a memory row (``head_size * num_heads``).
        num_heads: Number of attention heads.
        key_size: Query and key width per head.
        head_size: Value width per head.
    """

    def __init__(self, mem_size: int, num_heads: int, key_size: int, head_size: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.key_size = key_size
        self.head_size = head_size
        qkv_size = num_heads * (2 * key_size + head_size)
        self.qkv = nn.Linear(mem_size, qkv_size)
        self.qkv_norm = nn.LayerNorm(qkv_size, eps=1e-5)
        self.attention_norm = nn.LayerNorm(mem_size, eps=1e-5)
        self.mlp_norm = nn.LayerNorm(mem_size, eps=1e-5)

    def project(self, rows: Tensor) -> Tensor:
        """Row-wise q/k/v projection followed by the LayerNorm: ``[..., D] -> [..., H*(2K+V)]``."""
        return self.qkv_norm(self.qkv(rows))
