"""Shared rendering for the grid games: crisp upscaling and a lazily opened pygame window.

The games build their picture as a numpy RGB ``frame`` (one cell per pixel, exactly the
observation of the full view). ``rgb_array`` rendering is that frame upscaled with
``upscale``; ``human`` rendering puts the same upscaled frame in a pygame window beside a
text panel. pygame is imported only inside ``HumanWindow``, so importing ``envs`` never
needs a display or pygame at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

PANEL_WIDTH = 220
PANEL_BACKGROUND = (24, 24, 32)
PANEL_TEXT = (230, 230, 230)


def upscale(frame: np.ndarray, cell_pixels: int, grid_lines: bool = True) -> np.ndarray:
    """Scales a one-pixel-per-cell RGB frame up to ``cell_pixels`` pixels per cell.

    Args:
        frame: uint8 array [H, W, 3].
        cell_pixels: side of one cell in the output, >= 1.
        grid_lines: darken the last pixel row/column of every cell (when cells are at
            least 4 pixels) so neighbouring cells of one colour stay distinguishable.

    Returns:
        uint8 array [H * cell_pixels, W * cell_pixels, 3].
    """
    if cell_pixels < 1:
        raise ValueError(f"cell_pixels must be >= 1, got {cell_pixels}")
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame must have shape [H, W, 3], got {frame.shape}")
    big = np.repeat(np.repeat(frame, cell_pixels, axis=0), cell_pixels, axis=1)
    if grid_lines and cell_pixels >= 4:
        big = big.copy() if big.base is not None else big
        big[cell_pixels - 1 :: cell_pixels, :, :] = (big[cell_pixels - 1 :: cell_pixels, :, :] * 0.7).astype(np.uint8)
        big[:, cell_pixels - 1 :: cell_pixels, :] = (big[:, cell_pixels - 1 :: cell_pixels, :] * 0.7).astype(np.uint8)
    return np.ascontiguousarray(big, dtype=np.uint8)


class HumanWindow:
    """A pygame window showing a board picture and a side panel of text and colour swatches.

    The window opens on the first ``show`` call. Under ``SDL_VIDEODRIVER=dummy`` it works
    headless (useful in tests).

    Args:
        title: window caption.
        fps: frames per second the window is paced at (``show`` sleeps to keep it).
    """

    def __init__(self, title: str, fps: int) -> None:
        self.title = title
        self.fps = fps
        self._pygame: Any = None
        self._screen: Any = None
        self._clock: Any = None
        self._font: Any = None

    def _open(self, board_size: tuple[int, int]) -> None:
        import pygame  # lazily: rendering is the only place pygame is needed

        self._pygame = pygame
        pygame.init()
        pygame.display.init()
        pygame.display.set_caption(self.title)
        width, height = board_size
        self._screen = pygame.display.set_mode((width + PANEL_WIDTH, max(height, 200)))
        self._clock = pygame.time.Clock()
        pygame.font.init()
        self._font = pygame.font.Font(None, 22)

    def show(
        self,
        board: np.ndarray,
        lines: Sequence[str],
        swatches: Sequence[tuple[str, tuple[int, int, int] | None]] = (),
    ) -> None:
        """Draws ``board`` (uint8 [H, W, 3]) and the panel, then paces to ``fps``.

        Args:
            board: the upscaled board picture.
            lines: text lines for the panel (score, level, steps, ...).
            swatches: (label, colour) pairs drawn as a labelled square below the text,
                e.g. the held key; a colour of None draws an empty outline.
        """
        height, width = board.shape[:2]
        if self._screen is None:
            self._open((width, height))
        pygame = self._pygame
        pygame.event.pump()
        self._screen.fill(PANEL_BACKGROUND)
        surface = pygame.surfarray.make_surface(np.transpose(board, (1, 0, 2)))
        self._screen.blit(surface, (0, 0))
        x, y = width + 12, 12
        for line in lines:
            self._screen.blit(self._font.render(line, True, PANEL_TEXT), (x, y))
            y += 24
        for label, colour in swatches:
            y += 6
            self._screen.blit(self._font.render(label, True, PANEL_TEXT), (x, y))
            rect = pygame.Rect(x + 110, y - 4, 24, 24)
            if colour is None:
                pygame.draw.rect(self._screen, PANEL_TEXT, rect, width=1)
            else:
                pygame.draw.rect(self._screen, colour, rect)
            y += 28
        pygame.display.flip()
        self._clock.tick(self.fps)

    def close(self) -> None:
        """Closes the window if it was opened."""
        if self._screen is not None:
            self._pygame.display.quit()
            self._screen = None

    def __getstate__(self) -> dict[str, Any]:
        # A pickled env carries no live window; a new one opens on the next render.
        return {"title": self.title, "fps": self.fps}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["title"], state["fps"])
