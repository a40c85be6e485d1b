"""Evaluate a checkpoint (or a uniformly random policy) over N full episodes.

Usage::

    python -m launch.evaluate --checkpoint runs/RUN/checkpoints/checkpoint_000001000000.pt --episodes 100
    python -m launch.evaluate --checkpoint runs/RUN --episodes 100 --deterministic --seed 1
    python -m launch.evaluate --random --env rmc/MiniPacman-v0 --episodes 100   # the random baseline
    python -m launch.evaluate --checkpoint runs/RUN --episodes 500 --by solution_length   # per level kind

The recurrent core state is carried through each episode and reset at its first step, as
in training. Episodes are spread evenly over the games stepped together and each game
plays a fixed quota, so short episodes are not over-counted. Prints a summary and, last,
one JSON line: mean return, its standard deviation and normal-approximation 95%
confidence interval, and the success rate with its Wilson 95% interval (when the env
reports ``success``). ``--by KEY`` adds the same figures for each value the env's step info
reports under ``KEY`` at an episode's end (Box-World: ``solution_length``,
``num_distractors``), to see which levels a policy fails.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from launch.cli import first_paragraph, parse_options, run_command
from launch.impala.config import ConfigError, TrainConfig
from launch.impala.env_factory import episode_stats, make_vector_env
from launch.impala.trained import load_trained, trained_policy

Z_95 = 1.959963984540054

StepHook = Callable[[dict[str, Any], np.ndarray, np.ndarray], None]
"""Called after every env step of ``evaluate`` with the step's info, the games whose
episode ended at that step, and those among them whose episode counts toward the result
(a game that has played its quota keeps playing, uncounted, until the others finish)."""


def wilson_interval(successes: float, count: int) -> tuple[float, float]:
    """95% Wilson score interval of a success rate."""
    if count == 0:
        return (math.nan, math.nan)
    rate = successes / count
    denominator = 1 + Z_95**2 / count
    centre = (rate + Z_95**2 / (2 * count)) / denominator
    half = Z_95 * math.sqrt(rate * (1 - rate) / count + Z_95**2 / (4 * count**2)) / denominator
    low = 0.0 if successes == 0 else max(0.0, min(rate, centre - half))  # exact at the ends
    high = 1.0 if successes == count else min(1.0, max(rate, centre + half))
    return (low, high)


def summarise(returns: list[float], lengths: list[int], successes: list[float],
              truncations: list[bool] | None = None) -> dict[str, Any]:
    """Mean return with a 95% CI, mean length, success rate with a Wilson 95% CI, and the
    share of episodes cut by truncation (the step limit) rather than ended by the game."""
    values = np.asarray(returns, dtype=np.float64)
    count = len(values)
    std = float(values.std(ddof=1)) if count > 1 else 0.0
    half = Z_95 * std / math.sqrt(count) if count > 1 else math.nan
    summary: dict[str, Any] = {
        "episodes": count,
        "mean_return": float(values.mean()),
        "std_return": std,
        "return_ci95": [float(values.mean() - half), float(values.mean() + half)],
        "mean_length": float(np.mean(lengths)),
        "success_rate": None,
        "success_ci95": None,
        "truncated_rate": float(np.mean(truncations)) if truncations else None,
    }
    if successes:
        summary["success_rate"] = float(np.mean(successes))
        summary["success_ci95"] = list(wilson_interval(float(np.sum(successes)), len(successes)))
    return summary


def ended_episode_value(info: dict[str, Any], key: str, index: int) -> Any:
    """The value the env reported under ``info[key]`` for game ``index`` on its episode's last step.

    Raises:
        ConfigError: the env does not report ``key`` for that game.
    """
    mask = info.get(f"_{key}")
    if key not in info or (mask is not None and not mask[index]):
        reported = sorted(name for name in info if not name.startswith("_"))
        raise ConfigError(f"--by {key!r}: the env's step info has no {key!r} at the end of an episode "
                          f"(it reports {reported})")
    value = info[key][index]
    if isinstance(value, np.ndarray):
        return tuple(value.tolist())
    return value.item() if isinstance(value, np.generic) else value


def grouped_summaries(key: str, values: list[Any], returns: list[float], lengths: list[int],
                      successes: list[float | None], truncations: list[bool]) -> list[dict[str, Any]]:
    """``summarise`` of the episodes of each distinct ``values`` entry, in sorted order, each
    with ``key`` and ``value`` added."""
    groups = []
    for value in sorted(set(values), key=lambda item: (str(type(item)), item)):
        chosen = [i for i, item in enumerate(values) if item == value]
        group_successes = [successes[i] for i in chosen if successes[i] is not None]
        summary = summarise([returns[i] for i in chosen], [lengths[i] for i in chosen],
                            group_successes, [truncations[i] for i in chosen])
        groups.append({"key": key, "value": value, **summary})
    return groups


def evaluate(config: TrainConfig, model_state: dict[str, torch.Tensor] | None, episodes: int, num_envs: int = 8,
             deterministic: bool = False, seed: int = 0, group_by: str | None = None,
             step_hook: StepHook | None = None) -> dict[str, Any]:
    """Play ``episodes`` episodes with the policy of ``model_state`` (None: uniform random).

    Args:
        group_by: also summarise the episodes by the value of this key of the env's step
            info on each episode's last step (e.g. Box-World's ``solution_length``).
        step_hook: called after every step (see ``StepHook``), for statistics of
            the episodes' insides.

    Returns:
        ``summarise``'s dict plus the per-episode ``returns`` and, with ``group_by``,
        ``groups``: one ``summarise`` dict per value (``grouped_summaries``).

    Raises:
        ConfigError: ``episodes < 1``, or the env does not report ``group_by``.
    """
    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}")
    num_envs = max(1, min(num_envs, episodes))
    quota = np.full(num_envs, episodes // num_envs)
    quota[: episodes % num_envs] += 1
    env = make_vector_env(config.env, num_envs, config.env_kwargs, config.wrappers, config.env_package)
    torch.manual_seed(seed)
    env.action_space.seed(seed)
    policy = None
    if model_state is not None:
        try:
            policy = trained_policy(config, model_state, env.single_observation_space, env.single_action_space)
        except BaseException:
            env.close()
            raise
    returns: list[float] = []
    lengths: list[int] = []
    truncations: list[bool] = []
    successes: list[float | None] = []  # None where the env reports no success flag
    group_values: list[Any] = []
    done_count = np.zeros(num_envs, dtype=np.int64)
    observation, _ = env.reset(seed=seed)
    if policy is not None:
        state = policy.initial_state(num_envs)
        reset = torch.ones(num_envs, dtype=torch.bool)
        previous_action = torch.zeros((num_envs, *policy.action_shape), dtype=policy.action_dtype)
        previous_reward = torch.zeros(num_envs)
    autoreset_next = np.zeros(num_envs, dtype=bool)
    try:
        while (done_count < quota).any():
            if policy is None:
                env_action = env.action_space.sample()
            else:
                output, state = policy.act(observation, previous_action, previous_reward, reset, state,
                                           deterministic=deterministic)
                env_action = policy.to_env_action(output.action)
            observation, reward, terminated, truncated, info = env.step(env_action)
            ended = info.get("_episode", np.zeros(num_envs, dtype=bool))
            counted = np.zeros(num_envs, dtype=bool)
            for index, episode in zip(ended.nonzero()[0], episode_stats(info)):
                if done_count[index] < quota[index]:
                    counted[index] = True
                    done_count[index] += 1
                    returns.append(episode.return_)
                    lengths.append(episode.length)
                    truncations.append(bool(truncated[index] and not terminated[index]))
                    successes.append(episode.success)
                    if group_by is not None:
                        group_values.append(ended_episode_value(info, group_by, int(index)))
            if step_hook is not None:
                step_hook(info, ended, counted)
            if policy is not None:
                reset = torch.from_numpy(autoreset_next.copy())
                keep = ~reset
                previous_action = output.action * keep.view((-1,) + (1,) * len(policy.action_shape)).to(
                    output.action.dtype)
                previous_reward = torch.as_tensor(reward, dtype=torch.float32) * keep
            autoreset_next = np.logical_or(terminated, truncated)
    finally:
        env.close()
    summary = summarise(returns, lengths, [value for value in successes if value is not None], truncations)
    summary["returns"] = returns
    if group_by is not None:
        summary["groups"] = grouped_summaries(group_by, group_values, returns, lengths, successes, truncations)
    return summary


@dataclass
class EvaluateOptions:
    """What ``python -m launch.evaluate`` plays and how."""

    checkpoint: str | None = None
    """A checkpoint file, or a run directory (its latest checkpoint)."""
    random: bool = False
    """Play a uniformly random policy instead of a checkpoint (needs --env): the baseline."""
    best: bool = False
    """With a run directory: its best policy (checkpoints/best.pt, chosen by the mean training
    success or return of its best_window_episodes) instead of its latest checkpoint."""
    env: str | None = None
    """Env id to play instead of the checkpoint's (its spaces must match); required with --random."""
    env_kwargs: dict[str, Any] | None = None
    """Env kwargs as a JSON object, instead of the checkpoint's."""
    env_package: list[str] = field(default_factory=list)
    """Module to import that registers the env (repeat for several)."""
    episodes: int = 100
    """Episodes to play."""
    num_envs: int = 8
    """Games stepped together."""
    deterministic: bool = False
    """Take the most likely action instead of sampling."""
    seed: int = 12345
    """Seed of the evaluation games."""
    by: str | None = None
    """Also report the episodes grouped by this key of the env's step info at each episode's
    end (Box-World: solution_length, num_distractors)."""
    threads: int = 1
    """Torch CPU threads (small batches run slower with more on a busy machine)."""

    def __post_init__(self) -> None:
        if (self.checkpoint is None) == (not self.random):
            raise ConfigError("give exactly one of --checkpoint PATH and --random")
        if self.random and self.env is None:
            raise ConfigError("--random needs --env ID")
        if self.best and self.random:
            raise ConfigError("--best reads a run directory's best checkpoint; it cannot be combined with --random")
        for name in ("episodes", "num_envs", "threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")


