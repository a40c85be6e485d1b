"""LSTMCore follows the same core contract as RelationalMemory."""

from __future__ import annotations

import pytest
import torch

from rmc_core import LSTMCore, RelationalMemory, make_core


def test_state_is_a_tuple_of_batch_first_zeros():
    core = LSTMCore(6, 5)
    state = core.initial_state(3)
    assert isinstance(state, tuple) and len(state) == 2
    for tensor in state:
        assert tensor.shape == (3, 5) and torch.all(tensor == 0)
    assert core.output_size == 5


def test_step_equals_torch_lstm_cell_arithmetic():
    torch.manual_seed(0)
    core = LSTMCore(6, 5)
    inputs = torch.randn(3, 6)
    state = (torch.randn(3, 5), torch.randn(3, 5))
    output, (hidden, cell) = core(inputs, state)
    lstm = core.lstm
    gates = inputs @ lstm.weight_ih_l0.T + lstm.bias_ih_l0 + state[0] @ lstm.weight_hh_l0.T + lstm.bias_hh_l0
    i, f, g, o = gates.chunk(4, dim=-1)
    expected_cell = torch.sigmoid(f) * state[1] + torch.sigmoid(i) * torch.tanh(g)
    expected_hidden = torch.sigmoid(o) * torch.tanh(expected_cell)
    torch.testing.assert_close(cell, expected_cell)
    torch.testing.assert_close(hidden, expected_hidden)
    torch.testing.assert_close(output, hidden)


def test_unroll_with_resets_equals_stepping():
    torch.manual_seed(0)
    core = LSTMCore(2 * 3, 4)
    steps, batch = 7, 3
    inputs = torch.randn(steps, batch, 2, 3)  # rows are flattened
    reset = torch.zeros(steps, batch, dtype=torch.bool)
    reset[0, 2] = reset[3, 0] = reset[3, 1] = reset[5, 2] = True
    start = (torch.randn(batch, 4), torch.randn(batch, 4))
    outputs, (hidden, cell) = core.unroll(inputs, reset, start)
    assert outputs.shape == (steps, batch, 4)

    state = start
    for t in range(steps):
        keep = (~reset[t]).float()[:, None]
        state = (state[0] * keep, state[1] * keep)
        output, state = core(inputs[t], state)
        torch.testing.assert_close(outputs[t], output)
    torch.testing.assert_close(hidden, state[0])
    torch.testing.assert_close(cell, state[1])
    fresh, _ = core(inputs[3, 0:1], core.initial_state(1))
    torch.testing.assert_close(outputs[3, 0:1], fresh)


def test_errors():
    core = LSTMCore(6, 4)
    state = core.initial_state(2)
    with pytest.raises(ValueError, match="return_attention=True is not supported by LSTMCore"):
        core(torch.randn(2, 6), state, return_attention=True)
    with pytest.raises(ValueError, match=r"R\*F == 6, got shape \[1, 2, 7\]"):
        core(torch.randn(2, 7), state)
    with pytest.raises(ValueError, match="hidden_size must be an integer >= 1, got 0"):
        LSTMCore(6, 0)
    with pytest.raises(ValueError, match=r"h must have shape \[2, 4\], got \[2, 3\]"):
        core(torch.randn(2, 6), (torch.zeros(2, 3), torch.zeros(2, 3)))


def test_make_core_builds_either_core():
    rmc = make_core("rmc", 26, num_input_rows=9, mem_slots=2, head_size=4, num_heads=2, gate_style="memory")
    assert isinstance(rmc, RelationalMemory) and rmc.num_input_rows == 9 and rmc.output_size == 16
    output, _ = rmc(torch.randn(3, 9, 26), rmc.initial_state(3))
    assert output.shape == (3, 16)
    lstm = make_core("lstm", 26, num_input_rows=9, hidden_size=12)
    assert isinstance(lstm, LSTMCore) and lstm.input_size == 26 * 9 and lstm.output_size == 12
    output, _ = lstm(torch.randn(3, 9, 26), lstm.initial_state(3))
    assert output.shape == (3, 12)
    with pytest.raises(ValueError, match="kind must be 'rmc' or 'lstm', got 'gru'"):
        make_core("gru", 4)


@pytest.mark.parametrize("forget_bias", [0.0, 1.0, 2.5])
def test_forget_bias_shifts_only_the_forget_gates(forget_bias):
    torch.manual_seed(0)
    reference = LSTMCore(3, 8, forget_bias=0.0)
    torch.manual_seed(0)
    core = LSTMCore(3, 8, forget_bias=forget_bias)
    shift = (core.lstm.bias_ih_l0 - reference.lstm.bias_ih_l0).detach().reshape(4, 8)  # gates i, f, g, o
    torch.testing.assert_close(shift[1], torch.full((8,), forget_bias))
    torch.testing.assert_close(shift[[0, 2, 3]], torch.zeros(3, 8))
    torch.testing.assert_close(core.lstm.bias_hh_l0, reference.lstm.bias_hh_l0)
