"""Actor-critic cost per core on Box-World observations, as ratios to the LSTM policy.

Builds ``agents.ActorCritic`` for ``rmc/BoxWorld-v0``'s spaces (14x14x3 pixels, 4 actions)
with each core setting and times, in one run:

- acting: ``policy.act`` for a batch of games (one step, no gradient);
- learning: ``impala_loss`` over a ``T x B`` unroll plus its backward pass;
- acting inside ``torch.inference_mode()`` (as the actors act), against plain ``act``
  (``no_grad``) of the same policy.

The LSTM policy (``lstm_256``) is the yardstick; every figure is printed with its ratio to it.

    python benchmarks/policy_speed.py [--seconds 2.0] [--act-batch 32] [--unroll 20] [--batch 8] [--threads 1]
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from agents import ActorCritic
from agents.loss import LossConfig, impala_loss
from agents.trajectory import Trajectory
from launch.cli import first_paragraph, parse_options

SETTINGS = {  # name -> (core, core_kwargs)
    "lstm_256": ("lstm", "lstm_256"),
    "none": ("none", None),
    "rmc_small": ("rmc", "rmc_small"),
    "rmc_boxworld_paper": ("rmc", "rmc_boxworld_paper"),
}
OBSERVATION_SPACE = gym.spaces.Box(0, 255, (14, 14, 3), np.uint8)  # rmc/BoxWorld-v0
ACTION_SPACE = gym.spaces.Discrete(4)


def calls_per_second(function: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``function`` over about ``seconds`` (after one warm-up call)."""
    function()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        function()
        calls += 1
    return calls / (time.perf_counter() - start)


def random_trajectory(steps: int, batch_size: int) -> Trajectory:
    generator = torch.Generator().manual_seed(0)
    reset = torch.zeros(steps + 1, batch_size, dtype=torch.bool)
    reset[0] = True
    return Trajectory(
        obs=torch.randint(0, 256, (steps + 1, batch_size, 14, 14, 3), generator=generator, dtype=torch.uint8),
        reset=reset,
        previous_action=torch.randint(0, 4, (steps + 1, batch_size), generator=generator),
        previous_reward=torch.zeros(steps + 1, batch_size),
        action=torch.randint(0, 4, (steps, batch_size), generator=generator),
        behaviour_log_prob=torch.full((steps, batch_size), -np.log(4.0)),
        reward=torch.randn(steps, batch_size, generator=generator),
        terminated=torch.zeros(steps, batch_size, dtype=torch.bool),
        truncated=torch.zeros(steps, batch_size, dtype=torch.bool),
    )


def measure(name: str, args: PolicySpeedOptions) -> dict[str, float]:
    core, core_kwargs = SETTINGS[name]
    torch.manual_seed(0)
    policy = ActorCritic(OBSERVATION_SPACE, ACTION_SPACE, core=core, core_kwargs=core_kwargs)
    obs = torch.randint(0, 256, (args.act_batch, 14, 14, 3), dtype=torch.uint8)
    zeros = torch.zeros(args.act_batch, dtype=torch.long)
    rewards = torch.zeros(args.act_batch)
    reset = torch.zeros(args.act_batch, dtype=torch.bool)
    state = policy.initial_state(args.act_batch)
    act_rate = calls_per_second(lambda: policy.act(obs, zeros, rewards, reset, state), args.seconds)

    def act_in_inference_mode() -> None:
        with torch.inference_mode():  # as the actors' Rollout.unroll runs
            policy.act(obs, zeros, rewards, reset, state)

    inference_rate = calls_per_second(act_in_inference_mode, args.seconds)

    trajectory = random_trajectory(args.unroll, args.batch)
    initial_state = policy.initial_state(args.batch)

    def learn() -> None:
        policy.zero_grad()
        impala_loss(policy, trajectory, initial_state, LossConfig()).total.backward()

    learn_rate = calls_per_second(learn, args.seconds)
    return {
        "parameters": sum(p.numel() for p in policy.parameters()),
        "act_frames_per_s": act_rate * args.act_batch,
        "inference_mode_act_ratio": inference_rate / act_rate,
        "learn_frames_per_s": learn_rate * args.unroll * args.batch,
    }


@dataclass
class PolicySpeedOptions:
    """What ``benchmarks/policy_speed.py`` measures."""

    seconds: float = 2.0
    """Timing window per measurement."""
    act_batch: int = 32
    """Games per act() call."""
    unroll: int = 20
    """T of the learner's unroll."""
    batch: int = 8
    """B of the learner's unroll."""
    threads: int = 1
    """Torch intra-op threads."""


def main() -> None:
    args = parse_options(PolicySpeedOptions, None, prog="benchmarks/policy_speed.py",
                         description=first_paragraph(__doc__))
    torch.set_num_threads(args.threads)
    results = {name: measure(name, args) for name in SETTINGS}
    yardstick = results["lstm_256"]
    for name, figures in results.items():
        figures["act_ratio_to_lstm"] = figures["act_frames_per_s"] / yardstick["act_frames_per_s"]
        figures["learn_ratio_to_lstm"] = figures["learn_frames_per_s"] / yardstick["learn_frames_per_s"]
        print(f"{name:>20}: {figures['parameters']:>9,d} params | act {figures['act_frames_per_s']:>9.0f} frames/s "
              f"({figures['act_ratio_to_lstm']:.2f}x lstm) | learn {figures['learn_frames_per_s']:>8.0f} frames/s "
              f"({figures['learn_ratio_to_lstm']:.2f}x lstm) | act in inference mode "
              f"{figures['inference_mode_act_ratio']:.2f}x no_grad")
    print(json.dumps({"torch_threads": torch.get_num_threads(), **dataclasses.asdict(args), "results": results}))


if __name__ == "__main__":
    main()
