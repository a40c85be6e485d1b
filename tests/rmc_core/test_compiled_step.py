"""RelationalMemory.compile_step: the same outputs and gradients as the eager step."""

from __future__ import annotations

import pytest
import torch

from rmc_core import RelationalMemory

pytestmark = pytest.mark.timeout(600)  # the first compile of a step takes a while on CPU


@pytest.mark.parametrize("rows", [1, 4])  # one row per step, and a set of rows (the low-rank path)
def test_compiled_step_matches_the_eager_step_forward_and_backward(rows):
    torch.manual_seed(0)
    eager = RelationalMemory(5, mem_slots=2, head_size=4, num_heads=2, num_input_rows=rows)
    compiled = RelationalMemory(5, mem_slots=2, head_size=4, num_heads=2, num_input_rows=rows)
    compiled.load_state_dict(eager.state_dict())
    compiled.compile_step()
    assert set(compiled.state_dict()) == set(eager.state_dict())  # no renamed or added entries

    steps, batch = 4, 3
    inputs = torch.randn(steps, batch, rows, 5) if rows > 1 else torch.randn(steps, batch, 5)
    reset = torch.zeros(steps, batch, dtype=torch.bool)
    reset[2, 1] = True
    results = []
    for core in (eager, compiled):
        outputs, (memory,) = core.unroll(inputs, reset, core.initial_state(batch))
        (outputs.square().mean() + memory.sum()).backward()
        results.append((outputs, memory, {name: p.grad for name, p in core.named_parameters()}))
    (eager_out, eager_memory, eager_grads), (compiled_out, compiled_memory, compiled_grads) = results
    torch.testing.assert_close(compiled_out, eager_out, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(compiled_memory, eager_memory, rtol=1e-4, atol=1e-5)
    for name, grad in eager_grads.items():
        torch.testing.assert_close(compiled_grads[name], grad, rtol=1e-4, atol=1e-5, msg=name)
