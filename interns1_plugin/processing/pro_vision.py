"""Intern-S1-Pro images, the Qwen3-VL way: one resize to a multiple of 32, then 16x16 patches.

Intern-S1-Pro's vision tower is Qwen3-VL's (patch 16, temporal patch 2, 2x2 spatial merge), and
its checkpoint names transformers' Qwen2-VL image processor. An image is resized, keeping its
aspect ratio, so both sides are multiples of `patch_size * merge_size` and its area lies within
`[min_pixels, max_pixels]` (`smart_resize`); it is then cut into patches whose rows are ordered
merge block by merge block, each row `channels x temporal_patch_size x patch x patch` with the
single frame repeated in time. One merge block of `merge_size**2` patches is one LLM token.

Why not transformers' processor: its fast backend needs torchvision, and both backends move the
image through several layouts in float. Here the image is resized once with PIL's bicubic filter
(the filter transformers names), the patch layout is one strided copy of the uint8 pixels, and the
normalisation writes the float32 output directly, so the cost is dominated by the output's size.
The output equals transformers' PIL-backed Qwen2-VL processor to float rounding. The checkpoint
names the fast one, whose torchvision resize is antialiased bicubic too but its own
implementation: a few resized pixels may differ from PIL's by rounding; sizes never do.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from interns1_plugin.formats import IMAGE_PAD, VISION_END, VISION_START
from interns1_plugin.processing.image import to_rgb_image

#: Intern-S1-Pro's `preprocessor_config.json` and `video_preprocessor_config.json` values.
PRO_PATCH_SIZE = 16
PRO_TEMPORAL_PATCH_SIZE = 2
PRO_MERGE_SIZE = 2
PRO_MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)
PRO_STD: tuple[float, float, float] = (0.5, 0.5, 0.5)
PRO_MIN_PIXELS = 65_536  # 256 x 256
PRO_MAX_PIXELS = 16_777_216  # 4096 x 4096
PRO_VIDEO_MIN_PIXELS = 4_096
PRO_VIDEO_MAX_PIXELS = 25_165_824  # over all frames of one video together
#: Qwen3-VL's video sampling defaults (class attributes; the checkpoint's files leave them out).
PRO_FPS = 2.0
PRO_MIN_FRAMES = 4
PRO_MAX_FRAMES = 768
#: Qwen-VL refuses images more elongated than this.
MAX_ASPECT_RATIO = 200


@dataclass(frozen=True)
class ProVisionConfig:
    """Patch geometry, normalisation and size bounds of Intern-S1-Pro's vision input (its defaults).

    The pixel bounds are areas: `min_pixels`/`max_pixels` for one image, `video_min_pixels`/
    `video_max_pixels` for all frames of one video together.
    """

    patch_size: int = PRO_PATCH_SIZE
    temporal_patch_size: int = PRO_TEMPORAL_PATCH_SIZE
    merge_size: int = PRO_MERGE_SIZE
    image_mean: tuple[float, float, float] = PRO_MEAN
    image_std: tuple[float, float, float] = PRO_STD
    min_pixels: int = PRO_MIN_PIXELS
    max_pixels: int = PRO_MAX_PIXELS
    video_min_pixels: int = PRO_VIDEO_MIN_PIXELS
    video_max_pixels: int = PRO_VIDEO_MAX_PIXELS
    fps: float = PRO_FPS
    min_frames: int = PRO_MIN_FRAMES
    max_frames: int = PRO_MAX_FRAMES

    def __post_init__(self) -> None:
        for name in ("patch_size", "temporal_patch_size", "merge_size", "min_frames", "fps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ValueError(f"need 0 < min_pixels <= max_pixels, got {self.bounds('image')}")
        if not 0 < self.video_min_pixels <= self.video_max_pixels:
            raise ValueError(
                f"need 0 < video_min_pixels <= video_max_pixels, got {self.bounds('video')}"
            )
        if self.min_frames > self.max_frames:
            raise ValueError(
                f"need min_frames <= max_frames, got {self.min_frames}, {self.max_frames}"
            )
        if len(self.image_mean) != 3 or len(self.image_std) != 3 or 0 in self.image_std:
            raise ValueError("image_mean and image_std need 3 values each, std non-zero")

    @property
    def factor(self) -> int:
        """Both resized sides are multiples of this: one merge block's width in pixels."""
        return self.patch_size * self.merge_size

    def bounds(self, kind: str) -> tuple[int, int]:
        """(min, max) pixel area for `"image"` or `"video"`."""
        if kind == "video":
            return self.video_min_pixels, self.video_max_pixels
        return self.min_pixels, self.max_pixels

    @classmethod
    def from_preprocessor_config(
        cls, data: Mapping[str, Any] | None = None, video: Mapping[str, Any] | None = None
    ) -> ProVisionConfig:
        """Read `preprocessor_config.json` (`data`) and `video_preprocessor_config.json` (`video`).

        A transformers `processor_config.json` that nests both under `image_processor` /
        `video_processor` may be passed as `data` alone. Pixel bounds come from
        `size.shortest_edge/longest_edge`, and `min_pixels`/`max_pixels` override them when
        present, as transformers' own constructor does. The vision tower is one, so the two
        files must agree on patch geometry and normalisation.
        """
        data = dict(data or {})
        if video is None and isinstance(data.get("video_processor"), Mapping):
            video = data["video_processor"]
        if isinstance(data.get("image_processor"), Mapping):
            data = dict(data["image_processor"])
        video = dict(video or {})
        shared = ("patch_size", "temporal_patch_size", "merge_size", "image_mean", "image_std")
        for key in shared:
            if key in data and key in video and _canon(data[key]) != _canon(video[key]):
                raise ValueError(
                    f"image and video processor configs disagree on {key}: "
                    f"{data[key]} vs {video[key]}"
                )
        merged = {**video, **data}
        defaults = cls()
        image_min, image_max = _pixel_bounds(data, defaults.min_pixels, defaults.max_pixels)
        video_min, video_max = _pixel_bounds(
            video, defaults.video_min_pixels, defaults.video_max_pixels
        )
        return cls(
            patch_size=int(merged.get("patch_size", defaults.patch_size)),
            temporal_patch_size=int(
                merged.get("temporal_patch_size", defaults.temporal_patch_size)
            ),
            merge_size=int(merged.get("merge_size", defaults.merge_size)),
            image_mean=_triple(merged.get("image_mean", defaults.image_mean)),
            image_std=_triple(merged.get("image_std", defaults.image_std)),
            min_pixels=image_min,
            max_pixels=image_max,
            video_min_pixels=video_min,
            video_max_pixels=video_max,
            fps=float(video.get("fps") or defaults.fps),
            min_frames=int(video.get("min_frames", defaults.min_frames)),
            max_frames=int(video.get("max_frames", defaults.max_frames)),
        )


