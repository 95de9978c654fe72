"""Media loading in LMDeploy's API server for the Intern-S1 family: the frames vLLM would see.

LMDeploy decodes a request's video before the vision model sees it (`VideoMediaIO`, with OpenCV
first, frames at `linspace(0, total - 1, n)`), so its frames differ from the ones the plugin's
vLLM loaders pick (segment centres for Intern-S1, Qwen3-VL's time-based sampling for Pro). LMDeploy
has no registry of video loaders: its `VideoMediaIO` picks a backend per request. When one of the
plugin's vision models is built (one model per server process), `use_media_loaders` makes that
choice return the model's loader, unless `LMDEPLOY_VIDEO_BACKEND` is set, which then wins as
LMDeploy documents it. It also turns image decoding failures (`PIL.UnidentifiedImageError`,
decompression bombs) into ValueError, which LMDeploy answers with HTTP 400 and the message.

Loader options come from the request's `media_io_kwargs["video"]`: `num_frames` for Intern-S1
(at most this many frames are decoded; -1 or absent: the model's frame limit); `fps`,
`min_frames`, `max_frames` for Pro, whose sampling is by time as in vLLM (`num_frames` is not
used there).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from lmdeploy.vl.media.image import ImageMediaIO
from lmdeploy.vl.media.video import VideoMediaIO
from lmdeploy.vl.media.video_loader import VideoLoader
from PIL import Image

from interns1_plugin.processing import pro_video
from interns1_plugin.processing.pro_vision import DEFAULT_PRO_VISION
from interns1_plugin.processing.video import DEFAULT_NUM_FRAMES, decode_video

#: LMDeploy's own switch for the video backend; when set, the plugin leaves the choice to it.
LMDEPLOY_VIDEO_BACKEND_ENV = "LMDEPLOY_VIDEO_BACKEND"
#: Attribute names under which the original LMDeploy methods are kept while patched.
_SAVED = "_interns1_plugin_original_"

VideoResult = tuple[np.ndarray, dict[str, Any]]


class InternS1VideoLoader(VideoLoader):
    """Intern-S1 / mini: decord, at most `num_frames` frames at the centres of equal segments."""

    backend_name = "interns1"

    def __init__(self, frame_limit: int = DEFAULT_NUM_FRAMES) -> None:
        self.frame_limit = frame_limit

    def _load(self, source: bytes | str, num_frames: int) -> VideoResult:
        video = decode_video(source, num_frames if num_frames > 0 else self.frame_limit)
        return video.frames, {
            "total_num_frames": video.total_frames,
            "frames_indices": video.indices.tolist(),
            "video_backend": self.backend_name,
        }

    def load_bytes(self, data: bytes, num_frames: int = -1, **kwargs: Any) -> VideoResult:
        return self._load(data, num_frames)

    def load_file(self, filepath: Path, num_frames: int = -1, **kwargs: Any) -> VideoResult:
        return self._load(os.fspath(filepath), num_frames)


class InternS1ProVideoLoader(VideoLoader):
    """Intern-S1-Pro: decord, Qwen3-VL's sampling by time (`fps`, `min_frames`, `max_frames`).

    Frames are resized to the published model's bounds as they are decoded, as the plugin's
    vLLM loader does; the vision model then fits them to the checkpoint's own bounds.
    """

    backend_name = "interns1_pro"

    def _load(self, source: bytes | str, **kwargs: Any) -> VideoResult:
        bounds = {k: int(kwargs[k]) for k in ("min_frames", "max_frames") if kwargs.get(k)}
        try:
            config = dataclasses.replace(DEFAULT_PRO_VISION, **bounds)
        except (TypeError, ValueError) as error:
            raise ValueError(f"invalid video frame bounds {bounds}: {error}") from None
        fps = kwargs.get("fps")
        fps = float(fps) if isinstance(fps, int | float) and fps > 0 else None
        sampled = pro_video.load_video_frames(source, config, fps=fps)
        return sampled.frames, {
            "fps": sampled.video_fps,
            "frames_indices": sampled.indices.tolist(),
            "total_num_frames": int(sampled.indices.max()) + 1,
            "video_backend": self.backend_name,
        }

    def load_bytes(self, data: bytes, num_frames: int = -1, **kwargs: Any) -> VideoResult:
        return self._load(data, **kwargs)

    def load_file(self, filepath: Path, num_frames: int = -1, **kwargs: Any) -> VideoResult:
        return self._load(os.fspath(filepath), **kwargs)


def _image_errors_as_value_errors(load: Callable[..., Image.Image]) -> Callable[..., Image.Image]:
    @functools.wraps(load)
    def wrapper(*args: Any, **kwargs: Any) -> Image.Image:
        try:
            return load(*args, **kwargs)
        except Image.DecompressionBombError as error:
            raise ValueError(f"the image is too large: {error}") from None
        except (OSError, SyntaxError) as error:  # UnidentifiedImageError is an OSError
            raise ValueError(f"the image could not be decoded: {error}") from None

    return wrapper


def _patch(cls: type, name: str, replacement: Callable[..., Any]) -> None:
    original = cls.__dict__.get(_SAVED + name, cls.__dict__[name])
    setattr(cls, _SAVED + name, original)
    setattr(cls, name, replacement)


def _unpatch(cls: type, name: str) -> None:
    original = cls.__dict__.get(_SAVED + name)
    if original is not None:
        setattr(cls, name, original)
        delattr(cls, _SAVED + name)


def use_media_loaders(make_video_loader: Callable[[], VideoLoader]) -> None:
    """Make LMDeploy's media IO in this process use the plugin's video loader and image errors.

    Idempotent; a second call replaces the video loader of the first.
    """
    original_backend = VideoMediaIO.__dict__.get(
        _SAVED + "_get_video_loader_backend", VideoMediaIO._get_video_loader_backend
    )

    def choose_backend(self: VideoMediaIO) -> VideoLoader:
        if os.environ.get(LMDEPLOY_VIDEO_BACKEND_ENV):
            return original_backend(self)
        return make_video_loader()

    _patch(VideoMediaIO, "_get_video_loader_backend", choose_backend)
    for name in ("load_bytes", "load_file"):
        original = ImageMediaIO.__dict__.get(_SAVED + name, ImageMediaIO.__dict__[name])
        _patch(ImageMediaIO, name, _image_errors_as_value_errors(original))


def restore_media_loaders() -> None:
    """Undo `use_media_loaders` (tests, or a process that serves another model next)."""
    _unpatch(VideoMediaIO, "_get_video_loader_backend")
    for name in ("load_bytes", "load_file"):
        _unpatch(ImageMediaIO, name)


__all__ = [
    "LMDEPLOY_VIDEO_BACKEND_ENV",
    "InternS1ProVideoLoader",
    "InternS1VideoLoader",
    "restore_media_loaders",
    "use_media_loaders",
]
