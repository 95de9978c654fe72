"""Reading sampled frames with OpenCV, for the files decord decodes wrongly.

decord 0.6 mis-strides frames whose row size it pads (seen with 16, 24 and 48-pixel-wide MJPG
and MPEG-4 frames): its batch read fails with "DECORDArrayCopyFromTo: The size must exactly
match" and its single-frame read returns a 4-channel, shifted image. Those files are valid, so the
video readers fall back to OpenCV here: frames are grabbed in order and only the sampled ones are
decoded, one at a time, so memory follows the frames kept.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np


def is_decord_stride_error(error: BaseException) -> bool:
    return "size must exactly match" in str(error)


@contextmanager
def _as_path(source: str | os.PathLike | io.IOBase) -> Iterator[str]:
    """OpenCV opens paths only: file objects are spooled to a temporary file."""
    if isinstance(source, str | os.PathLike):
        yield os.fspath(source)
        return
    source.seek(0)
    with tempfile.NamedTemporaryFile(suffix=".video") as handle:
        while chunk := source.read(1 << 20):
            handle.write(chunk)
        handle.flush()
        yield handle.name


def iter_frames(
    source: str | os.PathLike | io.IOBase, indices: Sequence[int] | np.ndarray
) -> Iterator[np.ndarray]:
    """RGB `(H, W, 3)` uint8 frames at ascending `indices`, in that order."""
    try:
        import cv2
    except ImportError as err:  # pragma: no cover - depends on the environment
        message = "the video could not be decoded (decord failed and OpenCV is absent)"
        raise ValueError(message) from err
    wanted = [int(i) for i in indices]
    if wanted != sorted(wanted):
        raise ValueError("frame indices must be ascending")
    with _as_path(source) as path:
        capture = cv2.VideoCapture(path)
        try:
            position = 0
            for index in wanted:
                while position <= index:
                    if not capture.grab():
                        raise ValueError(f"the video ended before frame {index}")
                    position += 1
                ok, frame = capture.retrieve()
                if not ok or frame is None:
                    raise ValueError(f"frame {index} of the video could not be decoded")
                yield np.ascontiguousarray(frame[..., ::-1])
        finally:
            capture.release()


def read_frames(
    source: str | os.PathLike | io.IOBase, indices: Sequence[int] | np.ndarray
) -> np.ndarray:
    """All sampled frames at once, `(T, H, W, 3)` uint8 (for bounded frame counts)."""
    return np.stack(list(iter_frames(source, indices)))


__all__ = ["is_decord_stride_error", "iter_frames", "read_frames"]