def run(options: EvaluateOptions) -> dict[str, Any]:
    """Evaluates the policy ``options`` name and prints the summary; returns it."""
    torch.set_num_threads(options.threads)
    model_state = None
    if options.random:
        config = TrainConfig(env=options.env)
        if options.env_kwargs is not None:
            config.env_kwargs = options.env_kwargs
        config.env_package = list(options.env_package)
    else:
        config, model_state = load_trained(options.checkpoint, options.env, options.env_kwargs, options.env_package,
                                          options.best)
    summary = evaluate(config, model_state, options.episodes, options.num_envs, options.deterministic, options.seed,
                       options.by)
    low, high = summary["return_ci95"]
    print(f"{config.env}: {summary['episodes']} episodes, mean return {summary['mean_return']:.3f} "
          f"(95% CI {low:.3f} .. {high:.3f}, std {summary['std_return']:.3f}), mean length {summary['mean_length']:.1f}")
    if summary["success_rate"] is not None:
        low, high = summary["success_ci95"]
        print(f"success rate {100 * summary['success_rate']:.1f}% (95% CI {100 * low:.1f}% .. {100 * high:.1f}%)")
    print(f"cut at the step limit (truncated, not ended by the game): {100 * summary['truncated_rate']:.1f}% of episodes")
    for group in summary.get("groups", []):
        line = (f"  {group['key']}={group['value']}: {group['episodes']} episodes, mean return "
                f"{group['mean_return']:.3f}, mean length {group['mean_length']:.1f}")
        if group["success_rate"] is not None:
            low, high = group["success_ci95"]
            line += f", success {100 * group['success_rate']:.1f}% ({100 * low:.1f}% .. {100 * high:.1f}%)"
        print(line)
    summary.pop("returns")
    print(json.dumps({"env": config.env, "policy": "random" if options.random else str(options.checkpoint),
                      "best": options.best,
                      "deterministic": options.deterministic, "seed": options.seed, **summary}))
    return summary


def cli(argv: list[str] | None = None) -> int:
    """``python -m launch.evaluate`` / ``rmc-evaluate``."""
    def body() -> None:
        run(parse_options(EvaluateOptions, argv, prog="python -m launch.evaluate",
                          description=first_paragraph(__doc__)))

    return run_command(body)


if __name__ == "__main__":
    sys.exit(cli())
