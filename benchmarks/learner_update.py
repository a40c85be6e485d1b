"""The learner's update, compiled against eager, on one stored batch: steps/s and operations.

Builds a preset's policy and two learners with the same weights, one with the gradient steps
compiled (``--compile-update on``: the unroll, V-trace, the loss, its backward, the clip and
the optimiser's step as compiled graphs, CUDA graphs on a GPU) and one eager (the yardstick),
and in one run:

1. times the compiled learner's first update (the compile);
2. alternates rounds of updates of the two on the same random batch of the preset's shape
   and prints each one's environment steps per second and the ratio (target >= 1.5x);
3. counts the ATen operations one update dispatches (a profiler count of the operations
   called from outside another operation) and prints the ratio (target >= 10x fewer).

    python benchmarks/learner_update.py [--preset boxworld-rmc] [--device cpu] [--threads 1]

The compile of the Box-World RMC's unroll takes minutes on a CPU the first time (7 on a
2-core VM); the inductor's cache makes later runs start in seconds.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

import envs  # noqa: F401  (registers the rmc/ environments)
from agents.spaces import map_leaves
from agents.trajectory import Trajectory
from launch.cli import BadInput, first_paragraph, parse_options, run_command
from launch.impala.config import PRESETS, config_from_preset
from launch.impala.learner import Learner
from launch.impala.policy_factory import build_policy


@dataclass
class LearnerUpdateOptions:
    """What ``benchmarks/learner_update.py`` measures."""

    preset: str = "boxworld-rmc"
    """The launch.train preset whose policy, unroll and batch are timed."""
    device: Literal["cpu", "cuda"] = "cpu"
    """Where the learners run."""
    threads: int = 1
    """CPU threads of torch (a learner beside actors on a 2-core machine has one)."""
    rounds: int = 3
    """Alternating rounds of eager and compiled updates."""
    seconds: float = 10.0
    """Seconds of updates per learner per round."""

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise BadInput(f"--preset must be one of {sorted(PRESETS)}, got {self.preset!r}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise BadInput("--device cuda: no CUDA device is available")
        for name in ("threads", "rounds"):
            if getattr(self, name) < 1:
                raise BadInput(f"--{name} must be >= 1, got {getattr(self, name)}")


def random_batch(observation_space: gym.Space, action_space: gym.Space, steps: int, batch_size: int,
                 device: torch.device) -> Trajectory:
    """A batch of the shape a learner takes, with observations and actions drawn from the spaces."""
    observation_space.seed(0)
    action_space.seed(0)
    generator = torch.Generator().manual_seed(0)
    obs = np.stack([observation_space.sample() for _ in range((steps + 1) * batch_size)])
    action = np.stack([action_space.sample() for _ in range((steps + 1) * batch_size)])
    reset = torch.zeros(steps + 1, batch_size, dtype=torch.bool)
    reset[0] = True
    terminated = torch.zeros(steps, batch_size, dtype=torch.bool)
    terminated[steps // 2, : batch_size // 4] = True  # a few episodes end inside the unroll
    reset[steps // 2 + 1, : batch_size // 4] = True
    previous_action = torch.as_tensor(action).reshape(steps + 1, batch_size, *np.shape(action[0]))
    reward = torch.randn(steps + 1, batch_size, generator=generator)
    batch = Trajectory(
        obs=torch.as_tensor(obs).reshape(steps + 1, batch_size, *observation_space.shape), reset=reset,
        previous_action=previous_action, previous_reward=reward, action=previous_action[1:],
        behaviour_log_prob=-torch.rand(steps, batch_size, generator=generator), reward=reward[1:],
        terminated=terminated, truncated=torch.zeros_like(terminated),
    )
    return map_leaves(lambda leaf: leaf.to(device), batch)


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def updates_per_second(learner: Learner, batch: Trajectory, state: tuple[torch.Tensor, ...], seconds: float) -> float:
    device = batch.reset.device
    synchronise(device)
    updates, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or updates < 2:
        learner.update(batch, state)
        updates += 1
    synchronise(device)
    return updates / (time.perf_counter() - start)


def dispatched_operations(learner: Learner, batch: Trajectory, state: tuple[torch.Tensor, ...]) -> tuple[int, int]:
    """(operations called from outside another ATen operation, all ATen operations) of one update."""
    activities = [ProfilerActivity.CPU]
    with profile(activities=activities) as profiler:
        learner.update(batch, state)
        synchronise(batch.reset.device)
    events = [event for event in profiler.events() if event.name.startswith("aten::")]
    outermost = [event for event in events
                 if event.cpu_parent is None or not event.cpu_parent.name.startswith("aten::")]
    return len(outermost), len(events)


def main() -> None:
    args = parse_options(LearnerUpdateOptions, None, prog="benchmarks/learner_update.py",
                         description=first_paragraph(__doc__))
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    learners = {}
    for mode in ("off", "on"):
        config = config_from_preset(args.preset, compile_update=mode, device=args.device, lr_schedule="constant")
        env = gym.make(config.env)
        torch.manual_seed(0)
        policy = build_policy(config, env.observation_space, env.action_space).to(device)
        learners["eager" if mode == "off" else "compiled"] = Learner(policy, config)
    steps, batch_size = config.unroll_length, config.batch_size
    batch = random_batch(env.observation_space, env.action_space, steps, batch_size, device)
    state = tuple(learners["eager"].policy.initial_state(batch_size, device=device))
    print(f"{args.preset}: unroll {steps} x batch {batch_size}, {config.num_epochs} gradient step(s) per update, "
          f"on {device} ({torch.get_num_threads()} threads), torch {torch.__version__}")
    start = time.perf_counter()
    learners["compiled"].update(batch, state)
    synchronise(device)
    compile_s = time.perf_counter() - start
    print(f"compiled learner's first update (the compile): {compile_s:.1f} s")
    learners["compiled"].update(batch, state)  # CUDA graphs record on the first replays
    rates: dict[str, list[float]] = {"eager": [], "compiled": []}
    for _ in range(args.rounds):
        for name, learner in learners.items():
            rates[name].append(updates_per_second(learner, batch, state, args.seconds) * steps * batch_size)
    eager, compiled = (statistics.median(rates[name]) for name in ("eager", "compiled"))
    for name, values in rates.items():
        print(f"{name:9s} {statistics.median(values):9,.0f} steps/s (rounds: {', '.join(f'{v:,.0f}' for v in values)})")
    print(f"compiled / eager = {compiled / eager:.2f}x (target >= 1.5x)")
    operations = {name: dispatched_operations(learner, batch, state) for name, learner in learners.items()}
    for name, (outermost, every) in operations.items():
        print(f"{name:9s} {outermost:7,d} operations dispatched per update ({every:,d} ATen operations in all)")
    ratio = operations["eager"][0] / operations["compiled"][0]
    print(f"eager / compiled operations = {ratio:.1f}x (target >= 10x)")
    print(json.dumps({"preset": args.preset, "device": str(device), "threads": torch.get_num_threads(),
                      "compile_s": compile_s, "eager_steps_per_s": eager, "compiled_steps_per_s": compiled,
                      "speedup": compiled / eager, "eager_operations": operations["eager"][0],
                      "compiled_operations": operations["compiled"][0], "operations_ratio": ratio}))


if __name__ == "__main__":
    sys.exit(run_command(main))
