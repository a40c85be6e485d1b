"""Writing frames to a GIF or an MP4 file.

GIFs are written with Pillow (each frame reduced to its own 256-colour palette, kept in
memory until ``close``); MP4s are streamed to ffmpeg through imageio-ffmpeg, an optional
dependency (``pip install 'relational-rl[video]'``). The output path is checked when the
writer opens, before any frame is made, so a bad path fails fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np

from launch.cli import BadInput

VIDEO_SUFFIXES = (".gif", ".mp4")


class VideoError(BadInput):
    """An output path or format that cannot be written; the message says why."""


def video_format(path: str | os.PathLike[str]) -> Literal["gif", "mp4"]:
    """``"gif"`` or ``"mp4"`` from the file name; anything else is a VideoError."""
    suffix = Path(path).suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise VideoError(f"the output must end in .gif or .mp4, got {str(path)!r}")
    return "gif" if suffix == ".gif" else "mp4"


def require_ffmpeg() -> None:
    """Raise VideoError naming the extra to install when MP4 writing is unavailable."""
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        raise VideoError(
            "writing MP4 needs the imageio-ffmpeg package: pip install 'relational-rl[video]' "
            "(or pip install imageio-ffmpeg), or record a .gif instead"
        ) from None


class VideoWriter:
    """Collects ``uint8 [H, W, 3]`` frames into a GIF or MP4 file.

    Args:
        path: the output file; its suffix (.gif or .mp4) picks the format. Parent folders
            are created.
        fps: frames per second of the file.

    Raises:
        VideoError: an unknown suffix, MP4 without imageio-ffmpeg, or a path that cannot
            be written.
    """

    def __init__(self, path: str | os.PathLike[str], fps: float) -> None:
        if not fps > 0:
            raise VideoError(f"fps must be > 0, got {fps}")
        self.path = Path(path)
        self.format = video_format(self.path)
        self.fps = float(fps)
        self.frame_count = 0
        if self.format == "mp4":
            require_ffmpeg()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "wb"):
                pass
        except OSError as error:
            raise VideoError(f"cannot write {str(self.path)!r}: {error.strerror or error}") from None
        self._gif_frames: list[Any] = []
        self._mp4: Any = None
        self._size: tuple[int, int] | None = None

    def write(self, frame: np.ndarray) -> None:
        """Appends one frame; every frame must have the first frame's size."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"a frame must be uint8 [H, W, 3], got {frame.dtype} {frame.shape}")
        if self._size is None:
            self._size = frame.shape[:2]
        elif frame.shape[:2] != self._size:
            raise ValueError(f"every frame must be {self._size}, got {frame.shape[:2]}")
        if self.format == "gif":
            from PIL import Image

            self._gif_frames.append(Image.fromarray(frame).quantize(colors=256, dither=Image.Dither.NONE))
        else:
            if self._mp4 is None:
                import imageio.v2 as imageio

                self._mp4 = imageio.get_writer(self.path, format="FFMPEG", mode="I", fps=self.fps, codec="libx264",
                                               pixelformat="yuv420p", macro_block_size=1, quality=8)
            height, width = frame.shape[:2]  # yuv420p needs even sides: pad with one black row / column
            padded = np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0))) if (height % 2 or width % 2) else frame
            self._mp4.append_data(padded)
        self.frame_count += 1

    def close(self) -> Path:
        """Finishes the file and returns its path (a writer with no frames leaves no file)."""
        if self.format == "gif" and self._gif_frames:
            first, *rest = self._gif_frames
            first.save(self.path, save_all=True, append_images=rest, duration=max(int(round(1000 / self.fps)), 20),
                       loop=0)
            self._gif_frames = []
        elif self._mp4 is not None:
            self._mp4.close()
            self._mp4 = None
        if self.frame_count == 0:
            self.path.unlink(missing_ok=True)
        return self.path
