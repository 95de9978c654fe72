"""Intern-S1-Pro videos, the Qwen3-VL way: 2 frames a second, patched in pairs, each pair timed.

Frames are sampled by Qwen3-VL's rule (`sample_video_frames`): `fps` frames per second of the
source, at least `min_frames` (4) and at most `max_frames` (768) or the frames the video has,
spread evenly from the first frame to the last. All kept frames are resized to one size chosen
from their total area (`smart_resize_video`), an odd count is padded by repeating the last frame,
and each pair of frames becomes one temporal group of patches. In the prompt every group is
labelled with the mean time of its two frames, `<{t:.1f} seconds>` (`video_prompt`).

A file is decoded with decord, which seeks to the sampled frames only, in chunks of bounded size
that are resized as they arrive: memory follows the resized video, never the decoded one.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image

from interns1_plugin.formats import VIDEO_PAD, VISION_END, VISION_START
from interns1_plugin.processing import opencv_frames
from interns1_plugin.processing.image import to_rgb_image
from interns1_plugin.processing.pro_vision import (
    DEFAULT_PRO_VISION,
    MAX_ASPECT_RATIO,
    PRO_MERGE_SIZE,
    PRO_PATCH_SIZE,
    PRO_TEMPORAL_PATCH_SIZE,
    PRO_VIDEO_MAX_PIXELS,
    PRO_VIDEO_MIN_PIXELS,
    ProVisionConfig,
    check_image_size,
    count_tokens,
    patchify,
)
from interns1_plugin.processing.video import load_decord

#: The source frame rate assumed when it is unknown, as transformers assumes.
DEFAULT_VIDEO_FPS = 24.0
#: Bytes of decoded frames held at once while a file is read (at least one frame).
DECODE_BUDGET = 256 * 1024 * 1024

#: A file path, file object or the file's bytes (decoded with decord), a `(T, H, W, 3)` uint8
#: array or tensor, or a sequence of frames (PIL images or `(H, W, 3)` uint8 arrays).
VideoInput = str | os.PathLike | io.IOBase | bytes | np.ndarray | torch.Tensor | Sequence[Any]


def sample_video_frames(
    num_frames_total: int,
    video_fps: float | None,
    config: ProVisionConfig = DEFAULT_PRO_VISION,
    num_frames: int | None = None,
    fps: float | None = None,
) -> np.ndarray:
    """Indices of the frames kept from a video of `num_frames_total` frames at `video_fps`.

    Without `num_frames`, `int(duration * fps)` frames are kept (`fps` defaults to the config's
    2). Either count is then held within `[min_frames, max_frames]` and to the frames the video
    has; the indices are `linspace(0, total - 1, count)` rounded half to even. `num_frames` and
    `fps` are exclusive. The count is not rounded to the temporal patch: an odd count is padded
    by repeating the last frame when the frames are patched, as Qwen3-VL does.
    """
    if num_frames_total <= 0:
        raise ValueError(f"a video needs at least one frame, got {num_frames_total}")
    if num_frames is not None and fps is not None:
        raise ValueError("num_frames and fps are mutually exclusive, give one of them")
    if num_frames is None:
        rate = config.fps if fps is None else fps
        if not rate > 0:
            raise ValueError(f"fps must be positive, got {rate}")
        num_frames = int(num_frames_total / _source_fps(video_fps) * rate)
    elif num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    count = min(max(num_frames, config.min_frames), config.max_frames, num_frames_total)
    return np.linspace(0, num_frames_total - 1, count).round().astype(np.int64)


def _source_fps(video_fps: float | None) -> float:
    """The source frame rate, or the assumed one when it is missing or meaningless."""
    if video_fps is None or not math.isfinite(video_fps) or video_fps <= 0:
        return DEFAULT_VIDEO_FPS
    return float(video_fps)


def video_timestamps(
    indices: Sequence[int] | np.ndarray,
    video_fps: float | None,
    temporal_patch_size: int = PRO_TEMPORAL_PATCH_SIZE,
) -> list[float]:
    """Seconds of each temporal group: the mean time of its first and last frame.

    The indices are padded with the last one to a multiple of `temporal_patch_size`, matching
    the repeated frames.
    """
    times = [int(i) / _source_fps(video_fps) for i in indices]
    if not times:
        raise ValueError("a video needs at least one frame")
    times += [times[-1]] * (-len(times) % temporal_patch_size)
    step = temporal_patch_size
    return [(times[i] + times[i + step - 1]) / 2 for i in range(0, len(times), step)]


def smart_resize_video(
    num_frames: int,
    height: int,
    width: int,
    factor: int = PRO_PATCH_SIZE * PRO_MERGE_SIZE,
    temporal_factor: int = PRO_TEMPORAL_PATCH_SIZE,
    min_pixels: int = PRO_VIDEO_MIN_PIXELS,
    max_pixels: int = PRO_VIDEO_MAX_PIXELS,
) -> tuple[int, int]:
    """(height, width) every frame is resized to, by Qwen3-VL's video rule.

    Like `smart_resize`, but the area bounds hold for all frames together (the frame count
    rounded to `temporal_factor`, halves to even). Frames thinner than `factor` are first scaled
    up, truncating, until their thin side is `factor`.
    """
    if num_frames < temporal_factor:
        raise ValueError(
            f"a video needs at least {temporal_factor} frames, got {num_frames}; "
            "send a single frame as an image"
        )
    if height <= 0 or width <= 0:
        raise ValueError(f"frame size must be positive, got {width}x{height} (width x height)")
    if height < factor or width < factor:
        scale = max(factor / height, factor / width)
        height, width = int(height * scale), int(width * scale)
    ratio = max(height, width) / min(height, width)
    if ratio > MAX_ASPECT_RATIO:
        raise ValueError(
            f"absolute aspect ratio must be smaller than {MAX_ASPECT_RATIO}, got {ratio} "
            f"for {width}x{height} frames"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    t_bar = round(num_frames / temporal_factor) * temporal_factor
    if t_bar * h_bar * w_bar > max_pixels:
        beta = math.sqrt((num_frames * height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif t_bar * h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (num_frames * height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def video_grid(
    num_frames: int, height: int, width: int, config: ProVisionConfig = DEFAULT_PRO_VISION
) -> tuple[int, int, int]:
    """(grid_t, grid_h, grid_w) of `num_frames` sampled frames of `height` x `width` pixels."""
    resized_h, resized_w = smart_resize_video(
        num_frames,
        height,
        width,
        config.factor,
        config.temporal_patch_size,
        *config.bounds("video"),
    )
    grid_t = -(-num_frames // config.temporal_patch_size)
    return grid_t, resized_h // config.patch_size, resized_w // config.patch_size


def count_video_tokens(
    num_frames: int, height: int, width: int, config: ProVisionConfig = DEFAULT_PRO_VISION
) -> int:
    """Video placeholder tokens of `num_frames` sampled frames (the timestamps not counted)."""
    return count_tokens(video_grid(num_frames, height, width, config), config.merge_size)


class SampledVideo(NamedTuple):
    """Sampled frames resized for the model `(T, h, w, 3)` uint8, and where they came from."""

    frames: np.ndarray
    indices: np.ndarray
    video_fps: float


class ProVideo(NamedTuple):
    """Patches `(grid_t * grid_h * grid_w, C * T * P * P)` float32, grid `(1, 3)` int64 and the
    seconds of each of the `grid_t` temporal groups."""

    pixel_values_videos: torch.Tensor
    video_grid_thw: torch.Tensor
    timestamps: list[float]


@lru_cache(maxsize=1)
def _resize_pool() -> ThreadPoolExecutor:
    """PIL releases the GIL while resampling, so frames are resized side by side."""
    workers = max(2, min(8, os.cpu_count() or 2))
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="interns1-pro-resize")


# A forked child inherits the pool object but not its threads; it builds its own instead.
os.register_at_fork(after_in_child=_resize_pool.cache_clear)


class _Resizer:
    """Resizes frames of one size into consecutive slots of a preallocated uint8 video."""

    def __init__(self, num_frames: int, height: int, width: int, config: ProVisionConfig):
        check_image_size(width, height, "video frame")
        self.size = (height, width)
        self.target = smart_resize_video(
            num_frames,
            height,
            width,
            config.factor,
            config.temporal_patch_size,
            *config.bounds("video"),
        )
        self.out = np.empty((num_frames, *self.target, 3), dtype=np.uint8)
        self.filled = 0

    def add(self, frames: Sequence[Any], picks: Sequence[int] | None = None) -> None:
        """Resize `frames` (or `frames[i]` for `i` in `picks`) into the next slots."""
        count = len(frames) if picks is None else len(picks)

        def one(slot: int) -> None:
            rgb = to_rgb_image(frames[slot if picks is None else int(picks[slot])])
            if (rgb.height, rgb.width) != self.size:
                raise ValueError(
                    f"all frames of a video must have one size: {rgb.width}x{rgb.height} "
                    f"after {self.size[1]}x{self.size[0]}"
                )
            height, width = self.target
            if rgb.size != (width, height):
                rgb = rgb.resize((width, height), Image.Resampling.BICUBIC)
            self.out[self.filled + slot] = np.asarray(rgb)

        list(_resize_pool().map(one, range(count)))
        self.filled += count


def _frame_shape(frame: Any) -> tuple[int, int]:
    """(height, width) of one frame given as a PIL image or an `(H, W[, C])` array."""
    if isinstance(frame, Image.Image):
        return frame.height, frame.width
    shape = tuple(frame.shape)
    return int(shape[0]), int(shape[1])


def _read_file(
    video: str | os.PathLike | io.IOBase | bytes,
    config: ProVisionConfig,
    num_frames: int | None,
    fps: float | None,
) -> SampledVideo:
    """Decode only the sampled frames, chunk by chunk, resizing each chunk as it arrives."""
    decord = load_decord()
    if isinstance(video, bytes):
        if not video:
            raise ValueError("the video is empty (0 bytes)")
        video = io.BytesIO(video)
    source = os.fspath(video) if isinstance(video, str | os.PathLike) else video
    failures = (RuntimeError, decord.DECORDError)
    try:
        reader = decord.VideoReader(source, ctx=decord.cpu(0))
        total, video_fps = len(reader), _source_fps(reader.get_avg_fps())
    except failures:
        raise ValueError(
            "the video could not be decoded: it is corrupt, truncated or not a video format "
            "the decoder reads"
        ) from None
    if total <= 0:
        raise ValueError("the video has no frames")
    indices = sample_video_frames(total, video_fps, config, num_frames, fps)

    def decode(picks: np.ndarray) -> np.ndarray:
        try:
            return reader.get_batch(picks.tolist()).asnumpy()
        except failures as error:
            if opencv_frames.is_decord_stride_error(error):
                raise _DecordMisread from None
            raise ValueError("the video's frames could not be decoded: it is corrupt") from None

    try:
        first = decode(indices[:1])  # one frame tells the size before more are decoded
        resizer = _Resizer(len(indices), *first.shape[1:3], config)
        resizer.add(first)
        chunk = max(1, DECODE_BUDGET // first[0].nbytes)
        for start in range(1, len(indices), chunk):
            resizer.add(decode(indices[start : start + chunk]))
    except _DecordMisread:
        resizer = _resize_with_opencv(video, indices, config)
    return SampledVideo(resizer.out, indices, video_fps)


class _DecordMisread(Exception):
    """decord cannot copy this file's frames out (a row-padding bug); OpenCV can."""


