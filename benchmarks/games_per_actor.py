"""Cost per environment frame of acting and of learning, by games per actor (batch size).

For a preset's agent and env, times in one run, one thread, best of ``--repeats``
interleaved repeats:

- acting: one actor's ``Rollout.unroll`` (the games stepped ``T`` times with the policy
  on the CPU, writing into a buffer slot), divided by ``T x games``;
- learning: one ``Learner.update`` (V-trace loss, backward, optimiser step) on a batch of
  that many unrolls, divided by ``T x batch``.

Every figure is printed with its ratio to the first size given (the yardstick). Small
batches are dominated by per-step call overhead, so this says how many games an actor
should step together; a run on C cores costs about acting + learning microseconds of
CPU per frame.

    python benchmarks/games_per_actor.py [--preset boxworld-easy-rmc] [--sizes 8,16,32,64] [--repeats 4]
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass

import torch

from agents.trajectory import Trajectory
from launch.cli import BadInput, first_paragraph, parse_options, run_command
from launch.impala.buffers import RolloutBuffers
from launch.impala.config import PRESETS, config_from_preset
from launch.impala.learner import Learner
from launch.impala.rollout import Rollout


def learner_batch(rollout: Rollout, buffers: RolloutBuffers) -> tuple[Trajectory, tuple[torch.Tensor, ...]]:
    """One unroll of ``rollout`` as a learner batch and its initial core state (copies on
    the CPU, so ``buffers`` may be written again)."""
    rollout.unroll(buffers, 0, 0)
    trajectory, state, _ = buffers.gather([0], torch.device("cpu"))
    return trajectory, state


@dataclass
class GamesPerActorOptions:
    """What ``benchmarks/games_per_actor.py`` measures."""

    preset: str = "boxworld-easy-rmc"
    """The launch.train preset whose agent and env are timed."""
    sizes: str = "8,16,32,64"
    """Games per actor (= learner batch) to time, comma-separated."""
    repeats: int = 4
    """Interleaved repeats (the best is kept)."""

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise BadInput(f"--preset must be one of {sorted(PRESETS)}, got {self.preset!r}")
        try:
            sizes = self.size_list
        except ValueError:
            sizes = []
        if not sizes or min(sizes) < 1 or self.repeats < 1:
            raise BadInput(f"--sizes must be positive integers and --repeats >= 1 (got {self.sizes!r}, {self.repeats})")

    @property
    def size_list(self) -> list[int]:
        """``sizes`` as integers."""
        return [int(size) for size in self.sizes.split(",")]


def main() -> None:
    args = parse_options(GamesPerActorOptions, None, prog="benchmarks/games_per_actor.py",
                         description=first_paragraph(__doc__))
    sizes = args.size_list
    torch.set_num_threads(1)
    setups = {}
    for size in sizes:
        config = config_from_preset(args.preset, envs_per_actor=size, batch_size=size)
        rollout = Rollout(config, seed=0)
        buffers = rollout.make_buffers(1, shared=False)
        trajectory, state = learner_batch(rollout, buffers)
        learner = Learner(rollout.policy, config)
        setups[size] = (rollout, buffers, learner, trajectory, state, config.unroll_length * size)
    acting = {size: float("inf") for size in sizes}
    learning = {size: float("inf") for size in sizes}
    for _ in range(args.repeats + 1):  # the first round warms up and is measured too (best wins)
        for size, (rollout, buffers, learner, trajectory, state, frames) in setups.items():
            start = time.perf_counter()
            rollout.unroll(buffers, 0, 0)
            acting[size] = min(acting[size], (time.perf_counter() - start) / frames)
            start = time.perf_counter()
            learner.update(trajectory, state)
            learning[size] = min(learning[size], (time.perf_counter() - start) / frames)
            rollout.policy.eval()  # the learner switched the shared policy to train mode
    base = sizes[0]
    print(f"{args.preset}: unroll {setups[base][0].config.unroll_length}, one thread, "
          f"microseconds of CPU per frame (ratio to {base} games)")
    for size in sizes:
        print(f"  {size:4d} games   acting {acting[size] * 1e6:7.0f} us ({acting[base] / acting[size]:.2f}x faster)"
              f"   learning {learning[size] * 1e6:7.0f} us ({learning[base] / learning[size]:.2f}x faster)")
    print(json.dumps({"preset": args.preset, "acting_us_per_frame": {s: acting[s] * 1e6 for s in sizes},
                      "learning_us_per_frame": {s: learning[s] * 1e6 for s in sizes}}))


if __name__ == "__main__":
    sys.exit(run_command(main))
