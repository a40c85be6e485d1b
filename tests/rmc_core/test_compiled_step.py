"""RelationalMemory.compile_step: the same outputs and gradients as the eager step.

The comparison runs in float64: the compiled step fuses operations and so rounds in a
different order from the eager one, and in float32 that difference depends on the CPU's
vector instructions (up to about 1e-5 of the largest gradient). In float64 the two agree to
about 1e-12, so a tight tolerance still catches a wrong formula on any machine."""

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
    eager.double()
    compiled.double()
    compiled.load_state_dict(eager.state_dict())
    compiled.compile_step()
    assert set(compiled.state_dict()) == set(eager.state_dict())  # no renamed or added entries

    steps, batch = 4, 3
    shape = (steps, batch, rows, 5) if rows > 1 else (steps, batch, 5)
    inputs = torch.randn(shape, dtype=torch.float64)
    reset = torch.zeros(steps, batch, dtype=torch.bool)
    reset[2, 1] = True
    results = []
    for core in (eager, compiled):
        outputs, (memory,) = core.unroll(inputs, reset, core.initial_state(batch))
        (outputs.square().mean() + memory.sum()).backward()
        results.append((outputs, memory, {name: p.grad for name, p in core.named_parameters()}))
    (eager_out, eager_memory, eager_grads), (compiled_out, compiled_memory, compiled_grads) = results
    torch.testing.assert_close(compiled_out, eager_out, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(compiled_memory, eager_memory, rtol=1e-9, atol=1e-10)
    for name, grad in eager_grads.items():
        torch.testing.assert_close(compiled_grads[name], grad, rtol=1e-9, atol=1e-10, msg=name)