def _resize_with_opencv(
    video: io.IOBase | str, indices: np.ndarray, config: ProVisionConfig
) -> _Resizer:
    frames = opencv_frames.iter_frames(video, indices)
    first = next(frames)[None]
    resizer = _Resizer(len(indices), *first.shape[1:3], config)
    resizer.add(first)
    for frame in frames:
        resizer.add(frame[None])
    return resizer


def load_video_frames(
    video: VideoInput,
    config: ProVisionConfig = DEFAULT_PRO_VISION,
    *,
    video_fps: float | None = None,
    num_frames: int | None = None,
    fps: float | None = None,
    frame_indices: Sequence[int] | np.ndarray | None = None,
) -> SampledVideo:
    """Sample a video's frames and resize them to the model's size.

    Files are decoded with their own frame rate. Decoded frames are sampled like a file, with
    `video_fps` as their rate (24 when not given); frames that were already sampled are passed
    with `frame_indices`, their positions in the source, and are all kept (at most
    `max_frames`). `video_fps` then only times them.
    """
    if isinstance(video, str | os.PathLike | io.IOBase | bytes):
        if frame_indices is not None:
            raise ValueError("frame_indices describe decoded frames; a file is sampled here")
        return _read_file(video, config, num_frames, fps)
    if isinstance(video, torch.Tensor):
        video = video.detach().cpu().numpy()
    if isinstance(video, np.ndarray):
        if video.ndim != 4:
            raise ValueError(f"expected a (T, H, W, C) video array, got shape {video.shape}")
        if video.shape[1] in (1, 3, 4) and video.shape[-1] not in (1, 3, 4):
            video = np.moveaxis(video, 1, -1)  # (T, C, H, W): a view, not a copy
        frames: Sequence[Any] = video
    else:
        frames = list(video)
    if not len(frames):
        raise ValueError("a video needs at least one frame")
    rate = _source_fps(video_fps)
    picks: np.ndarray | None = None
    if frame_indices is None:
        indices = picks = sample_video_frames(len(frames), rate, config, num_frames, fps)
    else:
        indices = np.asarray(frame_indices, dtype=np.int64).reshape(-1)
        if len(indices) != len(frames):
            raise ValueError(f"{len(indices)} frame_indices for {len(frames)} frames")
        if num_frames is not None or fps is not None:
            raise ValueError("frames with frame_indices are already sampled: drop num_frames/fps")
        if len(indices) > config.max_frames:
            raise ValueError(
                f"{len(indices)} sampled frames, more than max_frames ({config.max_frames}); "
                "pass the video unsampled or sample fewer"
            )
    resizer = _Resizer(len(indices), *_frame_shape(frames[0]), config)
    resizer.add(frames, picks)
    return SampledVideo(resizer.out, indices, rate)


