"""Engine-agnostic Intern-S1 preprocessing: image tiling, video frames, prompt placeholders;
for Intern-S1-Pro, Qwen3-VL-style patches and time series.

The core functions need only NumPy, PIL and torch (decord for video files). The transformers
classes (`InternS1Processor`, `InternS1ProProcessor` and their image / video processors) load on
first access, so importing this package does not import transformers.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from interns1_plugin.processing.image import ImageTiles, TilingConfig, count_tiles, tile_image
from interns1_plugin.processing.pro_video import (
    ProVideo,
    count_video_tokens,
    sample_video_frames,
    video_prompt,
)
from interns1_plugin.processing.pro_video import preprocess_video as preprocess_pro_video
from interns1_plugin.processing.pro_vision import (
    DEFAULT_PRO_VISION,
    ProImage,
    ProVisionConfig,
    count_image_tokens,
    image_prompt,
    preprocess_image,
)
from interns1_plugin.processing.prompt import (
    expand_batch,
    expand_placeholders,
    image_placeholder,
    video_placeholder,
)
from interns1_plugin.processing.time_series import (
    TimeSeriesInput,
    TimeSeriesInputError,
    num_time_series_tokens,
    preprocess_time_series,
    time_series_placeholder,
)
from interns1_plugin.processing.video import (
    DEFAULT_NUM_FRAMES,
    VideoFrames,
    preprocess_video,
    sample_indices,
)

_LAZY = {
    "InternS1Processor": "interns1_plugin.processing.processor",
    "InternS1ImageProcessor": "interns1_plugin.processing.image_processor",
    "InternS1VideoProcessor": "interns1_plugin.processing.video_processor",
    "InternS1ProProcessor": "interns1_plugin.processing.pro_processor",
    "InternS1ProImageProcessor": "interns1_plugin.processing.pro_image_processor",
    "InternS1ProVideoProcessor": "interns1_plugin.processing.pro_video_processor",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_NUM_FRAMES",
    "DEFAULT_PRO_VISION",
    "ProImage",
    "ProVideo",
    "ProVisionConfig",
    "TimeSeriesInput",
    "TimeSeriesInputError",
    "count_image_tokens",
    "count_video_tokens",
    "image_prompt",
    "num_time_series_tokens",
    "preprocess_image",
    "preprocess_pro_video",
    "preprocess_time_series",
    "sample_video_frames",
    "time_series_placeholder",
    "video_prompt",
    "ImageTiles",
    "InternS1ImageProcessor",
    "InternS1ProImageProcessor",
    "InternS1ProProcessor",
    "InternS1ProVideoProcessor",
    "InternS1Processor",
    "InternS1VideoProcessor",
    "TilingConfig",
    "VideoFrames",
    "count_tiles",
    "expand_batch",
    "expand_placeholders",
    "image_placeholder",
    "preprocess_video",
    "sample_indices",
    "tile_image",
    "video_placeholder",
]
