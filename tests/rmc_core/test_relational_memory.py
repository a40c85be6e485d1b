"""RelationalMemory: shapes, the reference's structure and behaviour, the core contract."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rmc_core import RelationalMemory


def tiny_core(**overrides) -> RelationalMemory:
    config = dict(input_size=5, mem_slots=3, head_size=4, num_heads=2, num_blocks=1, num_input_rows=1)
    config.update(overrides)
    torch.manual_seed(0)
    return RelationalMemory(**config)


def random_memory(core: RelationalMemory, batch: int) -> tuple[torch.Tensor]:
    """A non-identity memory, so that tests do not depend on the initial state's zeros."""
    return (torch.randn(batch, core.mem_slots, core.mem_size),)


def reference_step(core: RelationalMemory, inputs: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """The reference's step written out literally from its structure (Sonnet v1 ``_build``).

    No shortcuts: every block attends from and to all rows of ``[M; x]``, the input rows
    are dropped only after the last block, the gate input Linear reads all projected rows
    flattened.
    """
    rows = inputs if inputs.dim() == 3 else inputs[:, None]
    projected = core.input_projection(rows)  # [B, R, D]
    state = torch.cat([memory, projected], dim=1)  # [B, N+R, D]
    heads, key_size, value_size = core.num_heads, core.key_size, core.head_size
    for block in core.blocks:
        qkv = block.qkv_norm(block.qkv(state))
        batch, total_rows, _ = qkv.shape
        qkv = qkv.view(batch, total_rows, heads, 2 * key_size + value_size).permute(0, 2, 1, 3)
        q, k, v = qkv[..., :key_size], qkv[..., key_size : 2 * key_size], qkv[..., 2 * key_size :]
        weights = torch.softmax((q * key_size**-0.5) @ k.transpose(-1, -2), dim=-1)
        attended = (weights @ v).permute(0, 2, 1, 3).reshape(batch, total_rows, heads * value_size)
        state = block.attention_norm(state + attended)
        hidden = state
        for index, layer in enumerate(core.attention_mlp):
            hidden = layer(hidden)
            if index < len(core.attention_mlp) - 1:
                hidden = F.relu(hidden)
        state = block.mlp_norm(state + hidden)
    attended_memory = state[:, : core.mem_slots]
    if core.gate_style is None:
        return attended_memory
    gate_inputs = core.gate_input(projected.flatten(1))[:, None]
    gates = core.gate_memory(torch.tanh(memory)) + gate_inputs
    input_gate, forget_gate = torch.split(gates, gates.shape[-1] // 2, dim=-1)
    input_gate = torch.sigmoid(input_gate + core.input_bias)
    forget_gate = torch.sigmoid(forget_gate + core.forget_bias)
    return input_gate * torch.tanh(attended_memory) + forget_gate * memory


def reference_parameter_count(
    input_size: int,
    mem_slots: int,
    head_size: int,
    num_heads: int = 1,
    num_blocks: int = 1,
    gate_style: str | None = "unit",
    attention_mlp_layers: int = 2,
    key_size: int | None = None,
    num_input_rows: int = 1,
) -> int:
    """Parameters of Sonnet v1's RelationalMemory, counted from its layer list.

    - input Linear(input_size -> D) with bias;
    - per block (each call of ``_multihead_attention`` builds new modules): Linear(D -> Q)
      with bias, LayerNorm(Q) (gain + bias), and the two post-norm LayerNorm(D);
    - one MLP built before the block loop and reused by every block:
      ``attention_mlp_layers`` x Linear(D -> D) with bias;
    - gates: Linear(R * D -> 2G) on the flattened projected input and Linear(D -> 2G) on
      tanh(memory), both with bias; G = D ('unit'), 1 ('memory'), no gate Linears (None).
    mem_slots does not appear: no parameter depends on it.
    """
    del mem_slots
    mem_size = head_size * num_heads
    key = key_size or head_size
    qkv_size = num_heads * (2 * key + head_size)
    count = input_size * mem_size + mem_size
    count += num_blocks * ((mem_size * qkv_size + qkv_size) + 2 * qkv_size + 2 * (2 * mem_size))
    count += attention_mlp_layers * (mem_size * mem_size + mem_size)
    gate_size = {"unit": mem_size, "memory": 1, None: 0}[gate_style]
    if gate_size:
        count += (num_input_rows * mem_size + 1) * 2 * gate_size + (mem_size + 1) * 2 * gate_size
    return count


@pytest.mark.parametrize(
    "config",
    [
        dict(input_size=7, mem_slots=4, head_size=8),
        dict(input_size=7, mem_slots=4, head_size=8, num_heads=3, num_blocks=2, gate_style="memory"),
        dict(input_size=3, mem_slots=2, head_size=5, num_heads=2, gate_style=None, attention_mlp_layers=3),
        dict(input_size=26, mem_slots=4, head_size=6, num_heads=4, gate_style="memory", num_input_rows=9),
        dict(input_size=4, mem_slots=6, head_size=4, num_heads=2, key_size=3, num_blocks=3, num_input_rows=2),
    ],
)
def test_parameter_count_equals_the_reference_layer_list(config):
    core = RelationalMemory(**config)
    assert sum(p.numel() for p in core.parameters()) == reference_parameter_count(**config)


def test_parameter_count_at_the_box_world_configuration():
    # 4 memories, 4 heads of 256 (D = 1024), 1 block, 'memory' gating, 144 rows of 26 features.
    config = dict(input_size=26, mem_slots=4, head_size=256, num_heads=4, gate_style="memory", num_input_rows=144)
    expected = (26 * 1024 + 1024) + (1024 * 3072 + 3072 + 2 * 3072 + 4 * 1024) + 2 * (1024 * 1024 + 1024)
    expected += (144 * 1024 + 1) * 2 + (1024 + 1) * 2
    assert reference_parameter_count(**config) == expected
    with torch.device("meta"):
        core = RelationalMemory(**config)
    assert sum(p.numel() for p in core.parameters()) == expected


@pytest.mark.parametrize("gate_style", ["unit", "memory", None])
@pytest.mark.parametrize("num_blocks", [1, 2])
@pytest.mark.parametrize("rows", [1, 3])
def test_step_matches_the_reference_written_out(gate_style, num_blocks, rows):
    config = dict(input_size=3, mem_slots=2, head_size=8, key_size=3)
    core = tiny_core(gate_style=gate_style, num_blocks=num_blocks, num_input_rows=rows, **config)
    # Here a single block takes the low-rank input path; more blocks the dense one.
    assert (core._low_rank_factors(return_attention=False) is not None) == (num_blocks == 1)
    inputs = torch.randn(2, rows, 3) if rows > 1 else torch.randn(2, 3)
    memory = random_memory(core, 2)
    output, (next_memory,) = core(inputs, memory)
    expected = reference_step(core, inputs, memory[0])
    torch.testing.assert_close(next_memory, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(output, expected.flatten(1))


def test_shapes_and_sizes():
    core = tiny_core(num_input_rows=6)
    assert core.mem_size == 8 and core.output_size == 24
    output, state = core(torch.randn(2, 6, 5), core.initial_state(2))
    assert output.shape == (2, 24)
    assert isinstance(state, tuple) and len(state) == 1 and state[0].shape == (2, 3, 8)
    outputs, final = core.unroll(torch.randn(7, 2, 6, 5), torch.zeros(7, 2, dtype=torch.bool), state)
    assert outputs.shape == (7, 2, 24) and final[0].shape == (2, 3, 8)


@pytest.mark.parametrize(("mem_slots", "head_size", "num_heads"), [(3, 4, 2), (6, 2, 2), (4, 4, 1)])
def test_initial_state_is_the_padded_or_truncated_identity(mem_slots, head_size, num_heads):
    core = tiny_core(mem_slots=mem_slots, head_size=head_size, num_heads=num_heads)
    (memory,) = core.initial_state(3)
    mem_size = head_size * num_heads
    assert memory.shape == (3, mem_slots, mem_size)
    for row in range(mem_slots):
        for column in range(mem_size):
            assert memory[1, row, column].item() == (1.0 if row == column else 0.0)
    (memory64,) = core.initial_state(1, dtype=torch.float64)
    assert memory64.dtype == torch.float64


def test_saturated_gates_keep_the_memory_unchanged():
    core = tiny_core(forget_bias=math.inf, input_bias=-math.inf, num_input_rows=2)
    memory = random_memory(core, 4)
    inputs = torch.randn(5, 4, 2, 5)
    outputs, (final,) = core.unroll(inputs, torch.zeros(5, 4, dtype=torch.bool), memory)
    torch.testing.assert_close(final, memory[0], rtol=0, atol=0)
    torch.testing.assert_close(outputs, memory[0].flatten(1).expand(5, -1, -1), rtol=0, atol=0)


def test_gate_biases_are_constants_not_parameters():
    core = tiny_core(forget_bias=2.5, input_bias=-0.5)
    assert core.forget_bias == 2.5 and core.input_bias == -0.5
    assert core.gate_input.bias.abs().sum().item() == 0.0  # the learnt biases start at zero
    names = {name for name, _ in core.named_parameters()}
    assert not any("forget" in name or "input_bias" in name for name in names)


def test_gate_widths_follow_the_gate_style():
    assert tiny_core(gate_style="unit").gate_memory.out_features == 2 * 8
    assert tiny_core(gate_style="memory").gate_memory.out_features == 2
    ungated = tiny_core(gate_style=None)
    assert ungated.gate_memory is None and ungated.gate_input is None
    assert tiny_core(num_input_rows=4).gate_input.in_features == 4 * 8
    assert tiny_core(num_input_rows=4, gate_input_pooling="mean").gate_input.in_features == 8


def test_ungated_memory_rows_are_layer_normalised():
    core = tiny_core(gate_style=None, head_size=8)
    _, (memory,) = core(torch.randn(3, 5), random_memory(core, 3))
    torch.testing.assert_close(memory.mean(-1), torch.zeros(3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(memory.var(-1, unbiased=False), torch.ones(3, 3), atol=1e-3, rtol=0)


def test_initialisation_follows_sonnet():
    core = tiny_core(input_size=50)
    weight = core.input_projection.weight
    assert weight.abs().max().item() <= 2 / math.sqrt(50) + 1e-6
    assert 0.6 / math.sqrt(50) < weight.std().item() < 1.1 / math.sqrt(50)
    for module in core.modules():
        if isinstance(module, torch.nn.Linear):
            assert module.bias.abs().sum().item() == 0.0
        if isinstance(module, torch.nn.LayerNorm):
            assert torch.all(module.weight == 1) and torch.all(module.bias == 0)


def test_mlp_layers_have_separate_weights_and_blocks_separate_attention():
    core = tiny_core(num_blocks=2, attention_mlp_layers=3)
    mlp_weights = [layer.weight for layer in core.attention_mlp]
    assert len({w.data_ptr() for w in mlp_weights}) == 3
    assert core.blocks[0].qkv.weight.data_ptr() != core.blocks[1].qkv.weight.data_ptr()
    assert core.blocks[0].mlp_norm.weight.data_ptr() != core.blocks[1].mlp_norm.weight.data_ptr()


def test_reset_restores_the_initial_state_and_stepping_equals_unroll():
    core = tiny_core(num_input_rows=2, num_blocks=2)
    steps, batch = 6, 3
    inputs = torch.randn(steps, batch, 2, 5)
    reset = torch.zeros(steps, batch, dtype=torch.bool)
    reset[0, 1] = reset[2, 0] = reset[4, 2] = reset[4, 0] = True
    start = random_memory(core, batch)
    outputs, (final,) = core.unroll(inputs, reset, start)

    (initial,) = core.initial_state(batch)
    memory = start[0]
    for t in range(steps):
        memory = torch.where(reset[t, :, None, None], initial, memory)
        output, (memory,) = core(inputs[t], (memory,))
        torch.testing.assert_close(outputs[t], output, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(final, memory, rtol=1e-5, atol=1e-6)

    # A reset at t makes step t independent of everything before it.
    fresh, _ = core(inputs[2, 0:1], core.initial_state(1))
    torch.testing.assert_close(outputs[2, 0:1], fresh, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("num_blocks", [1, 2])
def test_return_attention_shapes_sums_and_same_outputs(num_blocks):
    # The plain path (low-rank with one block here) and the explicit-weights path agree.
    core = tiny_core(input_size=5, mem_slots=3, head_size=16, num_input_rows=4, num_blocks=num_blocks)
    assert (core._low_rank_factors(return_attention=False) is not None) == (num_blocks == 1)
    inputs = torch.randn(3, 2, 4, 5)
    reset = torch.tensor([[True, False], [False, False], [False, True]])
    state = random_memory(core, 2)
    plain, (plain_final,) = core.unroll(inputs, reset, state)
    outputs, (final,), attention = core.unroll(inputs, reset, state, return_attention=True)
    assert attention.shape == (3, 2, num_blocks, 2, 3 + 4, 3 + 4)
    torch.testing.assert_close(attention.sum(-1), torch.ones(3, 2, num_blocks, 2, 7))
    assert torch.all(attention >= 0)
    torch.testing.assert_close(outputs, plain, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(final, plain_final, rtol=1e-5, atol=1e-6)

    output, _, step_attention = core(inputs[1], state, return_attention=True)
    assert step_attention.shape == (2, num_blocks, 2, 7, 7)
    torch.testing.assert_close(output, core(inputs[1], state)[0], rtol=1e-5, atol=1e-6)


def test_multi_row_inputs_are_a_set_without_flattened_gating():
    # Attention has no notion of row order; only the reference's flattened gate Linear has.
    inputs = torch.randn(2, 5, 5)
    permuted = inputs[:, torch.tensor([3, 0, 4, 1, 2])]
    for core in (tiny_core(num_input_rows=5, gate_style=None), tiny_core(num_input_rows=5, gate_input_pooling="mean")):
        state = random_memory(core, 2)
        torch.testing.assert_close(core(inputs, state)[0], core(permuted, state)[0], rtol=1e-5, atol=1e-6)
    flattened = tiny_core(num_input_rows=5)
    state = random_memory(flattened, 2)
    assert not torch.allclose(flattened(inputs, state)[0], flattened(permuted, state)[0])
    # Every row matters.
    changed = inputs.clone()
    changed[:, 4] += 1.0
    assert not torch.allclose(flattened(inputs, state)[0], flattened(changed, state)[0])


@pytest.mark.parametrize("num_blocks", [1, 2])
def test_gradients_reach_every_parameter(num_blocks):
    core = tiny_core(input_size=3, mem_slots=2, head_size=8, num_input_rows=3, num_blocks=num_blocks, attention_mlp_layers=3)
    assert (core._low_rank_factors(return_attention=False) is not None) == (num_blocks == 1)
    inputs = torch.randn(4, 2, 3, 3)
    reset = torch.zeros(4, 2, dtype=torch.bool)
    outputs, _ = core.unroll(inputs, reset, core.initial_state(2))
    (outputs * torch.randn_like(outputs)).sum().backward()
    for name, parameter in core.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum().item() > 0, name


@pytest.mark.parametrize("num_blocks", [1, 2])
def test_float64_gradcheck(num_blocks):
    config = dict(input_size=1, mem_slots=2, head_size=4, num_heads=2, key_size=2, num_input_rows=2)
    core = tiny_core(num_blocks=num_blocks, **config).double()
    assert (core._low_rank_factors(return_attention=False) is not None) == (num_blocks == 1)
    inputs = torch.randn(2, 1, 2, 1, dtype=torch.float64, requires_grad=True)
    memory = torch.randn(1, 2, 8, dtype=torch.float64, requires_grad=True)
    reset = torch.tensor([[False], [False]])

    def run(inputs, memory):
        return core.unroll(inputs, reset, (memory,))[0]

    assert torch.autograd.gradcheck(run, (inputs, memory), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(num_blocks=0), "num_blocks must be an integer >= 1, got 0"),
        (dict(attention_mlp_layers=0), "attention_mlp_layers must be an integer >= 1, got 0"),
        (dict(mem_slots=-1), "mem_slots must be an integer >= 1, got -1"),
        (dict(key_size=0), "key_size must be an integer >= 1, got 0"),
        (dict(gate_style="bogus"), "gate_style must be one of 'unit', 'memory' or None, got 'bogus'"),
        (dict(gate_input_pooling="max"), "gate_input_pooling must be 'flatten' or 'mean', got 'max'"),
    ],
)
def test_bad_arguments_raise_errors_naming_the_value(overrides, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        tiny_core(**overrides)


def test_bad_inputs_raise_errors_naming_the_shape():
    core = tiny_core(num_input_rows=2)
    state = core.initial_state(2)
    with pytest.raises(ValueError, match=r"5 features per row, got shape \[2, 2, 4\]"):
        core(torch.randn(2, 2, 4), state)
    with pytest.raises(ValueError, match="num_input_rows=2.*got 3 rows"):
        core(torch.randn(2, 3, 5), state)
    with pytest.raises(ValueError, match=r"reset must have shape \[T, B\] = \[4, 2\], got \[4\]"):
        core.unroll(torch.randn(4, 2, 2, 5), torch.zeros(4, dtype=torch.bool), state)
    with pytest.raises(ValueError, match=r"memory must have shape \[2, 3, 8\], got \[1, 3, 8\]"):
        core(torch.randn(2, 2, 5), core.initial_state(1))


def test_low_rank_path_matches_the_reference_with_many_wide_rows():
    # Box-World-like proportions, scaled down: many narrow rows, wide q/k/v rows.
    core = tiny_core(input_size=6, mem_slots=4, head_size=16, num_heads=4, gate_style="memory", num_input_rows=36)
    assert core._low_rank_factors(return_attention=False) is not None
    inputs = torch.randn(3, 36, 6) * 3
    memory = random_memory(core, 3)
    _, (next_memory,) = core(inputs, memory)
    torch.testing.assert_close(next_memory, reference_step(core, inputs, memory[0]), rtol=1e-4, atol=1e-5)
