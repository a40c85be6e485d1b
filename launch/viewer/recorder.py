"""Short recorded rollouts during training, so a user sees the agent improve.

Every ``record_interval_s`` seconds the learner hands a CPU copy of the current weights
to a spawned child process, which plays one episode (cut at ``record_max_steps``) with
``launch.watch`` and writes ``RUN_DIR/videos/step_<N>.gif``. The child runs at a lower
CPU priority (``nice`` 10) on one thread; the learner only copies the weights and checks
on the child between updates. While one recording is still running the next one is
skipped. A run that ends normally (all its steps, or its time limit) also records its final
weights, so even a run shorter than one interval leaves a video of what it learned. Finished
recordings are logged to the run's log and, when enabled, to wandb.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from launch.impala.config import TrainConfig

VIDEO_DIR = "videos"


def _record_in_child(config_json: str, model_state: dict[str, torch.Tensor], path: str, max_steps: int,
                     seed: int) -> None:
    import contextlib
    import io
    import os

    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")  # envs that call pygame.init() (CartPole) need
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # neither a sound card nor a display here
    from launch.viewer.session import record_rollout

    with contextlib.redirect_stdout(io.StringIO()):  # keep the learner's console clean
        record_rollout(config_json, model_state, path, max_steps, seed)


class RolloutRecorder:
    """Starts and collects the recording child processes of one run.

    Args:
        config: the run's config (``record_interval_s``, ``record_max_steps``).
        run_path: the run directory; videos go to ``run_path / "videos"``.
        log: where one-line reports go.
        wandb_run: a wandb run to log finished videos to, or None.
    """

    def __init__(self, config: TrainConfig, run_path: Path, log: Callable[[str], None],
                 wandb_run: Any = None) -> None:
        self.config = config
        self.directory = Path(run_path) / VIDEO_DIR
        self.log = log
        self.wandb_run = wandb_run
        self._context = torch.multiprocessing.get_context("spawn")
        self._process: multiprocessing.process.BaseProcess | None = None
        self._path: Path | None = None
        self._last_start: float | None = None  # the clock starts at the first ``due`` check
        self._last_step: int | None = None  # the step of the latest recording started
        self.recorded: list[Path] = []

    def due(self, now: float) -> bool:
        """True when ``record_interval_s`` has passed since the last recording started."""
        if self._last_start is None:
            self._last_start = now
        interval = self.config.record_interval_s
        return interval is not None and now - self._last_start >= interval

    def start(self, step: int, model_state: dict[str, torch.Tensor]) -> bool:
        """Starts recording the policy of ``model_state`` at ``step``; False while busy."""
        self.poll(step)
        self._last_start = time.monotonic()
        if self._process is not None:
            return False
        self.directory.mkdir(parents=True, exist_ok=True)
        self._path = self.directory / f"step_{step:012d}.gif"
        self._last_step = step
        weights = {name: value.detach().to("cpu", copy=True) for name, value in model_state.items()}
        self._process = self._context.Process(
            target=_record_in_child,
            args=(json.dumps(self.config.to_json()), weights, str(self._path), self.config.record_max_steps,
                  self.config.seed + step),
            daemon=True,
            name=f"record-step-{step}",
        )
        self._process.start()
        return True

    def record_final(self, step: int, model_state: dict[str, torch.Tensor], timeout_s: float = 60.0) -> None:
        """Records the final weights at ``step`` (unless that step is already recorded) and waits.

        A recording still running is first given ``timeout_s`` to finish; the final one gets
        the same in ``close``, which this calls.
        """
        if self._process is not None:
            self._process.join(timeout_s)
            self.poll(step)
        if self._process is None and self._last_step != step:
            self.start(step, model_state)
        self.close(step, timeout_s)

    def poll(self, step: int) -> None:
        """Collects a finished recording: logs it (and sends it to wandb)."""
        process, path = self._process, self._path
        if process is None or process.is_alive():
            return
        process.join()
        self._process = None
        if process.exitcode != 0 or path is None or not path.is_file():
            self.log(f"warning: recording a rollout failed (exit code {process.exitcode}); training goes on")
            return
        self.recorded.append(path)
        self.log(f"recorded a rollout: {path}")
        if self.wandb_run is not None:
            try:
                import wandb

                self.wandb_run.log({"rollout": wandb.Video(str(path), format="gif", caption=path.stem)}, step=step)
            except Exception as error:  # a video that wandb cannot take must not stop training
                self.log(f"warning: could not log {path.name} to wandb: {type(error).__name__}: {error}")

    def close(self, step: int, timeout_s: float = 60.0) -> None:
        """Waits up to ``timeout_s`` for a running recording, then stops it."""
        process = self._process
        if process is None:
            return
        process.join(timeout_s)
        if process.is_alive():
            process.terminate()
            process.join(10)
            self.log(f"warning: stopped a rollout recording still running after {timeout_s:g} s")
            self._process = None
            return
        self.poll(step)
