"""transformers-facing Intern-S1-Pro video processor over the plugin's Qwen3-VL video code.

It reads `video_preprocessor_config.json` (the image keys, with `size` bounding the area of all
frames of one video together, plus `fps`, `min_frames`, `max_frames`) and hands each video to
`processing.pro_video`, the code vLLM's path runs: frames sampled by time, resized once,
patched in pairs, each pair timed. The class the file names (`InternS1ProVideoProcessor`) is
only known to the checkpoint's own code; this is the plugin's class of that name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from transformers.image_processing_utils import BatchFeature
from transformers.video_processing_utils import VideoProcessorMixin

from interns1_plugin.processing import pro_video
from interns1_plugin.processing.pro_image_processor import VISION_KEYS, settings_of, with_options
from interns1_plugin.processing.pro_vision import (
    PRO_FPS,
    PRO_MAX_FRAMES,
    PRO_MEAN,
    PRO_MERGE_SIZE,
    PRO_MIN_FRAMES,
    PRO_PATCH_SIZE,
    PRO_STD,
    PRO_TEMPORAL_PATCH_SIZE,
    PRO_VIDEO_MAX_PIXELS,
    PRO_VIDEO_MIN_PIXELS,
    ProVisionConfig,
)
from interns1_plugin.processing.return_tensors import as_return_tensors
from interns1_plugin.processing.video_processor import as_video_list

#: The keys of `video_preprocessor_config.json` `ProVisionConfig.from_preprocessor_config` reads.
VIDEO_KEYS = (*VISION_KEYS, "fps", "min_frames", "max_frames")
#: Per-call overrides, named as `ProVisionConfig` fields.
VIDEO_OPTIONS = ("video_min_pixels", "video_max_pixels", "fps", "min_frames", "max_frames")


class InternS1ProVideoProcessor(VideoProcessorMixin):
    """Qwen3-VL's video preprocessing: 2 frames a second by default, 4 to 768 frames."""

    model_input_names = ["pixel_values_videos", "video_grid_thw"]

    def __init__(
        self,
        patch_size: int = PRO_PATCH_SIZE,
        temporal_patch_size: int = PRO_TEMPORAL_PATCH_SIZE,
        merge_size: int = PRO_MERGE_SIZE,
        image_mean: Sequence[float] = PRO_MEAN,
        image_std: Sequence[float] = PRO_STD,
        size: Mapping[str, int] | None = None,
        fps: float = PRO_FPS,
        min_frames: int = PRO_MIN_FRAMES,
        max_frames: int = PRO_MAX_FRAMES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.patch_size = int(patch_size)
        self.temporal_patch_size = int(temporal_patch_size)
        self.merge_size = int(merge_size)
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        default = {"shortest_edge": PRO_VIDEO_MIN_PIXELS, "longest_edge": PRO_VIDEO_MAX_PIXELS}
        self.size = dict(size or default)
        self.fps = float(fps)
        self.min_frames = int(min_frames)
        self.max_frames = int(max_frames)
        self.vision_config()  # a bad file fails here, not at the first video

    def settings(self) -> dict[str, Any]:
        """This file's keys as `ProVisionConfig.from_preprocessor_config` reads them (`video=`)."""
        return settings_of(self, VIDEO_KEYS)

    def vision_config(self, **overrides: Any) -> ProVisionConfig:
        """This file's video settings (image bounds at defaults), `VIDEO_OPTIONS` overridable."""
        config = ProVisionConfig.from_preprocessor_config(None, self.settings())
        return with_video_options(config, overrides)

    def __call__(self, videos: Any, **kwargs: Any) -> BatchFeature:
        return self.preprocess(videos, **kwargs)

    def preprocess(
        self,
        videos: Any,
        video_fps: float | None = None,
        return_tensors: str | None = "pt",
        **kwargs: Any,
    ) -> BatchFeature:
        """`pixel_values_videos`, `video_grid_thw` and each video's `video_timestamps` (seconds
        of each temporal group).

        Files are sampled at their own frame rate; decoded frames at `video_fps` (24 if not
        given). `VIDEO_OPTIONS` apply per call; other keyword arguments are ignored.
        """
        config = self.vision_config(**kwargs)
        items = [
            pro_video.preprocess_video(video, config, video_fps=video_fps)
            for video in as_video_list(videos)
        ]
        if not items:
            raise ValueError("no videos to process")
        return BatchFeature(data=video_features(items, return_tensors))


def with_video_options(config: ProVisionConfig, options: Mapping[str, Any]) -> ProVisionConfig:
    """`config` with the given `VIDEO_OPTIONS` (None means unchanged) applied."""
    return with_options(config, options, VIDEO_OPTIONS)


def video_features(
    items: Sequence[pro_video.ProVideo], return_tensors: str | None = "pt"
) -> dict[str, Any]:
    """The model inputs of preprocessed videos, in order; timestamps stay a list per video."""
    data: dict[str, Any] = {
        "pixel_values_videos": torch.cat([v.pixel_values_videos for v in items]),
        "video_grid_thw": torch.cat([v.video_grid_thw for v in items]),
    }
    data = as_return_tensors(data, return_tensors)
    data["video_timestamps"] = [list(v.timestamps) for v in items]
    return data


__all__ = [
    "VIDEO_KEYS",
    "VIDEO_OPTIONS",
    "InternS1ProVideoProcessor",
    "video_features",
    "with_video_options",
]
