"""Write a trained policy as a small weights-only checkpoint, for sharing and for watching.

Usage::

    python -m launch.tools.export_policy --checkpoint runs/RUN --best --out pretrained/boxworld-easy-rmc.pt

The file holds the run's config and the policy's weights (no optimiser or learner state,
no random-number state), in the checkpoint format ``launch.evaluate`` and ``launch.watch``
read; ``--resume`` cannot continue from it. ``--note`` stores a line of text with it (for
example the evaluation it was exported with).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from launch.cli import REQUIRED, BadInput, first_paragraph, parse_options, run_command
from launch.impala.checkpoint import load_checkpoint
from launch.impala.trained import resolve_checkpoint


@dataclass
class ExportOptions:
    """What ``python -m launch.tools.export_policy`` writes."""

    checkpoint: str = field(default="", metadata={**REQUIRED, "metavar": "PATH"})
    """A checkpoint file, or a run directory (its latest checkpoint)."""
    best: bool = False
    """With a run directory: its best policy (checkpoints/best.pt) instead of its latest."""
    out: str = field(default="", metadata={**REQUIRED, "metavar": "OUT.pt"})
    """Where to write the weights-only checkpoint."""
    note: str = ""
    """A line of text stored with the weights (where they come from, how they evaluated)."""

    def __post_init__(self) -> None:
        if not self.out.endswith(".pt"):
            raise BadInput(f"--out must be a path ending in .pt, got {self.out!r}")


def export_policy(checkpoint: str | Path, out: str | Path, best: bool = False, note: str = "") -> Path:
    """Writes the config and model weights of ``checkpoint`` to ``out``; returns ``out``."""
    source = resolve_checkpoint(checkpoint, best)
    payload = load_checkpoint(source)
    exported = {"config": payload["config"], "model": {name: tensor.clone() for name, tensor in payload["model"].items()},
                "counters": dict(payload.get("counters", {})), "note": note}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(exported, out)
    return out


def cli(argv: list[str] | None = None) -> int:
    """``python -m launch.tools.export_policy``."""

    def body() -> None:
        options = parse_options(ExportOptions, argv, prog="python -m launch.tools.export_policy",
                                description=first_paragraph(__doc__))
        out = export_policy(options.checkpoint, options.out, options.best, options.note)
        print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")

    return run_command(body)


if __name__ == "__main__":
    sys.exit(cli())
