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

from typing import NamedTuple

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


class LowRankInputKeys(NamedTuple):
    """The first block's keys and values of the input rows, in the input space.

    When the input rows reach the first block straight from the input projection, their
    normalised q/k/v are ``LN(A x~ )`` with ``A = W_qkv [W_in | b_in] + [0 | b_qkv]`` of
    shape ``[Q, F+1]`` and ``x~ = [x; 1]``. Centring ``A``'s rows gives
    ``LN(A x~) = gain * (A' x~) / sigma(x) + bias`` with ``sigma(x)^2 = x~^T G x~ + eps``
    and ``G = A'^T A' / Q``, so each row is described by ``F + 1`` numbers
    ``x^ = x~ / sigma(x)`` instead of ``Q``. Exact up to rounding.

    Attributes:
        key_map: ``[H, K, F+1]`` centred rows of A for the keys.
        value_map: ``[H, V, F+1]`` centred rows of A for the values.
        key_gain, key_bias: ``[H, K]`` LayerNorm gain and bias of the keys.
        value_gain, value_bias: ``[H, V]`` LayerNorm gain and bias of the values.
        gram: ``[F+1, F+1]`` the matrix G.
        eps: The LayerNorm epsilon.
    """

    key_map: Tensor
    value_map: Tensor
    key_gain: Tensor
    key_bias: Tensor
    value_gain: Tensor
    value_bias: Tensor
    gram: Tensor
    eps: float


def low_rank_input_keys(block: AttentionBlock, input_projection: nn.Linear) -> LowRankInputKeys:
    """Folds ``input_projection`` into ``block``'s q/k/v Linear and LayerNorm (see :class:`LowRankInputKeys`)."""
    heads, key_size, value_size = block.num_heads, block.key_size, block.head_size
    folded = torch.cat(
        [block.qkv.weight @ input_projection.weight, (block.qkv.weight @ input_projection.bias + block.qkv.bias)[:, None]],
        dim=1,
    )  # [Q, F+1]
    centred = folded - folded.mean(dim=0, keepdim=True)
    gram = centred.T @ centred / centred.shape[0]  # [F+1, F+1]
    per_head = centred.view(heads, 2 * key_size + value_size, -1)
    gain = block.qkv_norm.weight.view(heads, 2 * key_size + value_size)
    bias = block.qkv_norm.bias.view(heads, 2 * key_size + value_size)
    keys, values = slice(key_size, 2 * key_size), slice(2 * key_size, None)
    return LowRankInputKeys(
        per_head[:, keys], per_head[:, values], gain[:, keys], bias[:, keys], gain[:, values], bias[:, values],
        gram, block.qkv_norm.eps,
    )  # fmt: skip


def normalised_input_rows(rows: Tensor, factors: LowRankInputKeys) -> Tensor:
    """``[..., R, F] -> x^ = [x; 1] / sigma(x)``, ``[..., R, F+1]``."""
    homogeneous = torch.cat([rows, rows.new_ones(rows.shape[:-1] + (1,))], dim=-1)
    variance = ((homogeneous @ factors.gram) * homogeneous).sum(-1, keepdim=True).clamp_min(0.0)
    return homogeneous * torch.rsqrt(variance + factors.eps)


def attend_memory_and_low_rank_inputs(
    query: Tensor, memory_key: Tensor, memory_value: Tensor, inputs: Tensor, factors: LowRankInputKeys, scale: float
) -> Tensor:
    """Memory-row queries attending over the memory rows and the low-rank input rows.

    Args:
        query: ``[B, H, N, K]`` memory rows' queries.
        memory_key: ``[B, H, N, K]``.
        memory_value: ``[B, H, N, V]``.
        inputs: ``[B, R, F+1]`` from :func:`normalised_input_rows`.
        factors: From :func:`low_rank_input_keys`.
        scale: Query scale.

    Returns:
        ``[B, H, N, V]``, the same as softmax attention over all ``N + R`` rows.
    """
    query = query * scale
    gained = query * factors.key_gain[:, None]  # [B, H, N, K]
    to_input_space = torch.einsum("bhnk,hkf->bhnf", gained, factors.key_map)  # [B, H, N, F+1]
    input_scores = torch.einsum("bhnf,brf->bhnr", to_input_space, inputs)
    input_scores = input_scores + (query * factors.key_bias[:, None]).sum(-1, keepdim=True)
    memory_scores = query @ memory_key.transpose(-1, -2)  # [B, H, N, N]
    weights = torch.softmax(torch.cat([memory_scores, input_scores], dim=-1), dim=-1)
    slots = memory_key.shape[2]
    memory_weights, input_weights = weights[..., :slots], weights[..., slots:]
    pooled = torch.einsum("bhnr,brf->bhnf", input_weights, inputs)  # [B, H, N, F+1]
    from_inputs = torch.einsum("bhnf,hvf->bhnv", pooled, factors.value_map) * factors.value_gain[:, None]
    from_inputs = from_inputs + input_weights.sum(-1, keepdim=True) * factors.value_bias[:, None]
    return memory_weights @ memory_value + from_inputs
