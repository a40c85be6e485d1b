"""An LSTM core with the same contract as :class:`~rmc_core.RelationalMemory`.

It lets every agent switch ``core="rmc" | "lstm"``. The state is ``(h, c)``, each
``[B, hidden_size]``, zeros initially; the output is ``h``. The cell is ``torch.nn.LSTM``
(PyTorch's initialisation and gate layout) with ``forget_bias`` added to the forget gates'
bias at initialisation, as Sonnet's LSTM does (default 1.0, Jozefowicz et al. 2015; it
matches the RMC's own ``forget_bias``); :meth:`LSTMCore.unroll` runs it over the
longest stretches of time with no reset, resetting the state in between.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class LSTMCore(nn.Module):
    """Single-layer LSTM following the Sonnet RNNCore contract.

    Args:
        input_size: Width of one step's input; a ``[B, R, F]`` input is flattened to
            ``[B, R * F]``, which must equal ``input_size``.
        hidden_size: Width of ``h`` and ``c``; also ``output_size``.
        forget_bias: Added to the forget gates' bias at initialisation (PyTorch's own
            initialisation centres it on 0, which makes memory fade about twice as fast
            per step at the start of training).

    Raises:
        ValueError: A size is < 1.
    """

    def __init__(self, input_size: int, hidden_size: int, forget_bias: float = 1.0) -> None:
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = hidden_size
        self.forget_bias = forget_bias
        self.lstm = nn.LSTM(input_size, hidden_size)
        with torch.no_grad():  # PyTorch's gate order: input, forget, cell, output
            self.lstm.bias_ih_l0[hidden_size : 2 * hidden_size] += forget_bias

    def initial_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> tuple[Tensor, Tensor]:
        """Zero ``(h, c)``, each ``[B, hidden_size]``, on the parameters' device/dtype by default."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        weight = self.lstm.weight_ih_l0
        zeros = torch.zeros(
            batch_size,
            self.hidden_size,
            device=device if device is not None else weight.device,
            dtype=dtype if dtype is not None else weight.dtype,
        )
        return zeros, zeros.clone()

    def forward(
        self, inputs: Tensor, state: tuple[Tensor, ...], return_attention: bool = False
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """One step: inputs ``[B, input_size]`` or ``[B, R, F]`` with ``R * F == input_size``.

        Returns:
            ``(output [B, hidden_size], (h, c))``.

        Raises:
            ValueError: ``return_attention=True`` (an LSTM has no attention), or bad shapes.
        """
        outputs, next_state = self.unroll(
            inputs.unsqueeze(0),
            torch.zeros(1, inputs.shape[0], dtype=torch.bool, device=inputs.device),
            state,
            return_attention,
        )
        return outputs[0], next_state

    def unroll(
        self, inputs: Tensor, reset: Tensor, state: tuple[Tensor, ...], return_attention: bool = False
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Time-major sequence ``[T, B, input_size]`` (or ``[T, B, R, F]``) with a ``[T, B]`` reset mask.

        Returns:
            ``(outputs [T, B, hidden_size], (h, c))``.
        """
        if return_attention:
            raise ValueError("return_attention=True is not supported by LSTMCore (it has no attention)")
        if inputs.dim() == 4:
            inputs = inputs.flatten(2)  # [T, B, R*F]
        if inputs.dim() != 3 or inputs.shape[-1] != self.input_size:
            raise ValueError(
                f"inputs must be [T, B, {self.input_size}] or [T, B, R, F] with R*F == {self.input_size}, "
                f"got shape {list(inputs.shape)}"
            )
        steps, batch = inputs.shape[:2]
        if reset.shape != (steps, batch):
            raise ValueError(f"reset must have shape [T, B] = {[steps, batch]}, got {list(reset.shape)}")
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise ValueError(f"state must be a 2-tuple (h, c), got {type(state).__name__} of length {len(state)}")
        hidden, cell = state
        for name, tensor in (("h", hidden), ("c", cell)):
            if tuple(tensor.shape) != (batch, self.hidden_size):
                raise ValueError(f"{name} must have shape {[batch, self.hidden_size]}, got {list(tensor.shape)}")
        reset = reset.to(device=inputs.device, dtype=torch.bool)
        # Split time where any episode starts; run the fused LSTM over each stretch.
        starts = [0] + [t for t in torch.nonzero(reset.any(dim=1)).flatten().tolist() if t > 0] + [steps]
        if reset[0].any():
            keep = (~reset[0]).to(hidden.dtype).unsqueeze(-1)
            hidden, cell = hidden * keep, cell * keep
        pieces = []
        # One split, not inputs[begin:end] in the loop (nor tensor_split, which slices): each
        # slice's backward builds a zero-filled gradient of the whole sequence, one per
        # stretch (up to T of them); split's backward concatenates the stretches' gradients once.
        lengths = [end - begin for begin, end in zip(starts[:-1], starts[1:])]
        stretches = inputs.split(lengths) if len(lengths) > 1 else (inputs,)
        for begin, stretch in zip(starts[:-1], stretches):
            if begin > 0:
                keep = (~reset[begin]).to(hidden.dtype).unsqueeze(-1)  # [B, 1]
                hidden, cell = hidden * keep, cell * keep
            piece, (hidden, cell) = self.lstm(stretch, (hidden.unsqueeze(0), cell.unsqueeze(0)))
            hidden, cell = hidden[0], cell[0]
            pieces.append(piece)
        outputs = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
        return outputs, (hidden, cell)
