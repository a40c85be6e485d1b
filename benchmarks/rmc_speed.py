"""Forward+backward time of the Relational Memory Core against ``nn.LSTM``, same run.

Times one training-style pass (``unroll`` over ``[T, B]`` then backward of a scalar loss)
at a large RMC (4 memories of 1024 units: 4 heads of 256, 1 block, 'memory' gating; four
times the paper's Box-World core as ``agents.policy`` reads its "1024 total units")
fed with 144 input rows of 26 features (the 12x12
cells of the conv encoder: 24 channels + 2 coordinates), and at a one-row configuration
(one 256-feature vector per step, the same RMC). The yardstick is ``torch.nn.LSTM`` fed
the same per-step input (the 144 rows flattened to 3744 values), at two sizes, since
"same size" has two honest readings:

* same state size: the LSTM's state ``(h, c)`` holds as many numbers as the RMC's memory
  (``mem_slots * mem_size`` = 4096), so hidden = 2048;
* same output size: the LSTM's output ``h`` is as wide as the RMC's (the flattened
  memory, 4096), so hidden = 4096.

Ratios > 1 mean the RMC is slower. Unless ``--keep-malloc`` is given, the script re-runs
itself with glibc's malloc told to keep freed memory (``MALLOC_MMAP_THRESHOLD_``,
``MALLOC_TRIM_THRESHOLD_``): PyTorch's CPU allocator otherwise returns every large buffer
to the system and page-faults it back on the next step, which costs the many small
per-step tensors of a recurrent unroll far more than the few large ones of ``nn.LSTM``
(about 2x on the one-row RMC on the development VM). Both sides run under the same
setting. Example::

    python benchmarks/rmc_speed.py --threads 2
    python benchmarks/rmc_speed.py --threads 2 --compile   # also time torch.compile'd step
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from launch.cli import MANY, BadInput, first_paragraph, parse_options, run_command
from rmc_core import RelationalMemory

MALLOC_SETTINGS = {"MALLOC_MMAP_THRESHOLD_": str(2**32), "MALLOC_TRIM_THRESHOLD_": str(2**36)}


def synchronise(device: torch.device) -> None:
    """Waits for queued GPU work, so that wall time covers the kernels and not only their launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(
    functions: dict[str, Callable[[], None]], repeats: int, warmup: int, device: torch.device = torch.device("cpu")
) -> dict[str, tuple[float, float]]:
    """Times several passes round-robin, so that load from other processes hits all alike.

    Returns:
        ``{name: (best wall seconds, best process CPU seconds)}`` over ``repeats`` rounds,
        after ``warmup`` untimed rounds. The minimum is the least disturbed measurement;
        CPU seconds (all threads) measure the work done even when the machine is shared.
    """
    for _ in range(warmup):
        for function in functions.values():
            function()
    synchronise(device)
    best = {name: (math.inf, math.inf) for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            synchronise(device)
            wall, cpu = time.perf_counter(), time.process_time()
            function()
            synchronise(device)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return best


def rmc_pass(core: nn.Module, inputs: torch.Tensor, step: Callable | None = None) -> Callable[[], None]:
    steps, batch = inputs.shape[:2]
    reset = torch.zeros(steps, batch, dtype=torch.bool, device=inputs.device)
    reset[steps // 2, : batch // 4] = True  # a few episode starts, as in real unrolls

    def run() -> None:
        core.zero_grad(set_to_none=True)
        outputs, _ = core.unroll(inputs, reset, core.initial_state(batch, device=inputs.device))
        outputs.square().mean().backward()

    return run


def lstm_pass(lstm: nn.LSTM, inputs: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        lstm.zero_grad(set_to_none=True)
        outputs, _ = lstm(inputs)
        outputs.square().mean().backward()

    return run


@dataclass
class RmcSpeedOptions:
    """What ``benchmarks/rmc_speed.py`` times."""

    steps: int = 40
    """T, the steps of the unroll."""
    batch_size: int = 32
    """B, the sequences of the unroll."""
    threads: int = 2
    """torch.set_num_threads."""
    repeats: int = 3
    """Interleaved timed repeats (the best is kept)."""
    warmup: int = 1
    """Untimed passes before the repeats."""
    rows: int = 144
    """Input rows of the multi-row configuration."""
    row_features: int = 26
    """Features per input row of the multi-row configuration."""
    vector_features: int = 256
    """Input features of the one-row configuration."""
    mem_slots: int = 4
    """Memories of the RMC."""
    head_size: int = 256
    """Size of each attention head (each memory is num_heads x head_size wide)."""
    num_heads: int = 4
    """Attention heads of the RMC."""
    gate_style: Literal["unit", "memory", "none"] = "memory"
    """The RMC's gating."""
    compile: bool = False
    """Also time torch.compile of the RMC's step."""
    device: str = "cpu"
    """Torch device."""
    tf32: bool = False
    """Let float32 matrix products use TF32 on GPUs that have it (torch.set_float32_matmul_precision('high'))."""
    configurations: list[str] = field(default_factory=lambda: ["rows", "vector"], metadata=MANY)
    """Which input configurations to time: rows (multi-row), vector (one row)."""
    skip_lstm: bool = False
    """Time the RMC only (e.g. with --compile)."""
    keep_malloc: bool = False
    """Do not re-run with the malloc settings."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.configurations) - {"rows", "vector"})
        if unknown:
            raise BadInput(f"--configurations takes rows and vector, got {unknown}")


def main(argv: list[str] | None = None) -> None:
    args = parse_options(RmcSpeedOptions, argv, prog="benchmarks/rmc_speed.py", description=first_paragraph(__doc__))
    if not args.keep_malloc and any(os.environ.get(key) != value for key, value in MALLOC_SETTINGS.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **MALLOC_SETTINGS})

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    if args.tf32:
        torch.set_float32_matmul_precision("high")
    device = torch.device(args.device)
    steps, batch = args.steps, args.batch_size
    mem_size = args.head_size * args.num_heads
    memory_numbers = args.mem_slots * mem_size
    print(
        f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, T={steps}, B={batch}, "
        f"RMC {args.mem_slots} slots x {mem_size} ({args.num_heads} heads of {args.head_size}), "
        f"gate_style={args.gate_style}, malloc settings {'off' if args.keep_malloc else 'on'}, "
        f"float32 matmul precision {torch.get_float32_matmul_precision()}"
    )
    configurations = []
    if "rows" in args.configurations:
        configurations.append((f"{args.rows} rows x {args.row_features}", args.rows, args.row_features))
    if "vector" in args.configurations:
        configurations.append((f"1 row x {args.vector_features}", 1, args.vector_features))
    lstm_sizes = [] if args.skip_lstm else [("same state size", memory_numbers // 2), ("same output size", memory_numbers)]
    for name, rows, features in configurations:
        core = RelationalMemory(
            features,
            args.mem_slots,
            args.head_size,
            num_heads=args.num_heads,
            gate_style=None if args.gate_style == "none" else args.gate_style,
            num_input_rows=rows,
        ).to(device)
        shape = (steps, batch, rows, features) if rows > 1 else (steps, batch, features)
        inputs = torch.randn(shape, device=device)
        passes = {"RMC": rmc_pass(core, inputs)}
        flat_inputs = inputs.reshape(steps, batch, rows * features)
        lstms = {}
        for label, hidden in lstm_sizes:
            lstms[label] = nn.LSTM(rows * features, hidden).to(device)
            passes[f"LSTM hidden {hidden} ({label})"] = lstm_pass(lstms[label], flat_inputs)
        if args.compile:
            compiled_core = RelationalMemory(
                features, args.mem_slots, args.head_size, num_heads=args.num_heads,
                gate_style=None if args.gate_style == "none" else args.gate_style, num_input_rows=rows,
            ).to(device)  # fmt: skip
            compiled_core.load_state_dict(core.state_dict())
            compiled_core.compile_step()
            start = time.perf_counter()
            passes["RMC, torch.compile'd step"] = rmc_pass(compiled_core, inputs)
            passes["RMC, torch.compile'd step"]()
            print(f"torch.compile warm-up pass: {time.perf_counter() - start:.1f} s")
        results = time_interleaved(passes, args.repeats, args.warmup, device)
        rmc_wall, rmc_cpu = results["RMC"]
        print(f"\n[{name}] forward+backward, best of {args.repeats}: wall ms / CPU ms (ratio RMC/this, wall / CPU)")
        for pass_name, (wall, cpu) in results.items():
            print(f"  {pass_name:42s} {wall * 1000:8.0f} / {cpu * 1000:8.0f}   RMC/this = {rmc_wall / wall:.2f} / {rmc_cpu / cpu:.2f}")

if __name__ == "__main__":
    sys.exit(run_command(main))
