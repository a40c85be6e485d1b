"""A smoke run of benchmarks/games_per_actor.py on tiny batches."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_games_per_actor_prints_a_cost_per_frame_for_each_size() -> None:
    command = [sys.executable, str(REPO / "benchmarks" / "games_per_actor.py"), "--preset", "boxworld-easy-lstm",
               "--sizes", "2,4", "--repeats", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=REPO)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("acting_us_per_frame", "learning_us_per_frame"):
        assert set(summary[key]) == {"2", "4"} and all(value > 0 for value in summary[key].values())
    bad = subprocess.run([*command[:2], "--sizes", "0"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert bad.returncode == 2 and "--sizes must be positive" in bad.stderr
