"""Image tiling against transformers' own GotOcr2 image processor (the reference Intern-S1 names).

The reference runs with tiling forced on (`crop_to_patches=True`), Intern-S1's 448-pixel tiles,
1..12 tiles and ImageNet statistics. Tile counts must agree for every aspect ratio, extreme
shapes included, and the pixel tensors within 1e-5.
"""

from __future__ import annotations

import multiprocessing
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
PIL_Image = pytest.importorskip("PIL.Image")
transformers = pytest.importorskip("transformers")

from interns1_plugin.processing.image import (  # noqa: E402
    IMAGENET_MEAN,
    IMAGENET_STD,
    TilingConfig,
    candidate_grids,
    choose_grid,
    count_tiles,
    tile_image,
)
from interns1_plugin.processing.image_processor import InternS1ImageProcessor  # noqa: E402

TOLERANCE = 1e-5

#: (width, height): squares, every small ratio, wide and tall extremes, one-pixel lines.
SIZES = sorted(
    {(w, h) for w in (1, 7, 100, 448, 449, 640, 896, 1000, 1344, 2000) for h in (1, 100, 448, 768)}
    | {(448 * c, 448 * r) for c in range(1, 13) for r in range(1, 13) if c * r <= 12}
    | {(50, 5000), (5000, 50), (10000, 1), (1, 10000), (3000, 2000), (2000, 3000), (1344, 1343)}
    | {(224 * k, 448) for k in range(1, 25)}
)
#: Sizes where the whole pixel pipeline is compared (each costs a full reference run).
PIXEL_SIZES = [(1, 1), (448, 448), (640, 480), (480, 640), (2000, 1500), (5000, 50), (37, 913)]


def reference(min_patches: int = 1, max_patches: int = 12):
    return transformers.GotOcr2ImageProcessorPil(
        size={"height": 448, "width": 448},
        image_mean=list(IMAGENET_MEAN),
        image_std=list(IMAGENET_STD),
        crop_to_patches=True,
        min_patches=min_patches,
        max_patches=max_patches,
    )


def random_image(width: int, height: int, seed: int = 0):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return PIL_Image.fromarray(pixels)


def test_candidate_grids_are_ordered_by_tile_count():
    grids = candidate_grids(1, 12)
    assert grids[0] == (1, 1)
    assert all(1 <= c * r <= 12 for c, r in grids)
    assert [c * r for c, r in grids] == sorted(c * r for c, r in grids)
    assert (
        len(grids)
        == len(set(grids))
        == sum(1 for c in range(1, 13) for r in range(1, 13) if c * r <= 12)
    )
    # Inside one tile count, columns ascend: the order that decides ties.
    assert [g for g in grids if g[0] * g[1] == 4] == [(1, 4), (2, 2), (4, 1)]


@pytest.mark.parametrize(("min_tiles", "max_tiles"), [(1, 12), (1, 6), (2, 9), (4, 4), (1, 1)])
def test_tile_counts_match_reference_for_every_shape(min_tiles, max_tiles):
    ref = reference(min_tiles, max_tiles)
    config = TilingConfig(min_tiles=min_tiles, max_tiles=max_tiles)
    for width, height in SIZES:
        expected = ref.get_number_of_image_patches(height, width, {"crop_to_patches": True})
        assert count_tiles(width, height, config) == expected, (width, height)


def test_grid_examples():
    assert choose_grid(448, 448) == (1, 1)
    assert choose_grid(896, 448) == (2, 1)
    assert choose_grid(448, 896) == (1, 2)
    assert choose_grid(10000, 1) == (12, 1)
    assert choose_grid(1, 10000) == (1, 12)
    # Equal ratio difference: more tiles win while the image covers over half their area.
    assert choose_grid(1344, 1344) == (3, 3)
    assert choose_grid(100, 100) == (1, 1)
    assert count_tiles(448, 448) == 1  # no thumbnail for a single tile
    assert count_tiles(896, 448) == 3


