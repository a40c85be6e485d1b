"""The console view of a training run: one progress line, redrawn in place on a TTY.

On a terminal the line is redrawn with a carriage return and looks like::

    [#######.............]  35.0%  350,000/1,000,000 steps  2,310 sps  ETA 4m41s  return 3.41  success 62%  loss 1.23

When stdout is not a terminal (a log file, CI) each update is a plain line instead.
"""

from __future__ import annotations

import math
import sys
from typing import TextIO


def format_duration(seconds: float) -> str:
    """``3725`` -> ``'1h02m'``; ``281`` -> ``'4m41s'``; unknown -> ``'?'``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class ProgressView:
    """Draws progress lines to ``stream``.

    Args:
        total_steps: the step count at which the run ends.
        stream: where to draw (default stdout).
        interactive: redraw in place; default: whether ``stream`` is a TTY.
        width: characters of the bar.
    """

    def __init__(self, total_steps: int, stream: TextIO | None = None, interactive: bool | None = None,
                 width: int = 20) -> None:
        self.total_steps = total_steps
        self.stream = stream if stream is not None else sys.stdout
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.width = width
        self._line_open = False

    def render(self, step: int, steps_per_second: float, recent_return: float | None, recent_success: float | None,
               loss: float | None, time_left_s: float | None = None) -> str:
        """The progress line for these numbers.

        ``time_left_s`` (a run with a time limit) caps the ETA; the line then says that the
        clock, not the step budget, ends the run.
        """
        fraction = min(1.0, step / self.total_steps) if self.total_steps else 1.0
        filled = int(round(fraction * self.width))
        remaining = max(0, self.total_steps - step)  # the last batch may overshoot the budget
        eta = remaining / steps_per_second if steps_per_second > 0 else (0.0 if remaining == 0 else math.inf)
        eta_text = f"ETA {format_duration(eta)}"
        if time_left_s is not None and max(0.0, time_left_s) < eta:
            eta_text = f"ETA {format_duration(max(0.0, time_left_s))} (time limit)"
        parts = [
            f"[{'#' * filled}{'.' * (self.width - filled)}]",
            f"{100 * fraction:5.1f}%",
            f"{step:,}/{self.total_steps:,} steps",
            f"{steps_per_second:,.0f} sps",
            eta_text,
        ]
        if recent_return is not None:
            parts.append(f"return {recent_return:.3g}")
        if recent_success is not None:
            parts.append(f"success {100 * recent_success:.0f}%")
        if loss is not None:
            parts.append(f"loss {loss:.3g}")
        return "  ".join(parts)

    def update(self, step: int, steps_per_second: float, recent_return: float | None = None,
               recent_success: float | None = None, loss: float | None = None,
               time_left_s: float | None = None) -> None:
        line = self.render(step, steps_per_second, recent_return, recent_success, loss, time_left_s)
        if self.interactive:
            self.stream.write("\r\x1b[2K" + line)
            self._line_open = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """Print a message line without tearing the progress line."""
        if self._line_open:
            self.stream.write("\n")
            self._line_open = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._line_open:
            self.stream.write("\n")
            self.stream.flush()
            self._line_open = False
