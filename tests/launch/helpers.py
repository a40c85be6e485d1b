"""Running launcher commands as subprocesses with bounded waits, and CartPole policies and checkpoints for tool tests."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# A tiny CartPole agent: the smoke runs take seconds on a shared 2-core machine.
TINY = [
    "--env", "CartPole-v1", "--core", "lstm", "--core-kwargs", '{"hidden_size": 16}', "--hidden-size", "16",
    "--num-actors", "2", "--envs-per-actor", "4", "--batch-size", "8", "--unroll-length", "10",
    "--log-interval-s", "0.5", "--learning-rate", "0.001",
]


def command(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def run(module: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``python -m module args`` in the repository root and capture its output."""
    return subprocess.run(command(module, *args), cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


class LiveProcess:
    """A launcher process whose merged output is read line by line on a thread."""

    def __init__(self, module: str, *args: str) -> None:
        self.process = subprocess.Popen(command(module, *args), cwd=REPO, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """Block until an output line matches ``pattern``; fail after ``timeout`` s."""
        for line in self.lines:
            if (match := re.search(pattern, line)):
                return match
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"process exited before printing {pattern!r}:\n{self.output}")
            self.lines.append(line)
            if (match := re.search(pattern, line)):
                return match
        raise AssertionError(f"no line matched {pattern!r} within {timeout} s:\n{self.output}")

    def wait_for_count(self, pattern: str, count: int, timeout: float) -> list[re.Match[str]]:
        """Block until ``count`` output lines match ``pattern``; fail after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            matches = [match for line in self.lines if (match := re.search(pattern, line))]
            if len(matches) >= count:
                return matches
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{len(matches)} of {count} lines matched {pattern!r} within {timeout} s:\n"
                                     f"{self.output}") from None
            if line is None:
                raise AssertionError(f"process exited after {len(matches)} of {count} lines matching {pattern!r}:\n"
                                     f"{self.output}")
            self.lines.append(line)

    def finish(self, timeout: float) -> int:
        """Wait for exit (kill it and fail after ``timeout`` s); returns the exit code."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise AssertionError(f"process still running after {timeout} s:\n{self.output}") from None
        while True:
            try:
                line = self._queue.get(timeout=5)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
        return code

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def actor_pids(output: str) -> list[int]:
    match = re.search(r"actor pids \[([\d, ]+)\]", output)
    assert match, f"no actor pids in:\n{output}"
    return [int(text) for text in match.group(1).split(",")]


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def wait_until_gone(pids: list[int], timeout: float = 15) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if pid_alive(pid)]
        if not alive:
            return []
        time.sleep(0.1)
    return [pid for pid in pids if pid_alive(pid)]


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def cartpole_policy(config):
    """The ``ActorCritic`` that ``config`` (a CartPole-v1 ``TrainConfig``) builds, on the CPU."""
    from launch.impala.env_factory import make_vector_env
    from launch.impala.policy_factory import build_policy

    env = make_vector_env(config.env, 1)
    try:
        return build_policy(config, env.single_observation_space, env.single_action_space)
    finally:
        env.close()


def save_policy_checkpoint(run: Path, step: int, policy, config) -> None:
    """A periodic checkpoint of ``policy`` in ``run``, holding what the checkpoint-reading tools load."""
    from launch.impala.checkpoint import save_checkpoint

    payload = {"model": policy.state_dict(), "config": json.dumps(config.to_json()), "counters": {}}
    save_checkpoint(run / "checkpoints", step, payload, keep=10)
