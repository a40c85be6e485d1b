"""Learning curves of one or more runs on one figure, saved as a PNG.

Usage::

    python -m launch.plot runs/boxworld-rmc-... runs/boxworld-lstm-... --out curves.png
    python -m launch.plot runs/A runs/B --metric success --smooth 10 --out success.png

Each curve is a run's ``metrics.jsonl``: the mean return (``--metric return``) or success
rate (``--metric success``) of the games that act with the policy itself
(``policy_return_mean``, ``policy_success_rate``; every game's ``episode_return_mean``,
``success_rate`` for runs that do not log those) against environment frames (``--x frames``) or
wall-clock hours (``--x hours``). Runs are labelled with their directory name unless
``--label`` is given once per run. Only ``metrics.jsonl`` is read, so a run's metrics copied
without its checkpoints (as under ``docs/runs/``) plot too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from launch.cli import POSITIONAL, REQUIRED, first_paragraph, parse_options, run_command
from launch.impala.config import ConfigError
from launch.impala.run_dir import read_metrics

METRIC_KEYS = {"return": "episode_return_mean", "success": "success_rate"}
POLICY_METRIC_KEYS = {"return": "policy_return_mean", "success": "policy_success_rate"}
METRIC_LABELS = {"return": "mean episode return", "success": "success rate"}


def metric_key(records: Sequence[dict], metric: Literal["return", "success"]) -> str:
    """The metrics.jsonl key of ``metric`` in these records: that of the games that act with the
    policy itself when the run logs it (while the actors hold actions, the all-games figure
    counts the held games too; launch/impala/exploration.py), else that of every game."""
    if any(POLICY_METRIC_KEYS[metric] in record for record in records):
        return POLICY_METRIC_KEYS[metric]
    return METRIC_KEYS[metric]


def curve(run_path: str | os.PathLike[str], metric: Literal["return", "success"] = "return",
          x: Literal["frames", "hours"] = "frames", smooth: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of one run: the records that hold the metric, smoothed by a trailing mean."""
    records = read_metrics(run_path)
    key = metric_key(records, metric)
    records = [record for record in records if record.get(key) is not None]
    xs = np.array([record["step"] if x == "frames" else record["time_s"] / 3600 for record in records], dtype=float)
    ys = np.array([record[key] for record in records], dtype=float)
    if smooth > 1 and len(ys):
        cumulative = np.cumsum(np.insert(ys, 0, 0.0))
        starts = np.maximum(np.arange(1, len(ys) + 1) - smooth, 0)
        ys = (cumulative[1:] - cumulative[starts]) / (np.arange(1, len(ys) + 1) - starts)
    return xs, ys


def plot_runs(run_paths: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str],
              metric: Literal["return", "success"] = "return", x: Literal["frames", "hours"] = "frames",
              labels: Sequence[str] | None = None, smooth: int = 1, title: str | None = None) -> Path:
    """Draw the runs' curves to ``out`` (PNG); raises ConfigError for a path that is not a run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if labels is not None and len(labels) != len(run_paths):
        raise ConfigError(f"give one --label per run: {len(labels)} labels for {len(run_paths)} runs")
    curves = []
    for path in run_paths:
        curves.append(curve(path, metric, x, smooth))
    if not any(len(xs) for xs, _ in curves):
        raise ConfigError(f"none of the runs has recorded {METRIC_KEYS[metric]!r} yet")
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for index, (path, (xs, ys)) in enumerate(zip(run_paths, curves)):
        axes.plot(xs, ys, label=labels[index] if labels else Path(path).name, linewidth=1.5)
    axes.set_xlabel("environment frames" if x == "frames" else "hours")
    axes.set_ylabel(METRIC_LABELS[metric])
    if metric == "success":
        axes.set_ylim(-0.02, 1.02)
    axes.grid(alpha=0.3)
    axes.legend()
    if title:
        axes.set_title(title)
    figure.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out


@dataclass
class PlotOptions:
    """What ``python -m launch.plot`` draws."""

    runs: list[str] = field(metadata={**POSITIONAL, "metavar": "RUN_DIR"})
    """Run directories made by launch.train (their metrics.jsonl)."""
    out: str = field(default="", metadata={**REQUIRED, "metavar": "PNG"})
    """Where to write the figure (PNG)."""
    metric: Literal["return", "success"] = "return"
    """The y axis: the mean episode return or the success rate."""
    x: Literal["frames", "hours"] = "frames"
    """The x axis: environment frames or wall-clock hours."""
    label: list[str] = field(default_factory=list)
    """Legend label, once per run, in order (default: the run directories' names)."""
    smooth: int = 1
    """Trailing mean over this many records."""
    title: str | None = None
    """Figure title."""

    def __post_init__(self) -> None:
        if self.smooth < 1:
            raise ConfigError(f"--smooth must be >= 1, got {self.smooth}")


def cli(argv: list[str] | None = None) -> int:
    """``python -m launch.plot`` / ``rmc-plot``."""

    def body() -> None:
        options = parse_options(PlotOptions, argv, prog="python -m launch.plot", description=first_paragraph(__doc__))
        out = plot_runs(options.runs, options.out, options.metric, options.x, options.label or None, options.smooth,
                        options.title)
        print(f"wrote {out}")

    return run_command(body)


if __name__ == "__main__":
    sys.exit(cli())