def _canon(value: Any) -> Any:
    return tuple(float(v) for v in value) if isinstance(value, Sequence) else value


def _triple(value: Any) -> tuple[float, float, float]:
    """A per-channel statistic; a single number applies to all three channels."""
    values = [float(value)] * 3 if isinstance(value, int | float) else [float(v) for v in value]
    if len(values) != 3:
        raise ValueError(f"expected 3 per-channel values, got {value!r}")
    return values[0], values[1], values[2]


def _pixel_bounds(data: Mapping[str, Any], low: int, high: int) -> tuple[int, int]:
    size = data.get("size") or {}
    low = int(data.get("min_pixels") or size.get("shortest_edge") or low)
    high = int(data.get("max_pixels") or size.get("longest_edge") or high)
    return low, high


#: Intern-S1-Pro's preprocessing, the default everywhere.
DEFAULT_PRO_VISION = ProVisionConfig()


def smart_resize(
    height: int,
    width: int,
    factor: int = PRO_PATCH_SIZE * PRO_MERGE_SIZE,
    min_pixels: int = PRO_MIN_PIXELS,
    max_pixels: int = PRO_MAX_PIXELS,
) -> tuple[int, int]:
    """(height, width) an image is resized to, by Qwen2-VL's rule.

    Each side is rounded to the nearest multiple of `factor` (Python's `round`, halves to even);
    when the area then exceeds `max_pixels` both sides shrink by one factor and are floored (never
    below `factor`), when it falls short of `min_pixels` both grow and are ceiled. Images more
    than 200 times longer than wide (or the reverse) are refused: their thin side would vanish.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height} (width x height)")
    ratio = max(height, width) / min(height, width)
    if ratio > MAX_ASPECT_RATIO:
        raise ValueError(
            f"absolute aspect ratio must be smaller than {MAX_ASPECT_RATIO}, got {ratio} "
            f"for a {width}x{height} image"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def image_grid(
    height: int, width: int, config: ProVisionConfig = DEFAULT_PRO_VISION
) -> tuple[int, int, int]:
    """(grid_t, grid_h, grid_w) patches of an image of this size, without touching pixels."""
    resized_h, resized_w = smart_resize(height, width, config.factor, *config.bounds("image"))
    return 1, resized_h // config.patch_size, resized_w // config.patch_size


def count_tokens(grid_thw: Sequence[int] | torch.Tensor, merge_size: int = PRO_MERGE_SIZE) -> int:
    """LLM tokens of one image or video: its patches over the merge block's patch count."""
    t, h, w = (int(v) for v in grid_thw)
    return t * h * w // (merge_size * merge_size)


