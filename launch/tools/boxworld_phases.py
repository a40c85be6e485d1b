"""Where a Box-World policy spends its steps: the phases of its episodes, by solution length.

Usage::

    python -m launch.tools.boxworld_phases --checkpoint runs/RUN --episodes 300 --seed 1000
    python -m launch.tools.boxworld_phases --checkpoint runs/RUN --env-kwargs '{"room_size": 7, "solution_length": 2, "num_distractors": 0}'

Plays episodes exactly as ``launch.evaluate`` does (same seeds, same episodes) and reads
the events the Box-World envs report in their step info (``key_picked``,
``correct_lock_opened``, ``distractor_lock_opened``, ``steps``). For each solution length
it prints the success rate, the share of episodes in which no key was ever picked up, the
steps taken to the first key, and the steps from picking up a key to opening the lock it
fits; for scale, the length of the shortest solution of 500 levels drawn from the same
level generator (``envs.boxworld_solver``). A policy that fails by timing out with the rule understood (reaches every key, just
slowly) looks different here from one that never finds the first key, and both from one
that opens distractor boxes. Last line: the figures as JSON.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch

from envs.boxworld_levels import BoxWorldLevelConfig, generate_levels
from envs.boxworld_solver import solve_level
from launch.cli import REQUIRED, first_paragraph, parse_options, run_command
from launch.evaluate import evaluate
from launch.impala.config import ConfigError, TrainConfig
from launch.impala.env_factory import make_vector_env
from launch.impala.trained import load_trained

REQUIRED_INFO = ("steps", "solution_length", "key_picked", "correct_lock_opened", "distractor_lock_opened")
"""Step-info keys of the Box-World envs this tool reads."""


class EpisodePhases(NamedTuple):
    """One finished episode: its level, outcome, and ``(kind, step)`` events in order.

    ``kind`` is ``"key"`` (a key picked up), ``"lock"`` (a correct lock opened) or
    ``"distractor"`` (a distractor lock opened); ``step`` counts the episode's actions, 1 first.
    """

    solution_length: int
    success: bool
    length: int
    events: tuple[tuple[str, int], ...]


class PhaseRecorder:
    """An ``evaluate`` step hook that records every counted episode's key and lock events."""

    def __init__(self, num_envs: int) -> None:
        self._events: list[list[tuple[str, int]]] = [[] for _ in range(num_envs)]
        self.episodes: list[EpisodePhases] = []

    def __call__(self, info: dict[str, Any], ended: np.ndarray, counted: np.ndarray) -> None:
        missing = [key for key in REQUIRED_INFO if key not in info]
        if missing:
            raise ConfigError(f"not a Box-World env: its step info lacks {missing} "
                              f"(it reports {sorted(key for key in info if not key.startswith('_'))})")
        steps = info["steps"]
        for kind, key in (("key", "key_picked"), ("lock", "correct_lock_opened"),
                          ("distractor", "distractor_lock_opened")):
            for game in np.flatnonzero(info[key]):
                self._events[game].append((kind, int(steps[game])))
        success = info.get("success", np.zeros(len(ended), dtype=bool))
        for game in np.flatnonzero(ended):
            if counted[game]:
                self.episodes.append(EpisodePhases(int(info["solution_length"][game]), bool(success[game]),
                                                   int(steps[game]), tuple(self._events[game])))
            self._events[game] = []


def quartiles(values: list[int]) -> list[float] | None:
    """25th, 50th and 75th percentiles, or None without values."""
    return np.percentile(values, [25, 50, 75]).tolist() if values else None


def phase_summary(episodes: list[EpisodePhases]) -> dict[str, Any]:
    """Success, no-key share, steps to the first key and from each key to the next correct lock."""
    to_first_key = [next(step for kind, step in episode.events if kind == "key")
                    for episode in episodes if any(kind == "key" for kind, _ in episode.events)]
    key_to_lock = []
    for episode in episodes:
        for (kind, step), (next_kind, next_step) in zip(episode.events, episode.events[1:]):
            if kind == "key" and next_kind == "lock":
                key_to_lock.append(next_step - step)
    solved = [episode.length for episode in episodes if episode.success]
    return {
        "episodes": len(episodes),
        "success_rate": float(np.mean([episode.success for episode in episodes])),
        "no_key_rate": 1.0 - len(to_first_key) / len(episodes),
        "distractor_rate": float(np.mean([any(kind == "distractor" for kind, _ in episode.events)
                                          for episode in episodes])),
        "steps_to_first_key": quartiles(to_first_key),
        "steps_key_to_lock": quartiles(key_to_lock),
        "solved_length_mean": float(np.mean(solved)) if solved else None,
    }


