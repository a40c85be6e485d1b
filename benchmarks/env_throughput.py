"""Environment throughput: our games' single and vector envs against Farama Minigrid.

Prints, in one run, steps per second of each game's single env (through ``gymnasium.make``,
with Gymnasium's default wrappers, like the yardstick), each game's batch-native vector env
at several batch sizes (game steps per second = calls * N), and Farama Minigrid's
``MiniGrid-Empty-8x8-v0`` single env as the yardstick, with ratios against it.

Targets on a 2-core machine: single env >= 5x Minigrid; vector env >= 1,000,000 game
steps/s at N = 4096 for each game.

    python benchmarks/env_throughput.py [--seconds 2.0] [--num-envs 1 64 1024 4096]
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  (registers the rmc/ ids)
from launch.cli import MANY, first_paragraph, parse_options

GAME_IDS = ("rmc/MiniPacman-v0", "rmc/BoxWorld-v0")
YARDSTICK_ID = "MiniGrid-Empty-8x8-v0"


def single_env_rate(env_id: str, seconds: float, seed: int = 0) -> float:
    """Steps per second of one env with uniformly random actions, resets included."""
    env = gym.make(env_id)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(4096)]
    steps = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for action in actions:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
        steps += len(actions)
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


def vector_env_rate(env_id: str, num_envs: int, seconds: float, seed: int = 0) -> float:
    """Game steps per second (calls x num_envs) of the batch-native vector env."""
    vector_env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")
    vector_env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    num_actions = int(vector_env.single_action_space.n)
    action_batches = [rng.integers(0, num_actions, size=num_envs) for _ in range(64)]
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for actions in action_batches:
            vector_env.step(actions)
        calls += len(action_batches)
        if num_envs * calls > 50_000_000:
            break
    rate = calls * num_envs / (time.perf_counter() - start)
    vector_env.close()
    return rate


def main(seconds: float, batch_sizes: Sequence[int], json_path: str | None) -> dict[str, float]:
    """Runs every measurement and prints a table; returns the figures by name."""
    try:
        import minigrid  # noqa: F401  (registers MiniGrid ids)
    except ImportError as error:
        raise SystemExit("the yardstick needs Farama Minigrid: pip install minigrid") from error

    results: dict[str, float] = {}
    yardstick = single_env_rate(YARDSTICK_ID, seconds)
    results[f"{YARDSTICK_ID} single"] = yardstick
    print(f"{YARDSTICK_ID:<28} single            {yardstick:>14,.0f} steps/s   (yardstick)")
    for env_id in GAME_IDS:
        rate = single_env_rate(env_id, seconds)
        results[f"{env_id} single"] = rate
        verdict = "meets" if rate >= 5 * yardstick else "MISSES"
        print(f"{env_id:<28} single            {rate:>14,.0f} steps/s   {rate / yardstick:6.1f}x yardstick ({verdict} 5x)")
        for num_envs in batch_sizes:
            rate = vector_env_rate(env_id, num_envs, seconds)
            results[f"{env_id} vector N={num_envs}"] = rate
            note = ""
            if num_envs == 4096:
                note = f"   ({'meets' if rate >= 1_000_000 else 'MISSES'} 1M target)"
            print(f"{env_id:<28} vector N={num_envs:<7} {rate:>14,.0f} steps/s   {rate / yardstick:6.1f}x yardstick{note}")
    if json_path:
        with open(json_path, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
    return results


@dataclass
class EnvThroughputOptions:
    """What ``benchmarks/env_throughput.py`` measures."""

    seconds: float = 2.0
    """Time spent on each measurement."""
    num_envs: list[int] = field(default_factory=lambda: [1, 64, 1024, 4096], metadata=MANY)
    """Vector batch sizes."""
    json: str | None = None
    """Also write the figures to this JSON file."""


if __name__ == "__main__":
    options = parse_options(EnvThroughputOptions, None, prog="benchmarks/env_throughput.py",
                            description=first_paragraph(__doc__))
    main(options.seconds, options.num_envs, options.json)
