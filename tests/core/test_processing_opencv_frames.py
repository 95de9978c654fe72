"""Videos decord misreads (some frame widths) are decoded through OpenCV instead."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from interns1_plugin.processing.opencv_frames import iter_frames
from interns1_plugin.processing.pro_video import load_video_frames
from interns1_plugin.processing.pro_vision import DEFAULT_PRO_VISION
from interns1_plugin.processing.video import decode_video

cv2 = pytest.importorskip("cv2")
pytest.importorskip("decord")

RGB = (200, 100, 30)


def _mjpg(path: Path, size: int, frames: int = 8) -> bytes:
    """Frame i is the colour RGB with its red channel lowered by 10 * i."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 4, (size, size))
    for i in range(frames):
        rgb = np.array([RGB[0] - 10 * i, RGB[1], RGB[2]], np.uint8)
        writer.write(np.broadcast_to(rgb[::-1], (size, size, 3)).copy())
    writer.release()
    return path.read_bytes()


@pytest.mark.parametrize("size", [16, 24, 48, 64])
def test_frame_sizes_decord_pads_are_read_correctly(tmp_path: Path, size: int):
    data = _mjpg(tmp_path / "clip.avi", size)
    decoded = decode_video(data, 4)
    assert decoded.frames.shape == (4, size, size, 3)
    red = decoded.frames[:, size // 2, size // 2, 0].astype(int)
    expected = [RGB[0] - 10 * int(i) for i in decoded.indices]
    assert np.abs(red - expected).max() <= 4  # JPEG rounding
    assert np.abs(decoded.frames[0, size // 2, size // 2, 1:].astype(int) - RGB[1:]).max() <= 4


@pytest.mark.parametrize("size", [16, 48])
def test_pro_reader_falls_back_too(tmp_path: Path, size: int):
    sampled = load_video_frames(_mjpg(tmp_path / "clip.avi", size), DEFAULT_PRO_VISION)
    assert len(sampled.frames) == len(sampled.indices) >= DEFAULT_PRO_VISION.min_frames
    centre = sampled.frames[0, sampled.frames.shape[1] // 2, sampled.frames.shape[2] // 2]
    assert np.abs(centre.astype(int) - RGB).max() <= 6


def test_iter_frames_takes_only_ascending_indices(tmp_path: Path):
    path = tmp_path / "clip.avi"
    _mjpg(path, 32)
    assert len(list(iter_frames(path, [0, 3, 7]))) == 3
    with pytest.raises(ValueError, match="ascending"):
        list(iter_frames(path, [3, 1]))
    with pytest.raises(ValueError, match="ended before frame 20"):
        list(iter_frames(path, [20]))
