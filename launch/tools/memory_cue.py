"""MiniGrid Memory: success split by whether the cue is in view when the episode starts.

Usage::

    python -m launch.tools.memory_cue --checkpoint runs/RUN --episodes 200

In MiniGrid's Memory envs the agent starts in a small room, facing the hallway, with an
object (the cue) on the room's left wall; at the hallway's end it must step next to the
matching one of two objects. It starts on one of the room's cells at random, and only on
the leftmost one is the cue in its first view; elsewhere it must turn round to see it. A
policy that does not remember the cue succeeds in about half the episodes; one that
remembers what it saw but never looks back succeeds in all the episodes that start with
the cue in view and half the others; only a policy that looks and remembers succeeds in
all. The tool plays the checkpoint's policy (sampled actions) over ``--episodes`` games and
prints the success rate of each kind of start with its 95% interval; the last line holds
the figures as JSON.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

import numpy as np
import torch

from launch.cli import BadInput, first_paragraph, parse_options, run_command
from launch.evaluate import wilson_interval
from launch.impala.env_factory import make_single_env
from launch.impala.trained import load_trained, trained_policy


def cue_position(env) -> tuple[int, int]:
    """Where a MiniGrid Memory env puts its cue: the start room's left wall, one row above
    the hallway (``minigrid.envs.MemoryEnv``)."""
    return 1, env.unwrapped.height // 2 - 1


def play(policy, env, episodes: int, seed: int) -> list[tuple[bool, bool]]:
    """``(cue in the first view, success)`` for each of ``episodes`` games of ``env``."""
    results = []
    for episode in range(episodes):
        observation, _ = env.reset(seed=seed + episode)
        in_view = bool(env.unwrapped.in_view(*cue_position(env)))
        state = policy.initial_state(1)
        reset = torch.ones(1, dtype=torch.bool)
        previous_action = torch.zeros((1, *policy.action_shape), dtype=policy.action_dtype)
        previous_reward = torch.zeros(1)
        done, reward = False, 0.0
        while not done:
            batched = {key: np.asarray(value)[None] for key, value in observation.items()}
            output, state = policy.act(batched, previous_action, previous_reward, reset, state)
            observation, reward, terminated, truncated, _ = env.step(int(policy.to_env_action(output.action)[0]))
            done = terminated or truncated
            reset = torch.zeros(1, dtype=torch.bool)
            previous_action, previous_reward = output.action, torch.tensor([float(reward)])
        results.append((in_view, reward > 0))
    return results


def split_rates(results: list[tuple[bool, bool]]) -> dict[str, dict[str, float | int | list[float]]]:
    """Success rate and 95% interval of all episodes and of each kind of start."""
    groups = {"all": results, "cue in view": [r for r in results if r[0]],
              "cue behind": [r for r in results if not r[0]]}
    table = {}
    for name, group in groups.items():
        wins = sum(success for _, success in group)
        table[name] = {"episodes": len(group), "success": wins / len(group) if group else float("nan"),
                       "ci95": list(wilson_interval(wins, len(group))) if group else [float("nan")] * 2}
    return table


@dataclass
class MemoryCueOptions:
    """What ``python -m launch.tools.memory_cue`` plays."""

    checkpoint: str = ""
    """A run directory (its latest checkpoint) or a checkpoint file of a MiniGrid Memory run."""
    episodes: int = 200
    """Games played."""
    seed: int = 12345
    """Seed of the first game (then +1 per game) and of the policy's sampling."""

    def __post_init__(self) -> None:
        if not self.checkpoint:
            raise BadInput("--checkpoint is required")
        if self.episodes < 1:
            raise BadInput(f"--episodes must be >= 1, got {self.episodes}")


def cli(argv: list[str] | None = None) -> int:
    """``python -m launch.tools.memory_cue``."""

    def body() -> None:
        options = parse_options(MemoryCueOptions, argv, prog="python -m launch.tools.memory_cue",
                                description=first_paragraph(__doc__))
        torch.set_num_threads(1)
        config, model_state = load_trained(options.checkpoint)
        env = make_single_env(config.env, config.env_kwargs, config.wrappers, config.env_package)
        try:
            env.reset(seed=options.seed)  # a Memory env sets success_pos when it builds its grid
            if not hasattr(env.unwrapped, "success_pos") or not hasattr(env.unwrapped, "in_view"):
                raise BadInput(f"{config.env!r} is not a MiniGrid Memory env (no success_pos / in_view)")
            torch.manual_seed(options.seed)
            policy = trained_policy(config, model_state, env.observation_space, env.action_space)
            table = split_rates(play(policy, env, options.episodes, options.seed))
        finally:
            env.close()
        print(f"{config.env}, {options.checkpoint}: success by start")
        for name, row in table.items():
            print(f"  {name:12s} {row['episodes']:4d} episodes  {100 * row['success']:5.1f}% "
                  f"(95% CI {100 * row['ci95'][0]:.0f}..{100 * row['ci95'][1]:.0f}%)")
        print(json.dumps(table))

    return run_command(body)


if __name__ == "__main__":
    sys.exit(cli())
