"""A smoke run of benchmarks/games_per_actor.py on tiny batches."""

from __future__ import annotations

import json

from tests.benchmark_scripts import run_benchmark


def test_games_per_actor_prints_a_cost_per_frame_for_each_size() -> None:
    result = run_benchmark("games_per_actor", "--preset", "boxworld-easy-lstm", "--sizes", "2,4", "--repeats", "1",
                           timeout=240)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("acting_us_per_frame", "learning_us_per_frame"):
        assert set(summary[key]) == {"2", "4"} and all(value > 0 for value in summary[key].values())
    bad = run_benchmark("games_per_actor", "--sizes", "0", timeout=60)
    assert bad.returncode == 2 and "--sizes must be positive" in bad.stderr
