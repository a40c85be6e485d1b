"""Training throughput: end-to-end IMPALA steps/s against the same actors acting alone.

In one run, with one set of actor processes (the Box-World RMC preset by default):

1. acting only: the learner hands every unroll straight back to its actor without
   reading it (the actors' ceiling: env stepping plus CPU inference plus the plumbing);
   then the learner's first two updates are timed apart (where a compiled learner compiles
   and records its graphs);
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

from agents.trajectory import Trajectory
from launch.cli import BadInput, cores_minus_one, first_paragraph, parse_options, run_command
from launch.impala.buffers import split_batch
from launch.impala.config import PRESETS, config_from_preset
from launch.train import Trainer


def start_actors(trainer: Trainer, limit_s: float = 240.0) -> float:
    """Acts (without learning) until every actor has had time for three unrolls, so that
    actors that compile their acting step (``compile_acting``) have compiled; returns the
    seconds it took (at most ``limit_s``)."""
    config = trainer.config
    needed = trainer.counters.step + 3 * config.num_actors * config.envs_per_actor * config.unroll_length
    start = time.perf_counter()
    while trainer.counters.step < needed and time.perf_counter() - start < limit_s:
        trainer.run_loop(learn=False, duration_s=1.0)
    return time.perf_counter() - start


def measure(trainer: Trainer, learn: bool, seconds: float, warmup_seconds: float) -> float:
    """Environment steps per second consumed over ``seconds`` after a warm-up."""
    trainer.run_loop(learn=learn, duration_s=warmup_seconds)
    start_step, start = trainer.counters.step, time.perf_counter()
    trainer.run_loop(learn=learn, duration_s=seconds)
    return (trainer.counters.step - start_step) / (time.perf_counter() - start)


def gathered_batch(trainer: Trainer) -> tuple[Trajectory, tuple[torch.Tensor, ...]]:
    """One update's batch, gathered from the actors onto the learner device."""
    config, pool = trainer.config, trainer.pool
    while len(pool.ready) < config.unrolls_per_batch:
        pool.poll(timeout=0.5)
    slots = pool.take(config.unrolls_per_batch)
    trajectory, state, _ = trainer.buffers.gather(slots, trainer.device)
    pool.release(slots)
    return split_batch(trajectory, state, config.updates_per_batch)[0]


def compile_learner(trainer: Trainer) -> float:
    """Seconds of the learner's first two updates (a compiled learner compiles and records
    its graphs there), so that no measured phase contains them."""
    assert trainer.learner is not None
    trajectory, state = gathered_batch(trainer)
    start = time.perf_counter()
    for _ in range(2):
        trainer.learner.update(trajectory, state)
    synchronise(trainer.device)
    return time.perf_counter() - start


def learner_only(trainer: Trainer, seconds: float) -> float:
    """Steps per second of learner updates on one batch that is already gathered."""
    assert trainer.learner is not None
    trajectory, state = gathered_batch(trainer)
    trainer.learner.update(trajectory, state)
    synchronise(trainer.device)
    updates, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        trainer.learner.update(trajectory, state)
        updates += 1
    synchronise(trainer.device)
    return updates * trainer.config.steps_per_update / (time.perf_counter() - start)


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
    """torch.compile the learner's RMC step."""
    compile_update: Literal["auto", "on", "off"] = "auto"
    """Compile the learner's gradient steps whole (launch.train's --compile-update); the
    compile is timed before the training phase."""
    compile_acting: Literal["auto", "on", "off"] = "auto"
    """Compile the actors' acting step (launch.train's --compile-acting); the compile falls
    before the acting phase."""

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise BadInput(f"--preset must be one of {sorted(PRESETS)}, got {self.preset!r}")


def main() -> None:
    args = parse_options(TrainThroughputOptions, None, prog="benchmarks/train_throughput.py",
                         description=first_paragraph(__doc__))
    overrides = {"num_actors": args.num_actors, "total_steps": 10**12, "log_interval_s": 10**9,
                 "checkpoint_interval_s": 10**9, "device": args.device, "compile_core": args.compile_core,
                 "compile_update": args.compile_update, "compile_acting": args.compile_acting}
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
        started_s = start_actors(trainer)
        print(f"actors' first three unrolls: {started_s:.1f} s")
        acting = measure(trainer, learn=False, seconds=args.seconds, warmup_seconds=args.warmup_seconds)
        print(f"acting only      {acting:10,.0f} steps/s")
        assert trainer.learner is not None
        prepare_s = compile_learner(trainer)
        print(f"learner's first two updates: {prepare_s:.1f} s "
              f"({'compiled gradient steps' if trainer.learner.compiled else 'eager gradient steps'})")
        training = measure(trainer, learn=True, seconds=args.seconds, warmup_seconds=args.warmup_seconds)
        print(f"training         {training:10,.0f} steps/s")
        learner = learner_only(trainer, seconds=min(args.seconds, 10.0))
        print(f"learner only     {learner:10,.0f} steps/s")
        ratio = training / acting if acting else float("nan")
        print(f"ratio training / acting = {ratio:.2f} (target >= 0.7)")
        print(json.dumps({"preset": args.preset, "num_actors": config.num_actors, "envs_per_actor": config.envs_per_actor,
                          "device": str(trainer.device), "compile_core": config.compile_core,
                          "compile_update": trainer.learner.compiled, "first_updates_s": prepare_s,
                          "acting_steps_per_s": acting, "training_steps_per_s": training,
                          "learner_only_steps_per_s": learner, "ratio": ratio}))
    finally:
        trainer.close()


if __name__ == "__main__":
    sys.exit(run_command(main))
