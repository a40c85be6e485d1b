"""Recurrent cores: the Relational Memory Core (Santoro et al., 2018) and an LSTM core.

Every core follows one contract (Sonnet's RNNCore): ``initial_state(batch_size)`` returns a
tuple of batch-first tensors, ``forward(inputs, state) -> (output, state)`` is one step and
``unroll(inputs, reset, state) -> (outputs, state)`` a time-major sequence that restores the
initial state where ``reset`` is True. Pure torch.
"""

from __future__ import annotations

from typing import Any, Literal

from rmc_core.lstm_core import LSTMCore
from rmc_core.relational_memory import RelationalMemory

__all__ = ["LSTMCore", "RelationalMemory", "make_core"]


def make_core(
    kind: Literal["rmc", "lstm"], input_size: int, num_input_rows: int = 1, **kwargs: Any
) -> RelationalMemory | LSTMCore:
    """Builds a recurrent core.

    Args:
        kind: ``"rmc"`` or ``"lstm"``.
        input_size: Feature size of one input row.
        num_input_rows: Rows per step R. The RMC appends them as R memory rows; the LSTM
            reads them flattened (``input_size * R`` values).
        **kwargs: The chosen core's other arguments (e.g. ``mem_slots``, ``head_size`` for
            the RMC, ``hidden_size`` for the LSTM).

    Raises:
        ValueError: Unknown ``kind``.
    """
    if kind == "rmc":
        return RelationalMemory(input_size, num_input_rows=num_input_rows, **kwargs)
    if kind == "lstm":
        return LSTMCore(input_size * num_input_rows, **kwargs)
    raise ValueError(f"kind must be 'rmc' or 'lstm', got {kind!r}")
