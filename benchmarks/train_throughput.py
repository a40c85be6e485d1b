"""Training throughput: end-to-end IMPALA steps/s against the same actors acting alone.

In one run, with one set of actor processes (the Box-World RMC preset by default):

1. acting only: the learner hands every unroll straight back to its actor without
   reading it (the actors' ceiling: env stepping plus CPU inference plus the plumbing);
2. training: the same actors with the learner gathering batches, running V-trace, taking
   optimizer steps and publishing weights;
3. learner only: repeated updates on one gathered batch (the learner's ceiling on its
   device; on a GPU this is the learner's throughput).

Prints each in environment steps per second and the ratio training / acting (target
>= 0.7: the learner and the plumbing are not the bottleneck), then one JSON line.

    python benchmarks/train_throughput.py [--preset boxworld-rmc] [--num-actors N] [--seconds 20]
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from typing import Literal

import torch

from launch.cli import BadInput, cores_minus_one, first_paragraph, parse_options, run_command
from launch.impala.buffers import split_batch
from launch.impala.config import PRESETS, config_from_preset
from launch.train import Trainer


def measure(trainer: Trainer, learn: bool, seconds: float, warmup_seconds: float) -> float:
    """Environment steps per second consumed over ``seconds`` after a warm-up."""
    trainer.run_loop(learn=learn, duration_s=warmup_seconds)
    start_step, start = trainer.counters.step, time.perf_counter()
    trainer.run_loop(learn=learn, duration_s=seconds)
    return (trainer.counters.step - start_step) / (time.perf_counter() - start)


def learner_only(trainer: Trainer, seconds: float) -> float:
    """Steps per second of learner updates on one batch that is already gathered."""
    assert trainer.learner is not None
    config, pool = trainer.config, trainer.pool
    while len(pool.ready) < config.unrolls_per_batch:
        pool.poll(timeout=0.5)
    slots = pool.take(config.unrolls_per_batch)
    trajectory, state, _ = trainer.buffers.gather(slots, trainer.device)
    pool.release(slots)
    trajectory, state = split_batch(trajectory, state, config.updates_per_batch)[0]  # one update's batch
    trainer.learner.update(trajectory, state)
    synchronise(trainer.device)
    updates, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        trainer.learner.update(trajectory, state)
        updates += 1
    synchronise(trainer.device)
    return updates * config.steps_per_update / (time.perf_counter() - start)


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@dataclass
class TrainThroughputOptions:
    """What ``benchmarks/train_throughput.py`` measures."""

    preset: str = "boxworld-rmc"
    """The launch.train preset to train."""
    num_actors: int = field(default_factory=cores_minus_one)
    """Actor processes (default: the cores minus one for the learner)."""
    envs_per_actor: int | None = None
    """Games per actor (default: the preset's)."""
    seconds: float = 20.0
    """Measured seconds per phase."""
    warmup_seconds: float = 5.0
    """Unmeasured seconds before each phase."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where the learner runs."""
    compile_core: bool = False
    """torch.compile the learner's RMC step (the compile falls in the training warm-up)."""

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise BadInput(f"--preset must be one of {sorted(PRESETS)}, got {self.preset!r}")


def main() -> None:
    args = parse_options(TrainThroughputOptions, None, prog="benchmarks/train_throughput.py",
                         description=first_paragraph(__doc__))
    overrides = {"num_actors": args.num_actors, "total_steps": 10**12, "log_interval_s": 10**9,
                 "checkpoint_interval_s": 10**9, "device": args.device, "compile_core": args.compile_core}
    if args.envs_per_actor is not None:
        overrides["envs_per_actor"] = args.envs_per_actor
        overrides["batch_size"] = max(1, PRESETS[args.preset].get("batch_size", 16) // args.envs_per_actor) * args.envs_per_actor
    config = config_from_preset(args.preset, **overrides)
    trainer = Trainer(config, run=None, log=lambda text: print(f"  {text}"))
    try:
        trainer.start()
        print(f"{args.preset}: {config.num_actors} actors x {config.envs_per_actor} games, unroll {config.unroll_length}, "
              f"batch {config.batch_size}, learner on {trainer.device} ({torch.get_num_threads()} threads)"
              f"{', compiled RMC step' if config.compile_core else ''}")
        acting = measure(trainer, learn=False, seconds=args.seconds, warmup_seconds=args.warmup_seconds)
        print(f"acting only      {acting:10,.0f} steps/s")
        training = measure(trainer, learn=True, seconds=args.seconds, warmup_seconds=args.warmup_seconds)
        print(f"training         {training:10,.0f} steps/s")
        learner = learner_only(trainer, seconds=min(args.seconds, 10.0))
        print(f"learner only     {learner:10,.0f} steps/s")
        ratio = training / acting if acting else float("nan")
        print(f"ratio training / acting = {ratio:.2f} (target >= 0.7)")
        print(json.dumps({"preset": args.preset, "num_actors": config.num_actors, "envs_per_actor": config.envs_per_actor,
                          "device": str(trainer.device), "compile_core": config.compile_core,
                          "acting_steps_per_s": acting, "training_steps_per_s": training,
                          "learner_only_steps_per_s": learner, "ratio": ratio}))
    finally:
        trainer.close()


if __name__ == "__main__":
    sys.exit(run_command(main))
