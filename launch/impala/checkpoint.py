"""Atomic checkpoints that load without unpickling arbitrary objects.

A checkpoint is a ``torch.save`` file of plain containers (dicts, lists, tuples, numbers,
strings, tensors): model and optimizer state dicts, the learner's update count, the step
counters and training time (which set the learning-rate schedule), the config as a JSON
string and the learner's RNG states. ``load_checkpoint`` uses
``torch.load(weights_only=True)``, whose unpickler only builds those types, so a crafted
file cannot run code.

Saving writes ``checkpoint_<step>.pt`` through a temporary file in the same folder,
flushed and fsynced before ``os.replace``: a kill at any moment leaves either the previous
checkpoints alone or the new one complete. Temporary files start with a dot and are
never taken for checkpoints. ``best.pt`` (the run's best policy so far, same format) is
written the same way; it is neither pruned nor taken for the latest checkpoint.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from launch.cli import REQUIRED, BadInput
from launch.impala.run_dir import atomic_write

_NAME = re.compile(r"^checkpoint_(\d+)\.pt$")
BEST_CHECKPOINT = "best.pt"
"""The policy with the best training score so far (``TrainConfig.best_window_episodes``)."""


class CheckpointError(BadInput, RuntimeError):
    """A checkpoint that is missing, incomplete, or holds something other than plain data."""


def checkpoint_path(directory: Path, step: int) -> Path:
    return Path(directory) / f"checkpoint_{step:012d}.pt"


def checkpoint_step(path: str | os.PathLike[str]) -> int:
    """The step a ``checkpoint_<step>.pt`` file was written at (the inverse of ``checkpoint_path``).

    Raises:
        CheckpointError: the file is not named like a periodic checkpoint.
    """
    match = _NAME.match(Path(path).name)
    if match is None:
        raise CheckpointError(f"{str(path)!r} is not named checkpoint_<step>.pt")
    return int(match.group(1))


def list_checkpoints(directory: str | os.PathLike[str]) -> list[Path]:
    """Complete checkpoints in ``directory``, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(match.group(1)), path) for path in directory.iterdir() if (match := _NAME.match(path.name))]
    return [path for _, path in sorted(found)]


def checkpoints_in_range(run: str | Path, from_step: int | None = None, to_step: int | None = None,
                         minimum: int = 2, every: int = 1) -> list[Path]:
    """The run's periodic checkpoints with ``from_step <= step <= to_step``, oldest first;
    with ``every`` > 1 only every ``every``-th of them, from the first.

    Raises:
        CheckpointError: ``every`` < 1, ``run`` holds no checkpoints, or fewer than
            ``minimum`` are chosen (a drift needs two).
    """
    if every < 1:
        raise CheckpointError(f"--every must be >= 1, got {every}")
    run = Path(run)
    paths = list_checkpoints(run / "checkpoints")
    if not paths:
        raise CheckpointError(f"{str(run)!r} has no checkpoints/checkpoint_<step>.pt files: is it a launch.train run?")
    low = -1 if from_step is None else from_step
    high = float("inf") if to_step is None else to_step
    chosen = [path for path in paths if low <= checkpoint_step(path) <= high][::every]
    if len(chosen) < minimum:
        steps = f"{checkpoint_step(paths[0]):,} .. {checkpoint_step(paths[-1]):,}"
        thinned = "" if every == 1 else f" (taking every {every})"
        raise CheckpointError(f"{len(chosen)} checkpoint(s){thinned} between steps {from_step} and {to_step}; the "
                              f"run's {len(paths)} checkpoints span steps {steps}, and {minimum} are needed")
    return chosen


@dataclasses.dataclass
class CheckpointRange:
    """The arguments of ``checkpoints_in_range``, the seed and the threads: the options the
    tools that replay a run's checkpoints one by one share (``launch.tools``)."""

    run: str = dataclasses.field(default="", metadata={**REQUIRED, "metavar": "RUN_DIR"})
    """A launch.train run directory."""
    from_step: int | None = None
    """First checkpoint step to include (default: all)."""
    to_step: int | None = None
    """Last checkpoint step to include (default: all)."""
    every: int = 1
    """Take every n-th checkpoint in the range."""
    seed: int = 1000
    """Seed of the games played with the checkpoints' policies."""
    threads: int = 1
    """Torch CPU threads."""

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise BadInput(f"--threads must be >= 1, got {self.threads}")


def latest_checkpoint(directory: str | os.PathLike[str]) -> Path | None:
    paths = list_checkpoints(directory)
    return paths[-1] if paths else None


def _write_atomically(final: Path, payload: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file beside ``final``, fsync, then ``os.replace``."""
    atomic_write(final, lambda stream: torch.save(payload, stream))


def save_checkpoint(directory: str | os.PathLike[str], step: int, payload: dict[str, Any], keep: int) -> Path:
    """Atomically write ``payload`` as the checkpoint of ``step`` and keep the newest ``keep``."""
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = checkpoint_path(directory, step)
    _write_atomically(final, payload)
    for old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return final


def save_best_checkpoint(directory: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Atomically replace ``directory/best.pt`` (never pruned, never taken for the latest)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / BEST_CHECKPOINT
    _write_atomically(final, payload)
    return final


def best_checkpoint(directory: str | os.PathLike[str]) -> Path | None:
    """``directory/best.pt`` when a run saved one."""
    path = Path(directory) / BEST_CHECKPOINT
    return path if path.is_file() else None


def remove_stale_temporaries(directory: str | os.PathLike[str]) -> None:
    """Delete temporary files left by a save that was killed."""
    directory = Path(directory)
    if directory.is_dir():
        for path in [*directory.glob(".checkpoint_*.tmp"), *directory.glob(f".{BEST_CHECKPOINT}.*.tmp")]:
            path.unlink(missing_ok=True)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint with the weights-only unpickler (no arbitrary objects, no code)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"refusing to load {str(path)!r}: it holds objects other than tensors and plain containers "
            f"(weights-only loading rejected it: {str(error).splitlines()[0]})"
        ) from None
    except Exception as error:  # torch.load fails in many ways on a file that is not a checkpoint
        raise CheckpointError(
            f"checkpoint {str(path)!r} is unreadable or incomplete (is it a launch.train checkpoint?): "
            f"{type(error).__name__}: {error}"
        ) from None
    if not isinstance(payload, dict) or "model" not in payload or "config" not in payload:
        raise CheckpointError(f"{str(path)!r} is not a launch.train checkpoint (no 'model' and 'config' entries)")
    return payload


def capture_rng_state() -> dict[str, Any]:
    """The learner's Python, NumPy and torch RNG states as plain data."""
    numpy_state = np.random.get_state()
    python_state = random.getstate()
    return {
        "python": [python_state[0], list(python_state[1]), python_state[2]],
        "numpy": {
            "keys": torch.from_numpy(numpy_state[1].astype(np.int64)),
            "position": int(numpy_state[2]),
            "has_gauss": int(numpy_state[3]),
            "cached_gaussian": float(numpy_state[4]),
        },
        "torch": torch.get_rng_state(),
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of ``capture_rng_state``."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state(
        ("MT19937", numpy_state["keys"].numpy().astype(np.uint32), numpy_state["position"],
         numpy_state["has_gauss"], numpy_state["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
