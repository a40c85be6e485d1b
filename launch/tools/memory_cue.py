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
all. The tool plays the checkpoint's policy (sampled actions) over ``--episodes`` games with
``launch.evaluate``, the games wrapped in ``CueInView``, which reports each episode's kind of
start and its success in the step info, and prints the success rate of all episodes and of
each kind of start with its 95% interval; the last line holds the figures as JSON.
``CueAtStart``, a ``--wrappers`` entry for training, starts every episode with the cue in
view: a probe of memory without the search.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import torch

from launch.cli import BadInput, first_paragraph, parse_options, require_at_least, run_command
from launch.evaluate import evaluate
from launch.impala.env_factory import make_single_env
from launch.impala.trained import load_trained

WRAPPER = "launch.tools.memory_cue:CueInView"
"""``CueInView`` as a ``--wrappers`` entry, the form the evaluation's games are built from."""


def cue_in_view(game: Any) -> bool:
    """Whether the agent of a ``minigrid.envs.MemoryEnv`` sees the cue, which sits on the start
    room's left wall, one row above the hallway."""
    return bool(game.in_view(1, game.height // 2 - 1))


class CueInView(gym.Wrapper):
    """Reports ``cue_in_view`` (was the cue in the episode's first view) in every step's
    info, and ``success`` (a positive reward: the agent reached the matching object) on the
    episode's last step, where ``launch.evaluate`` reads both."""

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        observation, info = self.env.reset(**kwargs)
        self.cue_in_view = cue_in_view(self.env.unwrapped)
        return observation, {**info, "cue_in_view": self.cue_in_view}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        info = {**info, "cue_in_view": self.cue_in_view}
        if terminated or truncated:
            info["success"] = float(reward > 0)
        return observation, reward, terminated, truncated, info


class CueAtStart(gym.Wrapper):
    """Starts every episode with the cue in view: draws the start again (the env's own
    random generator, at most ``max_draws`` times; one in four starts qualifies) until the
    agent stands on the start room's leftmost cell. A probe of memory without the search: a
    policy that remembers the cue for the few steps to the hallway's end succeeds in every
    episode. Train with ``--wrappers launch.tools.memory_cue:CueAtStart``."""

    max_draws = 100

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        observation, info = self.env.reset(**kwargs)
        for _ in range(self.max_draws):
            if cue_in_view(self.env.unwrapped):
                return observation, info
            observation, info = self.env.reset()
        raise RuntimeError(f"no start with the cue in view in {self.max_draws} draws")


def success_by_start(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The success rate, its 95% interval and the episode count of all episodes and of each
    kind of start, from ``evaluate``'s summary grouped by ``cue_in_view``."""
    groups = {"all": summary, **{"cue in view" if group["value"] else "cue behind": group
                                 for group in summary["groups"]}}
    none = {"episodes": 0, "success_rate": float("nan"), "success_ci95": [float("nan")] * 2}  # a kind not played
    return {name: {"episodes": group["episodes"], "success": group["success_rate"], "ci95": group["success_ci95"]}
            for name in ("all", "cue in view", "cue behind") for group in [groups.get(name, none)]}


@dataclass
class MemoryCueOptions:
    """What ``python -m launch.tools.memory_cue`` plays."""

    checkpoint: str = ""
    """A run directory (its latest checkpoint) or a checkpoint file of a MiniGrid Memory run."""
    episodes: int = 200
    """Games played."""
    num_envs: int = 8
    """Games stepped together."""
    seed: int = 12345
    """Seed of the games and of the policy's sampling (as launch.evaluate's)."""

    def __post_init__(self) -> None:
        if not self.checkpoint:
            raise BadInput("--checkpoint is required")
        require_at_least(self, episodes=1, num_envs=1)


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
        finally:
            env.close()
        wrapped = dataclasses.replace(config, wrappers=[*config.wrappers, WRAPPER])
        table = success_by_start(evaluate(wrapped, model_state, options.episodes, options.num_envs, False,
                                          options.seed, group_by="cue_in_view"))
        print(f"{config.env}, {options.checkpoint}: success by start")
        for name, row in table.items():
            print(f"  {name:12s} {row['episodes']:4d} episodes  {100 * row['success']:5.1f}% "
                  f"(95% CI {100 * row['ci95'][0]:.0f}..{100 * row['ci95'][1]:.0f}%)")
        print(json.dumps(table))

    return run_command(body)


if __name__ == "__main__":
    sys.exit(cli())
