"""transformers-facing image processor over the plugin's tiling (`processing.image`).

It reads the checkpoint's `preprocessor_config.json` (GotOcr2 keys: `size`, `min_patches`,
`max_patches`, `image_mean`, `image_std`) and always tiles, whatever `crop_to_patches` says.
Outputs match transformers' GotOcr2 processor: `pixel_values` (all tiles of all images, in order)
and `num_patches` (tiles per image, thumbnail included).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature

from interns1_plugin.processing.image import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    MAX_TILES,
    MIN_TILES,
    TILE_SIZE,
    TilingConfig,
    concat_tiles,
    count_tiles,
    tile_image,
)
from interns1_plugin.processing.return_tensors import as_return_tensors


def flatten_images(images: Any) -> list[Any]:
    """One flat list from an image, a list of images or a list of per-prompt lists."""
    if images is None:
        return []
    if isinstance(images, (Image.Image, torch.Tensor)) or (
        isinstance(images, np.ndarray) and images.ndim <= 3
    ):
        return [images]
    flat: list[Any] = []
    for item in images:
        flat.extend(flatten_images(item))
    return flat


class InternS1ImageProcessor(BaseImageProcessor):
    """Dynamic 448-pixel tiling with a thumbnail, ImageNet normalisation, bicubic resize."""

    model_input_names = ["pixel_values"]

    def __init__(
        self,
        size: Mapping[str, int] | None = None,
        min_patches: int = MIN_TILES,
        max_patches: int = MAX_TILES,
        image_mean: Sequence[float] = IMAGENET_MEAN,
        image_std: Sequence[float] = IMAGENET_STD,
        crop_to_patches: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.size = dict(size or {"height": TILE_SIZE, "width": TILE_SIZE})
        self.min_patches = min_patches
        self.max_patches = max_patches
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        # Kept so the file round-trips; tiling is on regardless (see `TilingConfig`).
        self.crop_to_patches = crop_to_patches

    def tiling(
        self, min_patches: int | None = None, max_patches: int | None = None
    ) -> TilingConfig:
        """The tiling this processor applies, with per-call overrides of the tile bounds."""
        return TilingConfig(
            tile_size=int(self.size.get("height", TILE_SIZE)),
            min_tiles=int(self.min_patches if min_patches is None else min_patches),
            max_tiles=int(self.max_patches if max_patches is None else max_patches),
            mean=tuple(self.image_mean),
            std=tuple(self.image_std),
        )

    def __call__(self, images: Any, **kwargs: Any) -> BatchFeature:
        return self.preprocess(images, **kwargs)

    def preprocess(
        self,
        images: Any,
        min_patches: int | None = None,
        max_patches: int | None = None,
        return_tensors: str | None = "pt",
        **_: Any,
    ) -> BatchFeature:
        """Tile every image; unknown keyword arguments (GotOcr2's) are accepted and ignored."""
        config = self.tiling(min_patches, max_patches)
        results = [tile_image(image, config) for image in flatten_images(images)]
        if not results:
            raise ValueError("no images to process")
        data = {
            "pixel_values": concat_tiles([r.pixel_values for r in results]),
            "num_patches": torch.tensor([r.num_tiles for r in results]),
        }
        return BatchFeature(data=as_return_tensors(data, return_tensors))

    def get_number_of_image_patches(
        self, height: int, width: int, images_kwargs: Mapping[str, Any] | None = None
    ) -> int:
        """Tiles (thumbnail included) an image of this size yields, without reading pixels."""
        kwargs = images_kwargs or {}
        config = self.tiling(kwargs.get("min_patches"), kwargs.get("max_patches"))
        return count_tiles(width, height, config)


__all__ = ["InternS1ImageProcessor", "flatten_images"]