@pytest.mark.parametrize(("width", "height"), PIXEL_SIZES)
def test_pixels_match_reference(width, height):
    image = random_image(width, height, seed=width * 7 + height)
    expected = reference()(image, return_tensors="pt")
    ours = tile_image(image)

    assert ours.num_tiles == int(expected["num_patches"][0])
    assert ours.pixel_values.dtype == torch.float32
    assert ours.pixel_values.shape == expected["pixel_values"].shape
    assert torch.allclose(ours.pixel_values, expected["pixel_values"], atol=TOLERANCE, rtol=0)


def test_single_tile_bounds_resize_the_whole_image():
    image = random_image(900, 300)
    expected = reference(1, 1)(image, return_tensors="pt")["pixel_values"]
    ours = tile_image(image, TilingConfig(max_tiles=1))
    assert ours.num_tiles == 1
    assert torch.allclose(ours.pixel_values, expected, atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK"])
def test_non_rgb_images_are_converted_like_the_reference(mode):
    image = random_image(700, 500).convert(mode)
    expected = reference()(image, return_tensors="pt")["pixel_values"]
    assert torch.allclose(tile_image(image).pixel_values, expected, atol=TOLERANCE, rtol=0)


def test_array_and_tensor_inputs_equal_the_pil_image():
    image = random_image(640, 360)
    pixels = np.asarray(image)
    from_pil = tile_image(image).pixel_values
    assert torch.equal(tile_image(pixels).pixel_values, from_pil)
    assert torch.equal(
        tile_image(torch.from_numpy(pixels.copy()).permute(2, 0, 1)).pixel_values, from_pil
    )
    gray = pixels[..., 0]
    assert tile_image(gray).pixel_values.shape == from_pil.shape
    with pytest.raises(TypeError):
        tile_image(pixels.astype(np.float32))


def test_config_from_published_preprocessor_config_ignores_crop_to_patches():
    published = {
        "crop_to_patches": False,
        "image_mean": [0.485, 0.456, 0.406],
        "image_std": [0.229, 0.224, 0.225],
        "max_patches": 12,
        "min_patches": 1,
        "size": {"height": 448, "width": 448},
        "image_processor_type": "GotOcr2ImageProcessorFast",
    }
    config = TilingConfig.from_preprocessor_config(published)
    assert config == TilingConfig()
    assert count_tiles(2000, 1500, config) == 13
    processor = InternS1ImageProcessor(**published)
    assert processor.get_number_of_image_patches(1500, 2000) == 13
    with pytest.raises(ValueError):
        TilingConfig(min_tiles=3, max_tiles=2)


def test_image_processor_batches_like_gotocr2():
    images = [random_image(2000, 1500, 1), random_image(300, 300, 2), random_image(100, 900, 3)]
    expected = reference()(images, return_tensors="pt")
    ours = InternS1ImageProcessor()(images)
    assert ours["num_patches"].tolist() == expected["num_patches"].tolist()
    assert torch.allclose(ours["pixel_values"], expected["pixel_values"], atol=TOLERANCE, rtol=0)
    capped = InternS1ImageProcessor()(images, max_patches=4)
    assert capped["num_patches"].tolist() == list(reference(1, 4)(images)["num_patches"])
    nested = InternS1ImageProcessor()([[images[0]], [images[1], images[2]]], return_tensors="np")
    assert isinstance(nested["pixel_values"], np.ndarray)
    assert nested["num_patches"].tolist() == expected["num_patches"].tolist()


def _tiles_in_child(queue) -> None:
    queue.put(tile_image(random_image(1800, 900)).num_tiles)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_tiling_works_in_a_forked_child():
    """Engines fork workers after the parent has used the resize threads."""
    tile_image(random_image(1800, 900))  # parent starts its pool
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_tiles_in_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == count_tiles(1800, 900)
