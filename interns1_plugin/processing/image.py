"""Dynamic tiling of one image into 448x448 tiles, the way Intern-S1 was trained to see images.

The grid (columns x rows, between `min_tiles` and `max_tiles` tiles) is the one whose aspect ratio
is closest to the image's; on a tie the grid with more tiles wins while the image still has more
than half the grid's pixel area. That is the rule of transformers' GotOcr2 image processor, the one
Intern-S1's files name, with the candidate grids visited in the same order, so tie-breaks and
tile counts agree exactly. A 448x448 thumbnail of the whole image follows the tiles when there is
more than one.

Why not transformers' processor: it converts every image between NumPy and PIL several times and
normalises tile by tile in float64. Here the image is resized once per target with PIL's bicubic
filter (the same filter, so the pixels agree), the tiles are cut as strided views of the resized
array, and normalisation is one in-place multiply and add over all tiles.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
TILE_SIZE = 448
MIN_TILES = 1
MAX_TILES = 12


@dataclass(frozen=True)
class TilingConfig:
    """How images become tiles; the defaults are Intern-S1's."""

    tile_size: int = TILE_SIZE
    min_tiles: int = MIN_TILES
    max_tiles: int = MAX_TILES
    use_thumbnail: bool = True
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        if not 1 <= self.min_tiles <= self.max_tiles:
            bounds = f"{self.min_tiles}, {self.max_tiles}"
            raise ValueError(f"need 1 <= min_tiles <= max_tiles, got {bounds}")

    @classmethod
    def from_preprocessor_config(cls, data: Mapping[str, Any]) -> TilingConfig:
        """Read a `preprocessor_config.json` dict.

        `crop_to_patches` is ignored on purpose: the published files say `false`, yet the
        checkpoint's own processor class overrides it with `True` on every call, so Intern-S1
        always sees tiled images.
        """
        size = data.get("size") or {}
        tile = int(size.get("height", size.get("shortest_edge", TILE_SIZE)))
        return cls(
            tile_size=tile,
            min_tiles=int(data.get("min_patches", MIN_TILES)),
            max_tiles=int(data.get("max_patches", MAX_TILES)),
            mean=tuple(data.get("image_mean", IMAGENET_MEAN)),
            std=tuple(data.get("image_std", IMAGENET_STD)),
        )


#: Intern-S1's tiling, the default everywhere.
DEFAULT_TILING = TilingConfig()


class ImageTiles(NamedTuple):
    """Normalised tiles `(num_tiles, 3, tile, tile)` float32, thumbnail last when present."""

    pixel_values: torch.Tensor
    num_tiles: int


@lru_cache(maxsize=32)
def candidate_grids(min_tiles: int, max_tiles: int) -> tuple[tuple[int, int], ...]:
    """(columns, rows) grids with `min_tiles <= columns * rows <= max_tiles`, fewest tiles first.

    The order inside one tile count (columns outer, rows inner) decides ties, so it is kept.
    """
    grids = [
        (cols, rows)
        for cols in range(1, max_tiles + 1)
        for rows in range(1, max_tiles + 1)
        if min_tiles <= cols * rows <= max_tiles
    ]
    return tuple(sorted(grids, key=lambda grid: grid[0] * grid[1]))


@lru_cache(maxsize=4096)
def _choose_grid(
    width: int, height: int, tile_size: int, min_tiles: int, max_tiles: int
) -> tuple[int, int]:
    aspect = width / height
    area = width * height
    best, best_diff = (1, 1), float("inf")
    for cols, rows in candidate_grids(min_tiles, max_tiles):
        diff = abs(aspect - cols / rows)
        if diff < best_diff:
            best, best_diff = (cols, rows), diff
        elif diff == best_diff and area > 0.5 * tile_size * tile_size * cols * rows:
            best = (cols, rows)
    return best