def preprocess_video(
    video: VideoInput,
    config: ProVisionConfig = DEFAULT_PRO_VISION,
    *,
    video_fps: float | None = None,
    num_frames: int | None = None,
    fps: float | None = None,
    frame_indices: Sequence[int] | np.ndarray | None = None,
) -> ProVideo:
    """Sample, resize, normalise and patch one video; see `load_video_frames` for the inputs."""
    sampled = load_video_frames(
        video,
        config,
        video_fps=video_fps,
        num_frames=num_frames,
        fps=fps,
        frame_indices=frame_indices,
    )
    count, height, width = sampled.frames.shape[:3]
    grid_t = -(-count // config.temporal_patch_size)
    grid = torch.tensor([[grid_t, height // config.patch_size, width // config.patch_size]])
    timestamps = video_timestamps(sampled.indices, sampled.video_fps, config.temporal_patch_size)
    return ProVideo(patchify(sampled.frames, config), grid, timestamps)


def video_prompt(
    grid_thw: Sequence[int] | torch.Tensor,
    timestamps: Sequence[float],
    merge_size: int = PRO_MERGE_SIZE,
) -> str:
    """The text that replaces one `<|vision_start|><|video_pad|><|vision_end|>` of the template.

    Per temporal group: `<{t:.1f} seconds><|vision_start|>` + `<|video_pad|>` x tokens per
    group + `<|vision_end|>`, groups joined with nothing between them.
    """
    grid_t, grid_h, grid_w = (int(v) for v in grid_thw)
    if len(timestamps) != grid_t:
        raise ValueError(f"{len(timestamps)} timestamps for {grid_t} temporal groups")
    group = VISION_START + VIDEO_PAD * count_tokens((1, grid_h, grid_w), merge_size) + VISION_END
    return "".join(f"<{t:.1f} seconds>{group}" for t in timestamps)


__all__ = [
    "DECODE_BUDGET",
    "DEFAULT_VIDEO_FPS",
    "ProVideo",
    "SampledVideo",
    "VideoInput",
    "count_video_tokens",
    "load_video_frames",
    "preprocess_video",
    "sample_video_frames",
    "smart_resize_video",
    "video_grid",
    "video_prompt",
    "video_timestamps",
]
