"""The sequence call's backward pass must not grow with T squared.

Indexing a ``[T, ...]`` tensor with ``x[t]`` inside the time loop makes every step's
backward build a zero-filled gradient of the whole sequence and add the T of them; on the
paper-size agent that was 40-55% of a learner update. The unrolls split the time axis once
(``unbind`` in the RMC, one ``split`` in the LSTM), so their graphs hold no per-step select
or slice of the sequence.
"""

from __future__ import annotations

import pytest
import torch

from rmc_core import make_core


def _backward_node_counts(output: torch.Tensor) -> dict[str, int]:
    counts: dict[str, int] = {}
    seen, stack = set(), [output.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        counts[type(node).__name__] = counts.get(type(node).__name__, 0) + 1
        stack.extend(parent for parent, _ in node.next_functions)
    return counts


@pytest.mark.parametrize("rows", [1, 12])
@pytest.mark.parametrize("gate_style", ["memory", None])
def test_rmc_unroll_graph_has_no_per_step_select(rows, gate_style):
    core = make_core("rmc", 8, mem_slots=2, head_size=8, num_heads=2, num_input_rows=rows, gate_style=gate_style)
    for steps in (3, 7):
        inputs = torch.randn(steps, 4, rows, 8, requires_grad=True)
        reset = torch.zeros(steps, 4, dtype=torch.bool)
        reset[1, 0] = True
        outputs, _ = core.unroll(inputs, reset, core.initial_state(4))
        counts = _backward_node_counts(outputs)
        assert counts.get("SelectBackward0", 0) == 0, counts
        assert counts.get("UnbindBackward0", 0) >= 1, counts


def test_lstm_unroll_graph_has_no_per_stretch_slice():
    core = make_core("lstm", 6, hidden_size=5)
    inputs = torch.randn(8, 3, 6, requires_grad=True)
    reset = torch.zeros(8, 3, dtype=torch.bool)
    reset[[2, 5, 6], 1] = True  # four stretches
    outputs, _ = core.unroll(inputs, reset, core.initial_state(3))
    counts = _backward_node_counts(outputs)
    assert counts.get("SliceBackward0", 0) == 0, counts
    assert counts.get("SplitWithSizesBackward0", 0) + counts.get("SplitBackward0", 0) >= 1, counts
    outputs.sum().backward()
    assert torch.isfinite(inputs.grad).all() and inputs.grad.abs().sum() > 0
