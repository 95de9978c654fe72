"""transformers-facing Intern-S1-Pro image processor over the plugin's Qwen3-VL patching.

It reads the checkpoint's `preprocessor_config.json` (Qwen2-VL keys: `patch_size`,
`temporal_patch_size`, `merge_size`, `image_mean`, `image_std`, `size.shortest_edge` /
`size.longest_edge` or `min_pixels` / `max_pixels`) and hands the pixels to
`processing.pro_vision`, the code vLLM's path runs, so a transformers caller gets the same
patches. The class the file names (`Qwen2VLImageProcessorFast`) needs torchvision.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature

from interns1_plugin.processing.image_processor import flatten_images
from interns1_plugin.processing.pro_vision import (
    PRO_MAX_PIXELS,
    PRO_MEAN,
    PRO_MERGE_SIZE,
    PRO_MIN_PIXELS,
    PRO_PATCH_SIZE,
    PRO_STD,
    PRO_TEMPORAL_PATCH_SIZE,
    ProVisionConfig,
    image_grid,
    preprocess_image,
)
from interns1_plugin.processing.return_tensors import as_return_tensors

#: Per-call overrides of an image's pixel bounds, named as `ProVisionConfig` fields.
IMAGE_OPTIONS = ("min_pixels", "max_pixels")
#: The keys of a processor config file `ProVisionConfig.from_preprocessor_config` reads.
VISION_KEYS = (
    "patch_size",
    "temporal_patch_size",
    "merge_size",
    "image_mean",
    "image_std",
    "size",
    "min_pixels",
    "max_pixels",
)


def settings_of(processor: Any, keys: Sequence[str] = VISION_KEYS) -> dict[str, Any]:
    """The config-file keys a processor holds (None left out), as `ProVisionConfig` reads them."""
    return {key: value for key in keys if (value := getattr(processor, key, None)) is not None}


def with_options(
    config: ProVisionConfig, options: Mapping[str, Any], keys: Sequence[str]
) -> ProVisionConfig:
    """`config` with the per-call `options` among `keys` applied (None means unchanged)."""
    chosen = {key: options[key] for key in keys if options.get(key) is not None}
    return dataclasses.replace(config, **chosen)


class InternS1ProImageProcessor(BaseImageProcessor):
    """One resize to whole 32-pixel merge blocks, then 16x16 patches in merge-block order."""

    model_input_names = ["pixel_values", "image_grid_thw"]

    def __init__(
        self,
        patch_size: int = PRO_PATCH_SIZE,
        temporal_patch_size: int = PRO_TEMPORAL_PATCH_SIZE,
        merge_size: int = PRO_MERGE_SIZE,
        image_mean: Sequence[float] = PRO_MEAN,
        image_std: Sequence[float] = PRO_STD,
        size: Mapping[str, int] | None = None,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.patch_size = int(patch_size)
        self.temporal_patch_size = int(temporal_patch_size)
        self.merge_size = int(merge_size)
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        self.size = dict(size or {"shortest_edge": PRO_MIN_PIXELS, "longest_edge": PRO_MAX_PIXELS})
        self.min_pixels = min_pixels
        self.max_pixels = max_pixels
        self.vision_config()  # a bad file fails here, not at the first image

    def vision_config(
        self, min_pixels: int | None = None, max_pixels: int | None = None
    ) -> ProVisionConfig:
        """This file's patch geometry and pixel bounds, the bounds overridable per call.

        Video settings stay at their defaults: they live in the video processor's file.
        """
        config = ProVisionConfig.from_preprocessor_config(settings_of(self))
        bounds = {"min_pixels": min_pixels, "max_pixels": max_pixels}
        return with_options(config, bounds, IMAGE_OPTIONS)

    def __call__(self, images: Any, **kwargs: Any) -> BatchFeature:
        return self.preprocess(images, **kwargs)

    def preprocess(
        self,
        images: Any,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        return_tensors: str | None = "pt",
        **_: Any,
    ) -> BatchFeature:
        """Patch every image: `pixel_values` (all patches, in order) and `image_grid_thw`.

        Unknown keyword arguments (Qwen2-VL's `do_resize`, ...) are accepted and ignored.
        """
        config = self.vision_config(min_pixels, max_pixels)
        results = [preprocess_image(image, config) for image in flatten_images(images)]
        if not results:
            raise ValueError("no images to process")
        data = {
            "pixel_values": torch.cat([r.pixel_values for r in results]),
            "image_grid_thw": torch.cat([r.image_grid_thw for r in results]),
        }
        return BatchFeature(data=as_return_tensors(data, return_tensors))

    def get_number_of_image_patches(
        self, height: int, width: int, images_kwargs: Mapping[str, Any] | None = None
    ) -> int:
        """Patches (before the 2x2 merge) an image of this size yields, without reading pixels."""
        kwargs = images_kwargs or {}
        config = self.vision_config(kwargs.get("min_pixels"), kwargs.get("max_pixels"))
        t, h, w = image_grid(height, width, config)
        return t * h * w


__all__ = [
    "IMAGE_OPTIONS",
    "VISION_KEYS",
    "InternS1ProImageProcessor",
    "settings_of",
    "with_options",
]