def choose_grid(width: int, height: int, config: TilingConfig = DEFAULT_TILING) -> tuple[int, int]:
    """The (columns, rows) grid an image of `width` x `height` pixels is cut into."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    return _choose_grid(width, height, config.tile_size, config.min_tiles, config.max_tiles)


def count_tiles(width: int, height: int, config: TilingConfig = DEFAULT_TILING) -> int:
    """Tiles an image yields, thumbnail included: 256 placeholder tokens each."""
    cols, rows = choose_grid(width, height, config)
    grid = cols * rows
    return grid + 1 if config.use_thumbnail and grid > 1 else grid


def to_rgb_image(image: Any) -> Image.Image:
    """Accept a PIL image, an `(H, W[, C])` uint8 array or a `(C, H, W)` / `(H, W, C)` tensor."""
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)
    if array.dtype != np.uint8:
        raise TypeError(f"expected uint8 pixels, got {array.dtype}")
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    return to_rgb_image(Image.fromarray(array))


def _resize(image: Image.Image, width: int, height: int) -> np.ndarray:
    """Bicubic resize to a read-only `(height, width, 3)` uint8 array."""
    return np.asarray(image.resize((width, height), Image.Resampling.BICUBIC))


@lru_cache(maxsize=1)
def _resize_pool() -> ThreadPoolExecutor:
    """PIL releases the GIL while resampling, so independent resizes run side by side."""
    workers = max(2, min(8, os.cpu_count() or 2))
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="interns1-resize")


# A forked child (engines fork workers) inherits the pool object but not its threads: work
# submitted there would never run. The child builds its own pool instead.
os.register_at_fork(after_in_child=_resize_pool.cache_clear)


@lru_cache(maxsize=8)
def _affine(mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """`x / 255` then `(x - mean) / std`, folded into one scale and one shift per channel."""
    mean64, std64 = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
    scale = (1.0 / (255.0 * std64)).astype(np.float32).reshape(3, 1, 1)
    shift = (-mean64 / std64).astype(np.float32).reshape(3, 1, 1)
    return scale, shift


def normalize_tiles(pixels: np.ndarray, config: TilingConfig) -> None:
    """In place on float32 `(..., 3, H, W)` pixel values in 0..255.

    NumPy rather than torch on purpose: these passes are memory-bound, and torch's intra-op
    threads would compete with the resize thread (and with a busy server) for little gain.
    """
    scale, shift = _affine(tuple(config.mean), tuple(config.std))
    pixels *= scale
    pixels += shift


def _put_channels_first(out: np.ndarray, hwc: np.ndarray) -> None:
    """Copy `(H, W, 3)` uint8 pixels into a float32 `(3, H, W)` slot."""
    np.copyto(out, hwc.transpose(2, 0, 1), casting="unsafe")


def tile_image(image: Any, config: TilingConfig = DEFAULT_TILING) -> ImageTiles:
    """Cut one image into normalised tiles (grid row by row, then the thumbnail)."""
    rgb = to_rgb_image(image)
    size = config.tile_size
    cols, rows = choose_grid(rgb.width, rgb.height, config)
    grid = cols * rows
    thumbnail = config.use_thumbnail and grid > 1
    out = torch.empty((grid + int(thumbnail), 3, size, size), dtype=torch.float32)
    pixels = out.numpy()

    pending: Future[np.ndarray] | None = None
    if thumbnail:
        pending = _resize_pool().submit(_resize, rgb, size, size)
    resized = _resize(rgb, size * cols, size * rows)
    # (rows*S, cols*S, 3) -> (rows, cols, 3, S, S): each tile is a strided view, copied once.
    tiles = resized.reshape(rows, size, cols, size, 3).transpose(0, 2, 4, 1, 3)
    np.copyto(pixels[:grid].reshape(rows, cols, 3, size, size), tiles, casting="unsafe")
    if pending is not None:
        _put_channels_first(pixels[grid], pending.result())
    normalize_tiles(pixels, config)
    return ImageTiles(out, int(out.shape[0]))


def concat_tiles(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Stack tiles of several images along the first axis; one tensor is returned uncopied."""
    return tensors[0] if len(tensors) == 1 else torch.cat(list(tensors))


def resize_frames(frames: Sequence[Any] | np.ndarray, config: TilingConfig) -> torch.Tensor:
    """Video frames as single tiles: each resized to one tile (no grid), then normalised."""
    size = config.tile_size
    out = torch.empty((len(frames), 3, size, size), dtype=torch.float32)
    pixels = out.numpy()

    def one(index: int) -> None:
        slot = pixels[index]
        _put_channels_first(slot, _resize(to_rgb_image(frames[index]), size, size))
        normalize_tiles(slot, config)

    list(_resize_pool().map(one, range(len(frames))))
    return out


__all__ = [
    "DEFAULT_TILING",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MAX_TILES",
    "MIN_TILES",
    "TILE_SIZE",
    "ImageTiles",
    "TilingConfig",
    "candidate_grids",
    "choose_grid",
    "concat_tiles",
    "count_tiles",
    "normalize_tiles",
    "resize_frames",
    "tile_image",
    "to_rgb_image",
]
