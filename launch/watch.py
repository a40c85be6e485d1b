"""Watch a trained agent play, and see what its relational memory attends to.

Usage::

    python -m launch.watch --checkpoint runs/RUN                      # a window; keys below
    python -m launch.watch --checkpoint runs/RUN --record out.gif     # headless, 1 episode
    python -m launch.watch --checkpoint ckpt.pt --record out.mp4 --episodes 3 --deterministic

The policy plays one game, carrying its recurrent state through each episode (reset at
the episode's first step, as in training). Beside the env's ``rgb_array`` frame a panel
shows the step, the return, the value estimate, the action probabilities and, for RMC
policies, each memory slot's attention over the memory slots and the input cells (see
``launch.viewer`` and docs/watch.md). ``--record`` writes the same view to a GIF or an
MP4 file without opening a window: one frame per decision plus a last frame per episode
showing how it ended.

Keys in the window: space pause / resume, n (or right arrow) one step while paused,
+ / - (or up / down) faster / slower, r restart the episode, o cycle what the board
overlay shows (all slots and heads, each slot and head, none), q or Esc quit.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from launch.cli import first_paragraph, parse_options, run_command
from launch.impala.checkpoint import CheckpointError
from launch.impala.trained import load_trained
from launch.viewer.session import WatchOptions, watch


def parse_args(argv: list[str] | None = None) -> WatchOptions:
    """Builds WatchOptions from the command line."""
    return parse_options(WatchOptions, argv, prog="python -m launch.watch", description=first_paragraph(__doc__),
                         epilog="Keys: space pause, n step, +/- speed, r restart, o overlay, q quit.")


def main(options: WatchOptions, on_frame: Callable[[int], None] | None = None) -> int:
    """Loads the checkpoint and watches it; returns the exit code (2: bad input)."""

    def body() -> None:
        options.validate()
        torch.set_num_threads(options.threads)
        if not Path(options.checkpoint).exists():
            raise CheckpointError(f"checkpoint {options.checkpoint!r} does not exist "
                                  "(expected a checkpoint file or a run directory)")
        config, model_state = load_trained(options.checkpoint, options.env, options.env_kwargs, options.env_package,
                                           options.best)
        watch(config, model_state, options, on_frame)

    return run_command(body)


def cli(argv: list[str] | None = None) -> int:
    """``python -m launch.watch`` / ``rmc-watch``."""
    options = parse_args(argv)
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")  # envs that call pygame.init() need no sound card,
    if options.record:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # and a recording no display
    return main(options)


if __name__ == "__main__":
    sys.exit(cli())
