"""benchmarks/learning_suite.py: entry selection, figures, the table; the suites themselves are slow tests."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.benchmark_scripts import REPO, load_benchmark

suite = load_benchmark("learning_suite")


def test_the_suite_holds_every_required_entry_and_quick_is_cartpole_per_core() -> None:
    names = {entry.name for entry in suite.ENTRIES}
    for core in ("none", "lstm", "rmc"):
        assert {f"cartpole-{core}", f"cartpole-novel-{core}", f"acrobot-{core}"} <= names
    assert {"minigrid-memory-lstm", "minigrid-memory-rmc", "boxworld-easy-rmc", "minipacman-rmc",
            "minipacman-lstm"} <= names
    quick = suite.select(None, quick=True)
    assert [(entry.env, entry.core) for entry in quick] == [("CartPole-v1", core) for core in ("none", "lstm", "rmc")]
    assert [entry.name for entry in suite.select(["acrobot-lstm"], quick=False)] == ["acrobot-lstm"]
    with pytest.raises(ValueError, match="unknown entries"):
        suite.select(["cartpole-gru"], quick=False)
    novel_none = next(entry for entry in suite.ENTRIES if entry.name == "cartpole-novel-none")
    assert novel_none.below  # a policy without memory is expected to stay below the target


def test_success_counts_positive_returns_where_the_env_reports_none() -> None:
    entry = next(entry for entry in suite.ENTRIES if entry.name == "minigrid-memory-rmc")
    summary = {"success_rate": None, "returns": [0.9, 0.0, 0.5, 0.0], "episodes": 4}
    value, (low, high) = suite.success_of(entry, summary)
    assert value == 0.5 and 0.0 < low < 0.5 < high < 1.0


def test_seconds_to_target_reads_the_first_log_at_the_target(tmp_path) -> None:
    records = [{"step": 1000, "time_s": 5.0, "episode_return_mean": 100.0},
               {"step": 2000, "time_s": 10.0},
               {"step": 3000, "time_s": 15.0, "episode_return_mean": 480.0}]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(record) for record in records))
    entry = next(entry for entry in suite.ENTRIES if entry.name == "cartpole-rmc")
    assert suite.seconds_to_target(tmp_path, entry) == 15.0
    assert suite.seconds_to_target(tmp_path, suite.dataclasses.replace(entry, target=500.0)) is None
    # a run that logs the return of the games acting with the policy itself is timed by it
    records[1]["policy_return_mean"] = 490.0
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(record) for record in records))
    assert suite.seconds_to_target(tmp_path, entry) == 10.0


def test_the_table_shows_each_seed_the_verdict_and_the_peer() -> None:
    entry = next(entry for entry in suite.ENTRIES if entry.name == "cartpole-lstm")
    runs = [suite.RunResult("cartpole-lstm", seed, 200_320, 60.0 + seed, value, (value - 5, value + 5), value >= 475,
                            30.0, "runs/x") for seed, value in enumerate([500.0, 470.0])]
    peer = [{"algorithm": "PPO", "frames": 200_000, "train_seconds": 90.0, "value": 498.0, "ci95": [490, 506],
             "seconds_to_target": 70.0}]
    table = suite.format_table([entry], {"cartpole-lstm": runs}, {"CartPole-v1": peer})
    row = table.splitlines()[2]
    assert "500.0 (495.0..505.0); 470.0 (465.0..475.0)" in row
    assert "no (1/2)" in row and "PPO" in row and "498.0" in row and "200,320" in row


def write_results(folder: Path, entry: str, seeds: list[int], flags: list[str]) -> Path:
    """A results.json of runs whose folders (with a short metrics.jsonl) lie beside it."""
    runs = []
    for seed in seeds:
        run_dir = folder / f"{entry}-seed{seed}"
        run_dir.mkdir(parents=True)
        (run_dir / "metrics.jsonl").write_text("\n".join(
            json.dumps({"step": step, "time_s": step / 1000, "policy_return_mean": step / 400}) for step in (1000, 2000)))
        runs.append(dataclasses.asdict(suite.RunResult(entry, seed, 200_320, 60.0, 480.0 + seed, (470.0, 490.0), True,
                                                       20.0, f"/elsewhere/runs/{run_dir.name}")))
    path = folder / "results.json"
    path.write_text(json.dumps({"runs": {entry: runs}, "peers": {}, "flags": flags}))
    return path


def test_the_table_and_curves_of_earlier_runs_without_training(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    first = write_results(tmp_path / "a", "cartpole-lstm", [0, 1], [])
    second = write_results(tmp_path / "b", "cartpole-lstm", [2], [])
    other = write_results(tmp_path / "c", "cartpole-rmc", [0], [])
    code = suite.main(["--from-results", str(second), "--from-results", str(first), "--from-results", str(other),
                       "--only", "cartpole-lstm", "--plot", str(tmp_path / "plots")])
    assert code == 0
    table = capsys.readouterr().out
    row = next(line for line in table.splitlines() if line.startswith("| cartpole-lstm"))
    assert "480.0 (470.0..490.0); 481.0 (470.0..490.0); 482.0 (470.0..490.0)" in row  # seeds in order
    assert "cartpole-rmc" not in table
    assert (tmp_path / "plots" / "learning_cartpole_v1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    flagged = write_results(tmp_path / "d", "cartpole-lstm", [3], ["--num-epochs", "1"])
    assert suite.main(["--from-results", str(first), "--from-results", str(flagged)]) == 2
    assert "one table takes runs of one config" in capsys.readouterr().err
    assert suite.main(["--from-results", str(first), "--from-results", str(first)]) == 2
    assert "cartpole-lstm seed 0 is in both" in capsys.readouterr().err
    assert suite.main(["--from-results", str(tmp_path / "a" / "cartpole-lstm-seed0" / "metrics.jsonl")]) == 2
    assert "is not a learning suite results.json" in capsys.readouterr().err
    assert suite.main(["--from-results", str(first), "--flags", "--num-epochs 1"]) == 2
    assert "--flags cannot go with --from-results" in capsys.readouterr().err


def test_bad_arguments_exit_with_a_message() -> None:
    completed = subprocess.run([sys.executable, str(REPO / "benchmarks" / "learning_suite.py"), "--seeds", "0"],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2 and "--seeds must be >= 1" in completed.stderr


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_quick_suite_learns_cartpole_with_every_core(tmp_path) -> None:
    completed = subprocess.run([sys.executable, str(REPO / "benchmarks" / "learning_suite.py"), "--quick",
                                "--no-peer", "--out", str(tmp_path)], capture_output=True, text=True, timeout=1700)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.timeout(6 * 3600)
def test_full_suite_meets_every_target(tmp_path) -> None:
    completed = subprocess.run([sys.executable, str(REPO / "benchmarks" / "learning_suite.py"), "--no-peer",
                                "--out", str(tmp_path)], capture_output=True, text=True, timeout=6 * 3600 - 60)
    assert completed.returncode == 0, completed.stdout[-5000:] + completed.stderr[-3000:]


def test_extra_flags_reach_every_run_and_cannot_replace_an_entrys_own(tmp_path, monkeypatch) -> None:
    commands = []

    def fake_run(command, **kwargs):
        commands.append(command)
        return subprocess.CompletedProcess(command, 1, "", "stopped by the test")

    monkeypatch.setattr(suite.subprocess, "run", fake_run)
    options = suite.SuiteOptions(only=["cartpole-none"], seeds=1, no_peer=True, out=str(tmp_path),
                                 flags="--advantage-normalization --lr-kl-target 0.02")
    with pytest.raises(RuntimeError):
        suite.run_suite(options)
    command = commands[0]
    assert "--advantage-normalization" in command and command[command.index("--lr-kl-target") + 1] == "0.02"
    with pytest.raises(ValueError, match="cannot set what each entry sets itself"):
        suite.SuiteOptions(flags="--core lstm")


def test_a_single_flag_starting_with_a_dash_is_taken_as_the_flags_value() -> None:
    assert suite.attach_flags_value(["--only", "cartpole-none", "--flags", "--orthogonal-init"]) == [
        "--only", "cartpole-none", "--flags=--orthogonal-init"]
    assert suite.attach_flags_value(["--flags", "--mlp-activation tanh", "--no-peer"]) == [
        "--flags=--mlp-activation tanh", "--no-peer"]
    assert suite.attach_flags_value(["--flags", "x", "--quick"]) == ["--flags", "x", "--quick"]
    completed = subprocess.run([sys.executable, str(REPO / "benchmarks" / "learning_suite.py"), "--seeds", "0",
                                "--flags", "--orthogonal-init"], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2 and "--seeds must be >= 1" in completed.stderr  # parsed past --flags