def count_image_tokens(
    height: int, width: int, config: ProVisionConfig = DEFAULT_PRO_VISION
) -> int:
    """Placeholder tokens of an image of `height` x `width` pixels."""
    return count_tokens(image_grid(height, width, config), config.merge_size)


def pixel_limit() -> int | None:
    """The largest image area decoded: where PIL itself refuses a file as a decompression bomb."""
    limit = Image.MAX_IMAGE_PIXELS
    return None if limit is None else 2 * int(limit)


def check_image_size(width: int, height: int, what: str = "image") -> None:
    """Refuse empty images and images past PIL's decompression-bomb limit before decoding."""
    if width <= 0 or height <= 0:
        raise ValueError(f"the {what} is empty: {width}x{height} pixels")
    limit = pixel_limit()
    if limit is not None and width * height > limit:
        raise ValueError(
            f"the {what} is too large: {width}x{height} = {width * height} pixels, more than "
            f"the {limit} PIL decodes safely (PIL.Image.MAX_IMAGE_PIXELS x 2)"
        )


#: A PIL image, an `(H, W[, C])` uint8 array or tensor (or `(C, H, W)`), or an encoded file
#: given as bytes, a path or a binary file object.
ImageInput = Image.Image | np.ndarray | torch.Tensor | bytes | str | os.PathLike | io.IOBase


def load_rgb(image: ImageInput) -> Image.Image:
    """Any accepted image as RGB; unreadable, empty or oversized input raises ValueError.

    Conversion is PIL's `convert("RGB")`, as transformers does: alpha is dropped (not blended),
    palette, greyscale and CMYK images are mapped to RGB.
    """
    if isinstance(image, bytes | str | os.PathLike | io.IOBase):
        image = _open(image)
    if isinstance(image, Image.Image):
        check_image_size(*image.size)
        try:
            image.load()  # a lazily opened file is decoded here, so damage shows up now
            return image if image.mode == "RGB" else image.convert("RGB")
        except (OSError, SyntaxError) as err:
            raise ValueError(f"the image could not be decoded: {err}") from None
    shape = tuple(image.shape)
    if len(shape) not in (2, 3):
        raise ValueError(f"expected an (H, W[, C]) image, got shape {shape}")
    channels_first = len(shape) == 3 and shape[0] in (1, 3, 4) and shape[-1] not in (1, 3, 4)
    height, width = shape[1:3] if channels_first else shape[:2]
    check_image_size(width, height)
    return to_rgb_image(image)


def _open(source: bytes | str | os.PathLike | io.IOBase) -> Image.Image:
    if isinstance(source, bytes):
        if not source:
            raise ValueError("the image is empty (0 bytes)")
        source = io.BytesIO(source)
    try:
        return Image.open(source)
    except Image.DecompressionBombError as err:
        raise ValueError(f"the image is too large: {err}") from None
    except UnidentifiedImageError:
        raise ValueError("the image could not be read: not an image format PIL knows") from None


def resize_rgb(image: Image.Image, height: int, width: int) -> np.ndarray:
    """Bicubic resize to an `(height, width, 3)` uint8 array; a same-size image is not resampled."""
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(image)


