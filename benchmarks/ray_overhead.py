"""Ray backend overhead: training steps/s with Ray actors against local actor processes.

In one process and one run, two Trainers with the same config: one with local actor
processes (the yardstick), one with Ray actors on a private Ray instance on this machine
(127.0.0.1 only). After a warm-up of each, the two train in turns for ``--rounds`` rounds
of ``--seconds`` each (interleaved, so a change in the machine's load hits both), then the
script prints steps/s per phase, the ratio Ray / local and one JSON line.

    python benchmarks/ray_overhead.py [--preset boxworld-easy-rmc] [--num-actors N] [--seconds 15] [--rounds 2]
    python benchmarks/ray_overhead.py --preset boxworld-easy-lstm --overrides '{"env": "CartPole-v1"}'
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from launch.cli import BadInput, cores_minus_one, first_paragraph, parse_options, run_command
from launch.impala.config import PRESETS, config_from_preset
from launch.train import Trainer


def train_for(trainer: Trainer, seconds: float) -> float:
    """Environment steps per second consumed while training for ``seconds``."""
    start_step, start = trainer.counters.step, time.perf_counter()
    trainer.run_loop(learn=True, duration_s=seconds)
    return (trainer.counters.step - start_step) / (time.perf_counter() - start)


@dataclass
class RayOverheadOptions:
    """What ``benchmarks/ray_overhead.py`` compares."""

    preset: str = "boxworld-easy-rmc"
    """The launch.train preset both backends train."""
    num_actors: int = field(default_factory=cores_minus_one)
    """Actors per backend (default: the cores minus one for the learner)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """More config fields, as a JSON object."""
    seconds: float = 15.0
    """Measured seconds per phase."""
    rounds: int = 2
    """Local / Ray phase pairs."""
    warmup_seconds: float = 5.0
    """Unmeasured training before the rounds."""

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise BadInput(f"--preset must be one of {sorted(PRESETS)}, got {self.preset!r}")


def main() -> None:
    args = parse_options(RayOverheadOptions, None, prog="benchmarks/ray_overhead.py",
                         description=first_paragraph(__doc__))
    torch.set_num_threads(1)
    common: dict[str, Any] = {"num_actors": args.num_actors, "total_steps": 10**12, "log_interval_s": 10**9,
                              "checkpoint_interval_s": 10**9, "device": "cpu", **args.overrides}
    trainers = {backend: Trainer(config_from_preset(args.preset, backend=backend, **common), run=None,
                                 log=lambda text: print(f"  {text}"))
                for backend in ("local", "ray")}
    rates: dict[str, list[float]] = {backend: [] for backend in trainers}
    try:
        for backend, trainer in trainers.items():
            trainer.start()
            train_for(trainer, args.warmup_seconds)
        config = trainers["local"].config
        print(f"{args.preset} {args.overrides or ''}: {config.num_actors} actors x {config.envs_per_actor} games, "
              f"unroll {config.unroll_length}, batch {config.batch_size}, learner on cpu ({torch.get_num_threads()} threads)")
        for round_index in range(args.rounds):
            for backend, trainer in trainers.items():
                rates[backend].append(train_for(trainer, args.seconds))
                print(f"round {round_index + 1}  {backend:5s}  {rates[backend][-1]:10,.0f} steps/s")
    finally:
        for trainer in trainers.values():
            trainer.close()
    local, ray = statistics.mean(rates["local"]), statistics.mean(rates["ray"])
    ratio = ray / local if local else float("nan")
    print(f"mean local {local:,.0f} steps/s, Ray {ray:,.0f} steps/s: ratio Ray / local = {ratio:.2f} "
          f"(overhead {100 * (1 - ratio):.0f}%)")
    print(json.dumps({"preset": args.preset, "overrides": args.overrides, "num_actors": config.num_actors,
                      "envs_per_actor": config.envs_per_actor, "local_steps_per_s": rates["local"],
                      "ray_steps_per_s": rates["ray"], "ratio": ratio}))


if __name__ == "__main__":
    sys.exit(run_command(main))
