"""Engine-agnostic Intern-S1 preprocessing: image tiling, video frames, prompt placeholders.

The core functions need only NumPy, PIL and torch (decord for video files). The transformers
classes (`InternS1Processor` and its image / video processors) load on first access, so importing
this package does not import transformers.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from interns1_plugin.processing.image import ImageTiles, TilingConfig, count_tiles, tile_image
from interns1_plugin.processing.prompt import (
    expand_batch,
    expand_placeholders,
    image_placeholder,
    video_placeholder,
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
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_NUM_FRAMES",
    "ImageTiles",
    "InternS1ImageProcessor",
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
