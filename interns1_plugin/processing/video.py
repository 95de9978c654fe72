"""Video frames for Intern-S1: a bounded number of evenly spaced frames, each one 448x448 tile.

The official video config samples nothing (`do_sample_frames: false`), so every decoded frame
becomes 256 tokens and a long video runs a server out of memory. Here a video is always cut down
to at most `num_frames` frames (32 by default) *before* decoding: decord's `VideoReader` seeks to
the chosen indices with `get_batch`, so the cost follows the number of frames kept, not the
length of the file. Indices are the centres of `num_frames` equal segments, as InternVL's own
video loader picks them.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

from interns1_plugin.processing import opencv_frames
from interns1_plugin.processing.image import DEFAULT_TILING, TilingConfig, resize_frames

DEFAULT_NUM_FRAMES = 32

#: A file path, file object or the file's bytes (decoded with decord), a `(T, H, W, 3)` uint8
#: array or tensor, or a sequence of frames (PIL images or `(H, W, 3)` arrays).
VideoInput = str | os.PathLike | io.IOBase | bytes | np.ndarray | torch.Tensor | Sequence[Any]


class VideoFrames(NamedTuple):
    """Normalised frames `(num_frames, 3, tile, tile)` float32 and the source indices used."""

    pixel_values: torch.Tensor
    indices: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.pixel_values.shape[0])


def sample_indices(total_frames: int, num_frames: int = DEFAULT_NUM_FRAMES) -> np.ndarray:
    """Indices of at most `num_frames` frames spread evenly over `total_frames`.

    Short videos keep every frame; longer ones take the centre frame of each of `num_frames`
    equal segments, so the first and last stretches are represented alike.
    """
    if total_frames <= 0:
        raise ValueError(f"a video needs at least one frame, got {total_frames}")
    if num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    if total_frames <= num_frames:
        return np.arange(total_frames, dtype=np.int64)
    step = total_frames / num_frames
    return ((np.arange(num_frames) + 0.5) * step).astype(np.int64)


def _is_file(video: Any) -> bool:
    return isinstance(video, (str, os.PathLike, io.IOBase, bytes))


class DecodedVideo(NamedTuple):
    """The sampled frames of a video file, `(T, H, W, 3)` uint8, and what the file holds."""

    frames: np.ndarray
    indices: np.ndarray
    total_frames: int


def load_decord() -> Any:
    """decord, imported on first use; a clear ImportError when it is missing."""
    try:
        import decord
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "decoding video files needs decord (`pip install decord`); "
            "pass decoded frames as a (T, H, W, 3) uint8 array instead"
        ) from err
    return decord


def _open_reader(source: str | io.IOBase) -> Any:
    """decord's reader; a file it cannot read is the caller's bad input, hence ValueError."""
    decord = load_decord()
    try:
        return decord.VideoReader(source, ctx=decord.cpu(0))
    except (RuntimeError, decord.DECORDError):
        raise ValueError(
            "the video could not be decoded: it is corrupt, truncated or not a video format "
            "the decoder reads"
        ) from None


def decode_video(
    video: str | os.PathLike | io.IOBase | bytes, num_frames: int | None = DEFAULT_NUM_FRAMES
) -> DecodedVideo:
    """Decode only the sampled frames (every frame when `num_frames` is None) with decord.

    Every way a file can be unusable (empty, corrupt, no frames, undecodable frames) raises
    ValueError, so a server answers a bad upload with a client error instead of a crash.
    """
    if isinstance(video, bytes):
        if not len(video):
            raise ValueError("the video is empty (0 bytes)")
        video = io.BytesIO(video)
    reader = _open_reader(os.fspath(video) if isinstance(video, str | os.PathLike) else video)
    total = len(reader)
    if total <= 0:
        raise ValueError("the video has no frames")
    indices = sample_indices(total, total if num_frames is None else num_frames)
    try:
        frames = reader.get_batch(indices.tolist()).asnumpy()
    except (RuntimeError, load_decord().DECORDError) as error:
        if not opencv_frames.is_decord_stride_error(error):
            message = "the video's frames could not be decoded: the file is corrupt"
            raise ValueError(message) from None
        frames = opencv_frames.read_frames(video, indices)
    return DecodedVideo(frames, indices, total)


def select_frames(
    video: VideoInput, num_frames: int = DEFAULT_NUM_FRAMES
) -> tuple[Any, np.ndarray]:
    """The sampled frames of any accepted video input, and their indices in the source."""
    if _is_file(video):
        decoded = decode_video(video, num_frames)
        return decoded.frames, decoded.indices
    if isinstance(video, torch.Tensor):
        video = video.detach().cpu().numpy()
    if isinstance(video, np.ndarray):
        if video.ndim != 4:
            raise ValueError(f"expected a (T, H, W, C) array, got shape {video.shape}")
        indices = sample_indices(video.shape[0], num_frames)
        return video[indices], indices
    frames = list(video)
    indices = sample_indices(len(frames), num_frames)
    return [frames[i] for i in indices], indices


def preprocess_video(
    video: VideoInput,
    num_frames: int = DEFAULT_NUM_FRAMES,
    config: TilingConfig = DEFAULT_TILING,
) -> VideoFrames:
    """Sample, resize and normalise one video into single-tile frames (`config` sets the tile
    size and normalisation; frames are never cut into a grid)."""
    frames, indices = select_frames(video, num_frames)
    return VideoFrames(resize_frames(frames, config), indices)


__all__ = [
    "DEFAULT_NUM_FRAMES",
    "DecodedVideo",
    "VideoFrames",
    "VideoInput",
    "decode_video",
    "preprocess_video",
    "sample_indices",
    "select_frames",
]
