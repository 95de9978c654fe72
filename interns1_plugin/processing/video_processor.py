"""transformers-facing video processor over the plugin's bounded frame sampling.

Reads `video_preprocessor_config.json` (InternVL keys) but never decodes or keeps more than
`num_frames` frames per video (32 unless the file or the call says otherwise), because the
published config's `do_sample_frames: false` turns a long video into an out-of-memory error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from transformers.image_processing_utils import BatchFeature
from transformers.video_processing_utils import VideoProcessorMixin

from interns1_plugin.processing.image import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    TILE_SIZE,
    TilingConfig,
    concat_tiles,
)
from interns1_plugin.processing.return_tensors import as_return_tensors
from interns1_plugin.processing.video import DEFAULT_NUM_FRAMES, VideoInput, preprocess_video


def as_video_list(videos: Any) -> list[VideoInput]:
    """One video or a list of videos, as a list (a list of frames counts as one video)."""
    if videos is None:
        return []
    if isinstance(videos, (list, tuple)) and videos and not _is_frame(videos[0]):
        return list(videos)
    return [videos]


def _is_frame(item: Any) -> bool:
    """A single frame (PIL image or 3-D array), as opposed to a whole video."""
    shape = getattr(item, "shape", None)
    return hasattr(item, "getpixel") or (shape is not None and len(shape) == 3)


class InternS1VideoProcessor(VideoProcessorMixin):
    """Evenly spaced frames, each resized to one 448x448 tile and ImageNet-normalised."""

    model_input_names = ["pixel_values_videos"]

    def __init__(
        self,
        size: Mapping[str, int] | None = None,
        image_mean: Sequence[float] = IMAGENET_MEAN,
        image_std: Sequence[float] = IMAGENET_STD,
        num_frames: int | None = DEFAULT_NUM_FRAMES,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.size = dict(size or {"height": TILE_SIZE, "width": TILE_SIZE})
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        self.num_frames = DEFAULT_NUM_FRAMES if num_frames is None else int(num_frames)

    def tiling(self) -> TilingConfig:
        """Frames are single tiles: the grid is fixed at 1x1 and there is no thumbnail."""
        return TilingConfig(
            tile_size=int(self.size.get("height", TILE_SIZE)),
            min_tiles=1,
            max_tiles=1,
            mean=tuple(self.image_mean),
            std=tuple(self.image_std),
        )

    def __call__(self, videos: Any, **kwargs: Any) -> BatchFeature:
        return self.preprocess(videos, **kwargs)

    def preprocess(
        self,
        videos: Any,
        num_frames: int | None = None,
        return_tensors: str | None = "pt",
        **_: Any,
    ) -> BatchFeature:
        """All sampled frames of all videos in order, and the frame count of each video."""
        limit = self.num_frames if num_frames is None else int(num_frames)
        config = self.tiling()
        results = [preprocess_video(video, limit, config) for video in as_video_list(videos)]
        if not results:
            raise ValueError("no videos to process")
        data = {
            "pixel_values_videos": concat_tiles([r.pixel_values for r in results]),
            "video_num_frames": torch.tensor([r.num_frames for r in results]),
        }
        return BatchFeature(data=as_return_tensors(data, return_tensors))


__all__ = ["InternS1VideoProcessor", "as_video_list"]
