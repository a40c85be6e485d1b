"""The Relational Memory Core (RMC) of Santoro et al., "Relational recurrent neural
networks", NeurIPS 2018 (arXiv:1806.01822), in PyTorch.

Behaviour follows DeepMind's Sonnet v1 ``snt.RelationalMemory`` (the reference):

* the memory ``M`` is ``[B, N, D]`` (``N = mem_slots`` rows, ``D = head_size * num_heads``),
  initialised to the identity, zero-padded or truncated along the feature axis;
* each input row is projected by one Linear layer (with bias, shared by all rows) to ``D``
  and appended below the memory: ``[M; x]``;
* ``num_blocks`` post-norm blocks over all rows of ``[M; x]``:
  ``M = LN(M + MHA(M))`` then ``M = LN(M + MLP(M))``, every LayerNorm row-wise over the
  features with a learnt gain and bias (eps 1e-5); each block has its own q/k/v Linear and
  LayerNorms, while the MLP (``attention_mlp_layers`` Linear layers of width ``D``, ReLU
  between them, none after the last) is built once and shared by all blocks, as in the
  reference; the appended input rows are then dropped;
* LSTM-like input and forget gates (no output gate) from the projected input and
  ``tanh(M_prev)``: ``Linear(flatten(x)) + Linear(tanh(M_prev))`` (the input part broadcast
  over slots), ``i = sigmoid(. + input_bias)``, ``f = sigmoid(. + forget_bias)``, the two
  biases constants (not trained); ``M_t = i * tanh(M~) + f * M_prev``; with no gating
  ``M_t = M~``;
* the output is the flattened memory ``M_t`` (``N * D`` values).

Initialisation as in Sonnet: Linear weights from a normal truncated at two standard
deviations with std ``1 / sqrt(fan_in)``, Linear biases zero, LayerNorm gain 1 and bias 0.

Deliberate differences from the reference (none change the function it computes):

* The work that depends only on the inputs (the input projection, the first block's q/k/v
  rows of the input and the input half of the gates) is done for all time steps at once in
  :meth:`RelationalMemory.unroll`; in the last block only the memory rows are used as
  queries (the input rows' outputs are dropped anyway), unless attention weights are
  requested. Where it saves work, the gate's input Linear is applied with the input
  projection folded into it (``W_gate (W_in x + b_in) = (W_gate W_in) x + W_gate b_in``).
* With a single block and many narrow input rows (Box-World: 144 rows of 26 features
  against 3072-wide q/k/v rows), the input rows' keys and values are never materialised:
  the input projection is folded into the q/k/v Linear and the LayerNorm is rewritten in
  the ``F + 1``-dimensional input space (see :class:`~rmc_core.attention.LowRankInputKeys`),
  so the memory's queries attend over the input rows at ``O(F)`` instead of ``O(D)`` cost
  per row. The path is chosen by a multiply-add count; requesting attention weights
  always takes the dense path.

All of these are exact rewrites (equal up to float rounding); the tests check them against
the reference's step written out literally.
* ``gate_input_pooling="mean"`` is an optional, non-reference alternative for many input
  rows: the gate's input Linear then reads the mean of the projected rows (width ``D``)
  instead of all of them flattened (width ``R * D``, the reference, and the default). With
  Adam, every weight of the wide flattened Linear moves by about the learning rate per step,
  so its gate logits move many times faster than the mean-pooled ones (about 20x for 56
  rows of 64 in ``tests/agents/test_policy.py``); the RL agent
  (``agents.ActorCritic``) uses "mean" for that reason (docs/results.md).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import Tensor, nn

from rmc_core.attention import (
    AttentionBlock,
    LowRankInputKeys,
    attend,
    attend_memory_and_low_rank_inputs,
    low_rank_input_keys,
    merge_heads,
    normalised_input_rows,
    split_heads,
)

GateStyle = Literal["unit", "memory"]
GateInputPooling = Literal["flatten", "mean"]


def sonnet_linear_init_(layer: nn.Linear) -> None:
    """Sonnet v1's default Linear initialisation: truncated normal std 1/sqrt(fan_in), zero bias."""
    std = 1.0 / math.sqrt(layer.in_features)
    nn.init.trunc_normal_(layer.weight, mean=0.0, std=std, a=-2.0 * std, b=2.0 * std)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def _require_positive(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


class RelationalMemory(nn.Module):
    """Relational Memory Core with the Sonnet RNNCore contract.

    Args:
        input_size: Feature size of ONE input row.
        mem_slots: Number of memory rows N.
        head_size: Value width per attention head; the memory width is
            ``mem_size = head_size * num_heads``.
        num_heads: Number of attention heads.
        num_blocks: Attention + MLP blocks applied per time step.
        forget_bias: Constant added to the forget gate's pre-activation.
        input_bias: Constant added to the input gate's pre-activation.
        gate_style: ``"unit"`` (one gate per memory element), ``"memory"`` (one scalar
            gate per memory row) or ``None`` (no gating: the memory is replaced).
        attention_mlp_layers: Linear layers in the post-attention MLP.
        key_size: Query/key width per head; ``None`` means ``head_size``.
        num_input_rows: Number of input rows R per step (1 for a vector input, e.g. 144
            for the cells of a 12x12 feature map). Sizes the gate's input Linear.
        gate_input_pooling: How the R projected input rows feed the gates: ``"flatten"``
            (the reference: one Linear over all ``R * mem_size`` values) or ``"mean"``
            (not in the reference: a Linear over their mean; steadier under Adam, see the
            module docstring). Irrelevant when ``num_input_rows == 1``.

    Raises:
        ValueError: A size is < 1, or gate_style / gate_input_pooling is unknown.
    """

    def __init__(
        self,
        input_size: int,
        mem_slots: int,
        head_size: int,
        num_heads: int = 1,
        num_blocks: int = 1,
        forget_bias: float = 1.0,
        input_bias: float = 0.0,
        gate_style: GateStyle | None = "unit",
        attention_mlp_layers: int = 2,
        key_size: int | None = None,
        num_input_rows: int = 1,
        gate_input_pooling: GateInputPooling = "flatten",
    ) -> None:
        super().__init__()
        for name, value in (
            ("input_size", input_size),
            ("mem_slots", mem_slots),
            ("head_size", head_size),
            ("num_heads", num_heads),
            ("num_blocks", num_blocks),
            ("attention_mlp_layers", attention_mlp_layers),
            ("num_input_rows", num_input_rows),
        ):
            _require_positive(name, value)
        if key_size is not None:
            _require_positive("key_size", key_size)
        if gate_style not in ("unit", "memory", None):
            raise ValueError(f"gate_style must be one of 'unit', 'memory' or None, got {gate_style!r}")
        if gate_input_pooling not in ("flatten", "mean"):
            raise ValueError(f"gate_input_pooling must be 'flatten' or 'mean', got {gate_input_pooling!r}")

        self.input_size = input_size
        self.mem_slots = mem_slots
        self.head_size = head_size
        self.num_heads = num_heads
        self.num_blocks = num_blocks
        self.forget_bias = float(forget_bias)
        self.input_bias = float(input_bias)
        self.gate_style = gate_style
        self.attention_mlp_layers = attention_mlp_layers
        self.key_size = key_size if key_size is not None else head_size
        self.num_input_rows = num_input_rows
        self.gate_input_pooling = gate_input_pooling
        self.mem_size = head_size * num_heads
        self.output_size = mem_slots * self.mem_size

        self.input_projection = nn.Linear(input_size, self.mem_size)
        self.blocks = nn.ModuleList(
            AttentionBlock(self.mem_size, num_heads, self.key_size, head_size) for _ in range(num_blocks)
        )
        self.attention_mlp = nn.ModuleList(nn.Linear(self.mem_size, self.mem_size) for _ in range(attention_mlp_layers))
        self.gate_input: nn.Linear | None = None
        self.gate_memory: nn.Linear | None = None
        if gate_style is not None:
            gate_size = self.mem_size if gate_style == "unit" else 1
            gate_input_width = self.mem_size * (num_input_rows if gate_input_pooling == "flatten" else 1)
            self.gate_input = nn.Linear(gate_input_width, 2 * gate_size)
            self.gate_memory = nn.Linear(self.mem_size, 2 * gate_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialises every parameter as Sonnet v1 does (see the module docstring)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                sonnet_linear_init_(module)
            elif isinstance(module, nn.LayerNorm):
                module.reset_parameters()

    def extra_repr(self) -> str:
        return (
            f"mem_slots={self.mem_slots}, head_size={self.head_size}, num_heads={self.num_heads}, "
            f"num_blocks={self.num_blocks}, gate_style={self.gate_style!r}, key_size={self.key_size}, "
            f"num_input_rows={self.num_input_rows}, forget_bias={self.forget_bias}, input_bias={self.input_bias}"
        )

    def initial_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> tuple[Tensor]:
        """The identity memory, zero-padded or truncated to ``[B, mem_slots, mem_size]``.

        Args:
            batch_size: B.
            device: Defaults to the parameters' device.
            dtype: Defaults to the parameters' dtype.

        Returns:
            ``(memory,)``.
        """
        _require_positive("batch_size", batch_size)
        weight = self.input_projection.weight
        eye = torch.eye(
            self.mem_slots,
            self.mem_size,
            device=device if device is not None else weight.device,
            dtype=dtype if dtype is not None else weight.dtype,
        )
        return (eye.expand(batch_size, -1, -1).contiguous(),)

    # ----------------------------------------------------------------------------------
    # Public API.

    def forward(
        self, inputs: Tensor, state: tuple[Tensor, ...], return_attention: bool = False
    ) -> tuple[Tensor, tuple[Tensor]] | tuple[Tensor, tuple[Tensor], Tensor]:
        """One time step.

        Args:
            inputs: ``[B, input_size]`` (one row) or ``[B, R, input_size]``.
            state: ``(memory [B, mem_slots, mem_size],)``.
            return_attention: Also return the attention weights of every block,
                ``[B, num_blocks, num_heads, mem_slots + R, mem_slots + R]``.

        Returns:
            ``(output [B, output_size], (next_memory,))``, plus the attention weights when
            requested.
        """
        rows = self._as_rows(inputs, leading_dims=1)  # [B, R, F]
        memory = self._check_state(state, rows.shape[0])
        factors = self._low_rank_factors(return_attention)
        projected, first_keys, gate_from_input = self._encode_inputs(rows, factors)
        next_memory, weights = self._step(memory, projected, first_keys, gate_from_input, factors, return_attention)
        output = next_memory.flatten(1)  # [B, N*D]
        if return_attention:
            return output, (next_memory,), weights
        return output, (next_memory,)

    def unroll(
        self, inputs: Tensor, reset: Tensor, state: tuple[Tensor, ...], return_attention: bool = False
    ) -> tuple[Tensor, tuple[Tensor]] | tuple[Tensor, tuple[Tensor], Tensor]:
        """A time-major sequence of steps with episode resets.

        Args:
            inputs: ``[T, B, input_size]`` or ``[T, B, R, input_size]``.
            reset: ``[T, B]`` bool; where True the memory is replaced by the initial state
                before input ``t`` is processed.
            state: ``(memory [B, mem_slots, mem_size],)`` before step 0.
            return_attention: Also return the attention weights,
                ``[T, B, num_blocks, num_heads, mem_slots + R, mem_slots + R]``.

        Returns:
            ``(outputs [T, B, output_size], (final_memory,))``, plus the attention weights
            when requested.
        """
        rows = self._as_rows(inputs, leading_dims=2)  # [T, B, R, F]
        steps, batch = rows.shape[:2]
        memory = self._check_state(state, batch)
        if reset.shape != (steps, batch):
            raise ValueError(f"reset must have shape [T, B] = {[steps, batch]}, got {list(reset.shape)}")
        reset = reset.to(device=memory.device, dtype=torch.bool).view(steps, batch, 1, 1)
        initial_memory = self.initial_state(batch, device=memory.device, dtype=memory.dtype)[0]
        # Everything that depends only on the inputs, for all T steps at once.
        factors = self._low_rank_factors(return_attention)
        projected, first_keys, gate_from_input = self._encode_inputs(rows, factors)
        # Split the time axis once with unbind: indexing ``x[t]`` in the loop would make the
        # backward pass build a zero-filled gradient of the whole [T, ...] tensor per step
        # and add the T of them (O(T^2) memory traffic; 40% of a learner update on the
        # paper-size preset), where unbind's backward stacks the T step gradients once.
        per_step = zip(
            reset.unbind(0),
            [None] * steps if projected is None else projected.unbind(0),
            first_keys.unbind(0),
            [None] * steps if gate_from_input is None else gate_from_input.unbind(0),
        )
        memories, all_weights = [], []
        for step_reset, step_projected, step_keys, step_gates in per_step:
            memory = torch.where(step_reset, initial_memory, memory)
            memory, weights = self._step(memory, step_projected, step_keys, step_gates, factors, return_attention)
            memories.append(memory)
            all_weights.append(weights)
        outputs = torch.stack(memories).flatten(2)  # [T, B, N*D]
        if return_attention:
            return outputs, (memory,), torch.stack(all_weights)
        return outputs, (memory,)

    # ----------------------------------------------------------------------------------
    # Internals.

    def _as_rows(self, inputs: Tensor, leading_dims: int) -> Tensor:
        """Validates the inputs and gives them an explicit row axis: ``[..., R, F]``."""
        if inputs.dim() == leading_dims + 1:
            inputs = inputs.unsqueeze(-2)
        elif inputs.dim() != leading_dims + 2:
            layout = "[B, F] or [B, R, F]" if leading_dims == 1 else "[T, B, F] or [T, B, R, F]"
            raise ValueError(f"inputs must be {layout}, got shape {list(inputs.shape)}")
        if inputs.shape[-1] != self.input_size:
            raise ValueError(f"inputs must have {self.input_size} features per row, got shape {list(inputs.shape)}")
        rows = inputs.shape[-2]
        if self.gate_style is not None and self.gate_input_pooling == "flatten" and rows != self.num_input_rows:
            raise ValueError(
                f"this core was built for num_input_rows={self.num_input_rows} (its gate Linear reads all rows "
                f"flattened), got {rows} rows in inputs of shape {list(inputs.shape)}"
            )
        return inputs

    def _check_state(self, state: tuple[Tensor, ...], batch: int) -> Tensor:
        if not isinstance(state, (tuple, list)) or len(state) != 1:
            raise ValueError(f"state must be a 1-tuple (memory,), got {type(state).__name__} of length {len(state)}")
        memory = state[0]
        expected = (batch, self.mem_slots, self.mem_size)
        if tuple(memory.shape) != expected:
            raise ValueError(f"memory must have shape {list(expected)}, got {list(memory.shape)}")
        return memory

    def _low_rank_factors(self, return_attention: bool) -> LowRankInputKeys | None:
        """The input rows' first-block keys/values in input space, when that path applies.

        It applies when the input rows serve only as keys and values (a single block, no
        attention weights requested) and it needs clearly fewer multiply-adds per step
        than the dense path (many rows, or rows much narrower than a memory row).
        """
        if self.num_blocks > 1 or return_attention:
            return None
        rows, homogeneous = self.num_input_rows, self.input_size + 1
        attention_width = self.num_heads * (self.key_size + self.head_size)
        low_rank_cost = self.mem_slots * homogeneous * (attention_width + 2 * self.num_heads * rows)
        qkv_size = self.num_heads * (2 * self.key_size + self.head_size)
        dense_cost = rows * self.mem_size * (self.input_size + qkv_size)
        if 2 * low_rank_cost >= dense_cost:
            return None
        return low_rank_input_keys(self.blocks[0], self.input_projection)

    def _encode_inputs(
        self, rows: Tensor, factors: LowRankInputKeys | None
    ) -> tuple[Tensor | None, Tensor, Tensor | None]:
        """The input-only work: projected rows, their first-block keys, the gates' input part.

        Args:
            rows: ``[..., R, F]``.
            factors: The low-rank form of the first block's input keys, or None.

        Returns:
            ``(projected [..., R, D] or None, first_keys, gate_from_input [..., 2G] or None)``
            where ``first_keys`` is the normalised q/k/v ``[..., R, H*(2K+V)]`` or, with
            ``factors``, the normalised homogeneous rows ``[..., R, F+1]``; ``projected``
            is None with ``factors`` (no later block needs it).
        """
        projected = None if factors is not None else self.input_projection(rows)  # [..., R, D]
        gate_from_input = None
        if self.gate_input is not None:
            samples = rows[..., 0, 0].numel()
            gate_width = self.gate_input.out_features
            if self.gate_input_pooling == "mean":  # linear, so project the mean row
                gate_from_input = self.gate_input(self.input_projection(rows.mean(-2)))
            elif projected is None and gate_width * self.input_size < samples * (self.input_size + gate_width):
                # Fold the input projection into the gate Linear ([2G, R, F]): fewer
                # multiply-adds than projecting every row of every sample.
                gate_weight = self.gate_input.weight.view(gate_width, rows.shape[-2], self.mem_size)
                folded = gate_weight @ self.input_projection.weight
                folded_bias = self.gate_input.bias + gate_weight.sum(1) @ self.input_projection.bias
                gate_from_input = torch.einsum("...rf,grf->...g", rows, folded) + folded_bias
            else:
                if projected is None:
                    projected = self.input_projection(rows)
                gate_from_input = self.gate_input(projected.flatten(-2))
        if factors is not None:
            return None, normalised_input_rows(rows, factors), gate_from_input
        return projected, self.blocks[0].project(projected), gate_from_input

    def _mlp(self, rows: Tensor) -> Tensor:
        for index, layer in enumerate(self.attention_mlp):
            rows = layer(rows)
            if index < self.attention_mlp_layers - 1:
                rows = torch.relu(rows)
        return rows

    def compile_step(self, **options: Any) -> None:
        """Replaces this module's per-step function by its ``torch.compile``'d version.

        The arithmetic is the same; the compiler fuses the step's many small operations
        (layer norms, attention, gates), which on a GPU are each a kernel launch. The first
        call after this compiles (tens of seconds), and a new input shape compiles again.
        Parameters and ``state_dict`` are unchanged. Measured: 1.6x on the forward+backward
        of the Box-World configuration on an H200; on CPU it varies (docs/results.md).

        Args:
            **options: passed to ``torch.compile`` (default ``dynamic=False``).
        """
        options.setdefault("dynamic", False)
        self._step = torch.compile(self._step, **options)

    def _step(
        self,
        memory: Tensor,
        projected: Tensor | None,
        first_keys: Tensor,
        gate_from_input: Tensor | None,
        factors: LowRankInputKeys | None,
        return_attention: bool,
    ) -> tuple[Tensor, Tensor | None]:
        """One step from pre-encoded inputs.

        Args:
            memory: ``[B, N, D]``.
            projected: ``[B, R, D]`` projected input rows (None with ``factors``).
            first_keys: ``[B, R, H*(2K+V)]`` their normalised q/k/v for the first block,
                or with ``factors`` the ``[B, R, F+1]`` rows of the low-rank path.
            gate_from_input: ``[B, 2G]`` or None without gating.
            factors: The low-rank first block (single block only), or None.
            return_attention: Collect the full attention weights.

        Returns:
            ``(next_memory [B, N, D], weights [B, num_blocks, H, N+R, N+R] or None)``.
        """
        slots = self.mem_slots
        memory_rows, input_rows = memory, projected
        block_weights = []
        scale = self.key_size**-0.5
        for index, block in enumerate(self.blocks):
            memory_only = index == self.num_blocks - 1 and not return_attention
            if factors is not None:  # single block: memory queries over memory and input rows
                query, key, value = split_heads(block.project(memory), self.num_heads, self.key_size, self.head_size)
                attended = attend_memory_and_low_rank_inputs(query, key, value, first_keys, factors, scale)
                weights = None
            else:
                input_qkv = first_keys if index == 0 else block.project(input_rows)
                qkv = torch.cat([block.project(memory_rows), input_qkv], dim=1)  # [B, N+R, H*(2K+V)]
                query, key, value = split_heads(qkv, self.num_heads, self.key_size, self.head_size)
                if memory_only:
                    query = query[:, :, :slots]  # the input rows' outputs are dropped after the last block
                attended, weights = attend(query, key, value, scale, return_attention)
            rows = memory_rows if memory_only else torch.cat([memory_rows, input_rows], dim=1)
            rows = block.attention_norm(rows + merge_heads(attended))
            rows = block.mlp_norm(rows + self._mlp(rows))
            memory_rows, input_rows = rows[:, :slots], rows[:, slots:]
            block_weights.append(weights)

        if self.gate_memory is None:
            next_memory = memory_rows
        else:
            gates = self.gate_memory(torch.tanh(memory)) + gate_from_input.unsqueeze(1)  # [B, N, 2G]
            input_gate, forget_gate = gates.chunk(2, dim=-1)
            input_gate = torch.sigmoid(input_gate + self.input_bias)
            forget_gate = torch.sigmoid(forget_gate + self.forget_bias)
            next_memory = input_gate * torch.tanh(memory_rows) + forget_gate * memory
        weights = torch.stack(block_weights, dim=1) if return_attention else None
        return next_memory, weights