def phases_by_solution_length(episodes: list[EpisodePhases]) -> dict[str, dict[str, Any]]:
    """``phase_summary`` of all episodes (``"all"``) and of each solution length."""
    result = {"all": phase_summary(episodes)}
    for length in sorted({episode.solution_length for episode in episodes}):
        result[str(length)] = phase_summary([episode for episode in episodes if episode.solution_length == length])
    return result


def shortest_solution_lengths(level_config: BoxWorldLevelConfig, count: int = 500,
                              seed: int = 0) -> dict[str, list[float] | None]:
    """Quartiles of the shortest solution's length (actions, gem included) of ``count``
    levels drawn from ``level_config``: over all (``"all"``) and per solution length."""
    keys = np.random.default_rng(seed).integers(1, 2**63, size=count, dtype=np.uint64)
    levels = generate_levels(level_config, keys)
    lengths: dict[int, list[int]] = {}
    for index in range(count):
        solution = solve_level(levels, index)
        assert solution is not None, "the level generator only makes solvable levels"
        lengths.setdefault(int(levels.solution_length[index]), []).append(len(solution.actions))
    result = {"all": quartiles([length for group in lengths.values() for length in group])}
    result.update({str(key): quartiles(value) for key, value in sorted(lengths.items())})
    return result


def level_config_of(config: TrainConfig) -> BoxWorldLevelConfig:
    """The level parameters of the config's env.

    Raises:
        ConfigError: the env is not a Box-World env.
    """
    env = make_vector_env(config.env, 1, config.env_kwargs, config.wrappers, config.env_package)
    try:
        level_config = getattr(env.unwrapped, "config", None)
    finally:
        env.close()
    if not isinstance(level_config, BoxWorldLevelConfig):
        raise ConfigError(f"not a Box-World env: {config.env!r}")
    return level_config


def _spread(values: list[float] | None) -> str:
    if values is None:
        return "-"
    low, median, high = values
    return f"{median:g} ({low:g}..{high:g})"


@dataclass
class BoxWorldPhasesOptions:
    """What ``python -m launch.tools.boxworld_phases`` plays."""

    checkpoint: str = field(default="", metadata={**REQUIRED, "metavar": "PATH"})
    """A Box-World checkpoint file, or a run directory (its latest checkpoint)."""
    best: bool = False
    """With a run directory: its best policy (checkpoints/best.pt)."""
    env_kwargs: dict[str, Any] | None = None
    """Env kwargs as a JSON object, instead of the checkpoint's."""
    episodes: int = 300
    """Episodes to play."""
    num_envs: int = 8
    """Games stepped together."""
    deterministic: bool = False
    """Take the most likely action instead of sampling."""
    seed: int = 12345
    """Seed of the games."""
    threads: int = 1
    """Torch CPU threads."""

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {self.threads}")


def cli(argv: list[str] | None = None) -> int:
    """``python -m launch.tools.boxworld_phases``."""

    def body() -> None:
        options = parse_options(BoxWorldPhasesOptions, argv, prog="python -m launch.tools.boxworld_phases",
                                description=first_paragraph(__doc__))
        torch.set_num_threads(options.threads)
        config, model_state = load_trained(options.checkpoint, env_kwargs=options.env_kwargs, best=options.best)
        shortest = shortest_solution_lengths(level_config_of(config), seed=options.seed)
        recorder = PhaseRecorder(max(1, min(options.num_envs, options.episodes)))
        evaluate(config, model_state, options.episodes, options.num_envs, options.deterministic, options.seed,
                 step_hook=recorder)
        result = phases_by_solution_length(recorder.episodes)
        for name, summary in result.items():
            summary["shortest_solution"] = shortest.get(name)
        print(f"{config.env}: {len(recorder.episodes)} episodes; steps as median (25th..75th percentile)")
        print(f"{'boxes':>5} {'episodes':>8} {'success':>8} {'no key':>7} {'distractor':>10} "
              f"{'to first key':>16} {'key to its lock':>16} {'shortest solution':>18}")
        for name, summary in result.items():
            print(f"{name:>5} {summary['episodes']:>8} {100 * summary['success_rate']:>7.1f}% "
                  f"{100 * summary['no_key_rate']:>6.1f}% {100 * summary['distractor_rate']:>9.1f}% "
                  f"{_spread(summary['steps_to_first_key']):>16} {_spread(summary['steps_key_to_lock']):>16} "
                  f"{_spread(summary['shortest_solution']):>18}")
        print(json.dumps({"env": config.env, "policy": str(options.checkpoint), "best": options.best,
                          "seed": options.seed, "deterministic": options.deterministic, "by_solution_length": result}))

    return run_command(body)


if __name__ == "__main__":
    sys.exit(cli())