@lru_cache(maxsize=8)
def _affine(mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """`x / 255` then `(x - mean) / std`, folded into one scale and one shift per channel."""
    mean64, std64 = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
    scale = (1.0 / (255.0 * std64)).astype(np.float32)
    shift = (-mean64 / std64).astype(np.float32)
    return scale, shift


def patchify(frames: np.ndarray, config: ProVisionConfig = DEFAULT_PRO_VISION) -> torch.Tensor:
    """Normalised patches `(grid_t * grid_h * grid_w, C * T * P * P)` float32 of uint8 frames.

    `frames` is `(F, H, W, C)` with `H`, `W` multiples of `patch_size * merge_size`. One frame is
    an image: it is repeated `temporal_patch_size` times. More frames form temporal groups of
    `temporal_patch_size`, the last frame repeated to fill the last group. Rows follow Qwen2-VL:
    temporal group, merge-block row, merge-block column, row and column inside the block; inside
    a row channel, time, patch row, patch column.
    """
    num, height, width, channels = frames.shape
    p, m, tp = config.patch_size, config.merge_size, config.temporal_patch_size
    if num <= 0:
        raise ValueError("need at least one frame")
    if height % (p * m) or width % (p * m):
        raise ValueError(f"frame size {width}x{height} is not a multiple of {p * m}")
    time = 1 if num == 1 else tp
    grid_t, full = -(-num // time), num // time
    bh, bw = height // (p * m), width // (p * m)
    gathered = np.empty((grid_t, bh, bw, m, m, channels, time, p, p), dtype=np.uint8)
    _gather(frames[: full * time], gathered[:full])
    if full < grid_t:
        tail = frames[full * time :]
        _gather(
            np.concatenate([tail, np.repeat(tail[-1:], time - len(tail), axis=0)]), gathered[full:]
        )
    scale, shift = _affine(tuple(config.image_mean), tuple(config.image_std))
    rows = grid_t * bh * bw * m * m
    # NumPy asks the kernel for huge pages on large buffers (torch's allocator does not), which
    # makes first touching this output, often tens of megabytes, several times cheaper.
    out = np.empty((rows, channels * tp * p * p), dtype=np.float32)
    # An image's single frame is broadcast over the temporal axis while it is written.
    target = out.reshape(rows, channels, tp, p * p)
    source = gathered.reshape(rows, channels, time, p * p)
    np.multiply(source, scale.reshape(1, channels, 1, 1), out=target, casting="unsafe")
    target += shift.reshape(1, channels, 1, 1)
    return torch.from_numpy(out)


def _gather(frames: np.ndarray, out: np.ndarray) -> None:
    """One strided copy: `(g * T, H, W, C)` frames into `(g, bh, bw, ih, iw, C, T, py, px)`."""
    groups, bh, bw, m, _, channels, time, p, _ = out.shape
    blocks = frames.reshape(groups, time, bh, m, p, bw, m, p, channels)
    np.copyto(out, blocks.transpose(0, 2, 5, 3, 6, 8, 1, 4, 7))


class ProImage(NamedTuple):
    """One image's patches `(grid_t * grid_h * grid_w, C * T * P * P)` and grid `(1, 3)` int64."""

    pixel_values: torch.Tensor
    image_grid_thw: torch.Tensor


def preprocess_image(image: ImageInput, config: ProVisionConfig = DEFAULT_PRO_VISION) -> ProImage:
    """Resize, normalise and patch one image the way Intern-S1-Pro's processor does."""
    rgb = load_rgb(image)
    height, width = smart_resize(rgb.height, rgb.width, config.factor, *config.bounds("image"))
    pixels = resize_rgb(rgb, height, width)
    patches = patchify(pixels[None], config)
    grid = torch.tensor([[1, height // config.patch_size, width // config.patch_size]])
    return ProImage(patches, grid)


def image_prompt(grid_thw: Sequence[int] | torch.Tensor, merge_size: int = PRO_MERGE_SIZE) -> str:
    """The text that replaces one `<|vision_start|><|image_pad|><|vision_end|>` of the template."""
    return VISION_START + IMAGE_PAD * count_tokens(grid_thw, merge_size) + VISION_END


__all__ = [
    "DEFAULT_PRO_VISION",
    "MAX_ASPECT_RATIO",
    "ImageInput",
    "ProImage",
    "ProVisionConfig",
    "check_image_size",
    "count_image_tokens",
    "count_tokens",
    "image_grid",
    "image_prompt",
    "load_rgb",
    "patchify",
    "pixel_limit",
    "preprocess_image",
    "resize_rgb",
    "smart_resize",
]
