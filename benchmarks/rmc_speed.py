"""Forward+backward time of the Relational Memory Core against ``nn.LSTM``, same run.

Times one training-style pass (``unroll`` over ``[T, B]`` then backward of a scalar loss)
at the RMC paper's Box-World configuration (4 memories, 4 heads of 256 = 1024 units per
memory row, 1 block, 'memory' gating) fed with 144 input rows of 26 features (the 12x12
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

import argparse
import math
import os
import sys
import time
from collections.abc import Callable

import torch
from torch import nn

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40, help="T")
    parser.add_argument("--batch-size", type=int, default=32, help="B")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rows", type=int, default=144, help="input rows of the multi-row configuration")
    parser.add_argument("--row-features", type=int, default=26)
    parser.add_argument("--vector-features", type=int, default=256, help="input of the one-row configuration")
    parser.add_argument("--mem-slots", type=int, default=4)
    parser.add_argument("--head-size", type=int, default=256)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--gate-style", default="memory")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile of the RMC's step")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tf32", action="store_true", help="let float32 matrix products use TF32 on GPUs "
                        "that have it (torch.set_float32_matmul_precision('high'))")
    parser.add_argument(
        "--configurations", nargs="+", choices=["rows", "vector"], default=["rows", "vector"],
        help="which input configurations to time (multi-row, one-row)",
    )  # fmt: skip
    parser.add_argument("--skip-lstm", action="store_true", help="time the RMC only (e.g. with --compile)")
    parser.add_argument("--keep-malloc", action="store_true", help="do not re-run with the malloc settings")
    args = parser.parse_args(argv)
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
    main()
