"""A run directory: ``config.json``, ``metrics.jsonl``, ``checkpoints/``, ``logs/``.

Layout::

    RUN_DIR/
        config.json        the TrainConfig of the run (written once, atomically)
        metrics.jsonl      one JSON record per log interval (always written)
        checkpoints/       checkpoint_<step>.pt files (see launch.impala.checkpoint)
        logs/train.log     the run's console messages and warnings
        videos/            step_<N>.gif rollouts, only with --record-interval-s
        wandb/             only with --wandb
"""

from __future__ import annotations

import datetime
import gzip
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from launch.impala.config import ConfigError, TrainConfig

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
LOG_DIR = "logs"


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, fsync it, then ``os.replace`` it
    onto ``path``: a reader sees the old or the new file, never a part."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """``atomic_write`` of ``text`` (UTF-8)."""
    atomic_write(path, lambda stream: stream.write(text.encode("utf-8")))


def fsync_directory(path: Path) -> None:
    """Make a rename inside ``path`` durable."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def default_run_name(config: TrainConfig, preset: str | None = None) -> str:
    """``<preset or env>-<core>-<UTC timestamp>`` with filesystem-safe characters."""
    stem = preset or re.sub(r"[^A-Za-z0-9_.-]+", "-", config.env).strip("-")
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
    return f"{stem}-{config.core}-{stamp}"


class RunDir:
    """Paths and files of one run."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / CHECKPOINT_DIR

    @property
    def log_path(self) -> Path:
        return self.path / LOG_DIR / "train.log"

    @classmethod
    def create(cls, config: TrainConfig, preset: str | None = None) -> RunDir:
        """Make a new run directory holding ``config.json``; refuses to reuse a name."""
        name = config.run_name or default_run_name(config, preset)
        path = Path(config.runs_root) / name
        if path.exists():
            raise ConfigError(f"run directory {str(path)!r} already exists; choose another --run-name or --resume it")
        path.parent.mkdir(parents=True, exist_ok=True)
        # Build the directory under a temporary name and rename it: never a half-made run.
        staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{name}.", suffix=".tmp"))
        try:
            (staging / CHECKPOINT_DIR).mkdir()
            (staging / LOG_DIR).mkdir()
            atomic_write_text(staging / CONFIG_FILE, json.dumps(config.to_json(), indent=2) + "\n")
            (staging / METRICS_FILE).touch()
            os.rename(staging, path)
        except BaseException:
            for child in sorted(staging.rglob("*"), reverse=True):
                child.rmdir() if child.is_dir() else child.unlink()
            staging.rmdir()
            raise
        return cls(path)

    @classmethod
    def open_existing(cls, path: str | os.PathLike[str]) -> RunDir:
        """An existing run; raises ConfigError when ``path`` is not one."""
        run = cls(path)
        _require_directory(run.path)
        if not run.config_path.is_file() or not run.checkpoint_dir.is_dir():
            raise ConfigError(
                f"{str(run.path)!r} is not a run directory: it lacks {CONFIG_FILE} or {CHECKPOINT_DIR}/"
            )
        return run

    def load_config(self) -> TrainConfig:
        """The run's config, validated."""
        try:
            config = TrainConfig.from_saved_json(json.loads(self.config_path.read_text()))
        except (json.JSONDecodeError, TypeError) as error:
            raise ConfigError(f"{str(self.config_path)!r} is not a valid config: {error}") from None
        config.validate()
        return config

    def save_config(self, config: TrainConfig) -> None:
        atomic_write_text(self.config_path, json.dumps(config.to_json(), indent=2) + "\n")

    def truncate_metrics(self, last_step: int) -> None:
        """Drop metrics records past ``last_step`` (written after the checkpoint we resume from)."""
        kept = [record for record in read_metrics(self.path) if record.get("step", 0) <= last_step]
        atomic_write_text(self.metrics_path, "".join(json.dumps(record) + "\n" for record in kept))


class MetricsWriter:
    """Appends JSON records to ``metrics.jsonl`` (flushed per record) and mirrors them to wandb."""

    def __init__(self, run: RunDir, wandb_run: Any = None) -> None:
        self._stream: TextIO = open(run.metrics_path, "a")
        self._wandb_run = wandb_run

    def write(self, record: dict[str, Any]) -> None:
        clean = {key: _json_number(value) for key, value in record.items()}
        self._stream.write(json.dumps(clean) + "\n")
        self._stream.flush()
        if self._wandb_run is not None:
            self._wandb_run.log({k: v for k, v in clean.items() if v is not None}, step=int(clean["step"]))

    def close(self) -> None:
        self._stream.close()


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _require_directory(path: Path) -> None:
    if not path.is_dir():
        raise ConfigError(f"{str(path)!r} is not a directory (expected a run directory made by launch.train)")


def read_metrics(run_path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every complete record of a run's ``metrics.jsonl`` (a torn last line is skipped), or of
    its gzip-compressed copy ``metrics.jsonl.gz`` (how the run files under docs/runs are kept)."""
    _require_directory(Path(run_path))
    path = Path(run_path) / METRICS_FILE
    compressed = path.with_name(METRICS_FILE + ".gz")
    if not path.is_file() and compressed.is_file():
        path = compressed
    if not path.is_file():
        raise ConfigError(f"{str(run_path)!r} is not a run directory: no {METRICS_FILE}")
    return list(_records(path))


def _records(path: Path) -> Iterator[dict[str, Any]]:
    with (gzip.open(path, "rt") if path.suffix == ".gz" else open(path)) as stream:
        for line in stream:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue
