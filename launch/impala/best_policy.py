"""The run's best policy so far, kept as ``RUN_DIR/checkpoints/best.pt``.

A policy-gradient run can collapse late: easy Box-World's preset once fell from 0.95
training success to 0 within 33 updates at a learning rate of 5e-5, and its final
checkpoint evaluated at 0% (docs/results.md). The trainer therefore scores the
policy on a moving window of its latest training episodes and saves a copy of the
weights whenever the window beats every earlier one, as Sample Factory's
``save_best_metric`` and Stable-Baselines3's ``EvalCallback`` keep a best model.

The score is measured on training episodes (sampled actions, policies up to a few updates
older than the weights saved), so it selects the checkpoint; ``launch.evaluate --best``
measures it on fresh episodes.
"""

from __future__ import annotations

import collections

import numpy as np


class BestTracker:
    """Mean score over the last ``window`` training episodes, and whether it is a new best.

    An episode scores its success (0 or 1) when the env reports one, else its return.

    Args:
        window: episodes per window; 0 turns the tracker off (never a new best).
        best: the best score of the run so far (from the checkpoint of a resumed run), or None.
    """

    def __init__(self, window: int, best: float | None = None) -> None:
        if window < 0:
            raise ValueError(f"window must be >= 0, got {window}")
        self.window = window
        self.best = best
        self.uses_success = False
        self._scores: collections.deque[float] = collections.deque(maxlen=max(window, 1))

    def add(self, episode_return: float, success: float | None) -> None:
        """Record one finished training episode."""
        if success is not None:
            self.uses_success = True
        self._scores.append(float(success if success is not None else episode_return))

    @property
    def metric(self) -> str:
        """What the score is: ``"success"`` or ``"return"``."""
        return "success" if self.uses_success else "return"

    def new_best(self) -> float | None:
        """The window's mean score if the window is full and beats every earlier best, else None.

        A returned score becomes the new best.
        """
        if self.window == 0 or len(self._scores) < self.window:
            return None
        score = float(np.mean(self._scores))
        if self.best is not None and score <= self.best:
            return None
        self.best = score
        return score
