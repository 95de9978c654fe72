"""Intern-S1-Pro image preprocessing: Qwen2-VL's resize rule, patch order and pixel values.

Sizes are checked against values worked out by hand, the patch order against a slow reference
written here with explicit loops, and the pixels against a direct PIL bicubic resize with NumPy
normalisation. Where transformers' PIL-backed Qwen2-VL image processor imports (it needs no
torchvision), whole outputs are also compared with it.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")
PIL_Image = pytest.importorskip("PIL.Image")

from interns1_plugin.formats import (  # noqa: E402
    IMAGE_PAD,
    PRO_IMAGE_TOKEN_ID,
    VISION_END,
    VISION_START,
)
from interns1_plugin.processing.pro_vision import (  # noqa: E402
    DEFAULT_PRO_VISION,
    ProVisionConfig,
    count_image_tokens,
    count_tokens,
    image_grid,
    image_prompt,
    patchify,
    preprocess_image,
    smart_resize,
)

#: Intern-S1-Pro's own processor files, as published with the checkpoint (the fields read here).
PRO_PREPROCESSOR = {
    "size": {"longest_edge": 16777216, "shortest_edge": 65536},
    "patch_size": 16,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "image_processor_type": "Qwen2VLImageProcessorFast",
}
PRO_VIDEO_PREPROCESSOR = {
    "size": {"longest_edge": 25165824, "shortest_edge": 4096},
    "patch_size": 16,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
}
#: Small bounds so that multiples of 32 pass through without resampling.
NO_RESIZE = ProVisionConfig(min_pixels=32 * 32, max_pixels=4096 * 4096)


def random_image(width: int, height: int, seed: int = 0, mode: str = "RGB") -> PIL_Image.Image:
    rng = np.random.default_rng(seed)
    return PIL_Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).convert(
        mode
    )


def normalised(pixels: np.ndarray, config: ProVisionConfig = DEFAULT_PRO_VISION) -> np.ndarray:
    """`(..., H, W, 3)` uint8 -> float64 `(x / 255 - mean) / std`, the textbook way."""
    mean, std = np.asarray(config.image_mean), np.asarray(config.image_std)
    return (pixels.astype(np.float64) / 255.0 - mean) / std


def reference_patches(frames: np.ndarray, config: ProVisionConfig) -> np.ndarray:
    """Slow reference of the Qwen2-VL patch order: `frames` `(F, H, W, 3)` already normalised.

    Row ((t * gh/m + bh) * gw/m + bw) * m * m + ih * m + iw holds, channel by channel and frame
    by frame of temporal group t, the P x P patch at patch row bh*m+ih, patch column bw*m+iw.
    A single frame is repeated over the temporal patch, an odd count padded with the last frame.
    """
    p, m, tp = config.patch_size, config.merge_size, config.temporal_patch_size
    frames = list(frames)
    while len(frames) < tp or len(frames) % tp:
        frames.append(frames[-1])
    height, width = frames[0].shape[:2]
    gt, gh, gw = len(frames) // tp, height // p, width // p
    rows = np.zeros((gt * gh * gw, 3 * tp * p * p))
    for t in range(gt):
        for bh in range(gh // m):
            for bw in range(gw // m):
                for ih in range(m):
                    for iw in range(m):
                        row = ((t * (gh // m) + bh) * (gw // m) + bw) * m * m + ih * m + iw
                        y, x = (bh * m + ih) * p, (bw * m + iw) * p
                        values = []
                        for c in range(3):
                            for k in range(tp):
                                patch = frames[t * tp + k][y : y + p, x : x + p, c]
                                values.extend(patch.reshape(-1).tolist())
                        rows[row] = values
    return rows


# --- configuration -----------------------------------------------------------------------------


def test_defaults_are_intern_s1_pro_files():
    cfg = DEFAULT_PRO_VISION
    assert (cfg.patch_size, cfg.temporal_patch_size, cfg.merge_size, cfg.factor) == (16, 2, 2, 32)
    assert cfg.image_mean == cfg.image_std == (0.5, 0.5, 0.5)
    assert (cfg.min_pixels, cfg.max_pixels) == (65536, 16777216)
    assert (cfg.video_min_pixels, cfg.video_max_pixels) == (4096, 25165824)
    assert (cfg.fps, cfg.min_frames, cfg.max_frames) == (2.0, 4, 768)
    assert PRO_IMAGE_TOKEN_ID == 151655
    read = ProVisionConfig.from_preprocessor_config(PRO_PREPROCESSOR, video=PRO_VIDEO_PREPROCESSOR)
    assert read == cfg


def test_config_reads_pixel_keys_and_overrides():
    cfg = ProVisionConfig.from_preprocessor_config(
        {
            "min_pixels": 4096,
            "max_pixels": 1310720,
            "size": {"shortest_edge": 1, "longest_edge": 2},
            "patch_size": 14,
            "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_std": 0.5,
        },
        video={
            "size": {"shortest_edge": 128, "longest_edge": 256 * 256},
            "fps": 1,
            "min_frames": 2,
            "max_frames": 64,
        },
    )
    assert (cfg.min_pixels, cfg.max_pixels, cfg.patch_size, cfg.factor) == (4096, 1310720, 14, 28)
    assert cfg.image_mean == (0.48145466, 0.4578275, 0.40821073)
    assert cfg.image_std == (0.5, 0.5, 0.5)
    assert (cfg.video_min_pixels, cfg.video_max_pixels) == (128, 65536)
    assert (cfg.fps, cfg.min_frames, cfg.max_frames) == (1.0, 2, 64)


def test_config_reads_a_nested_processor_config():
    nested = {"image_processor": PRO_PREPROCESSOR, "video_processor": PRO_VIDEO_PREPROCESSOR}
    assert ProVisionConfig.from_preprocessor_config(nested) == DEFAULT_PRO_VISION
    assert ProVisionConfig.from_preprocessor_config({}) == DEFAULT_PRO_VISION


def test_config_refuses_disagreeing_files_and_bad_values():
    with pytest.raises(ValueError, match="disagree on patch_size"):
        ProVisionConfig.from_preprocessor_config({"patch_size": 16}, video={"patch_size": 14})
    with pytest.raises(ValueError, match="min_pixels <= max_pixels"):
        ProVisionConfig(min_pixels=10, max_pixels=5)
    with pytest.raises(ValueError, match="min_frames <= max_frames"):
        ProVisionConfig(min_frames=8, max_frames=4)
    with pytest.raises(ValueError, match="patch_size must be positive"):
        ProVisionConfig(patch_size=0)


# --- smart_resize ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("height", "width", "expected"),
    [
        (1080, 1920, (1088, 1920)),  # 33.75 -> 34 blocks high, 60 wide; in range
        (512, 768, (512, 768)),  # exact multiples stay
        (1, 1, (256, 256)),  # area 0 -> grown to min_pixels: sqrt(65536) = 256
        (32, 32, (256, 256)),  # 1024 < 65536: scale 8
        (30, 100, (160, 480)),  # 32x96 = 3072 < min: beta 4.674 -> ceil 5 and 15 blocks
        (8192, 8192, (4096, 4096)),  # 67M > 16.7M: beta 2 -> 4096 (max_pixels exactly)
        (4000, 5000, (3648, 4576)),  # 20.0M > max: beta 1.0915 -> floor 114 and 143 blocks
        (200, 40000, (192, 40000)),  # 200:1 is allowed; 6.25 -> 6 blocks, area in range
    ],
)
def test_smart_resize_hand_computed(height, width, expected):
    assert smart_resize(height, width, 32, 65536, 16777216) == expected


def test_smart_resize_rounds_halves_to_even():
    # 48 / 32 = 1.5 -> 2 blocks, 80 / 32 = 2.5 -> 2 blocks: Python's round, as Qwen's code.
    assert smart_resize(48, 80, 32, 1, 10**9) == (64, 64)
    # 16 / 32 = 0.5 -> 0 blocks; the empty area is then grown to one block each way.
    assert smart_resize(16, 16, 32, 1, 10**9) == (32, 32)


def test_smart_resize_results_respect_the_bounds():
    for height, width in [(1, 1), (7, 13), (333, 777), (1080, 1920), (9999, 7777), (50, 9000)]:
        h, w = smart_resize(height, width, 32, 65536, 16777216)
        assert h % 32 == 0 and w % 32 == 0
        assert 65536 <= h * w <= 16777216


@pytest.mark.parametrize(("height", "width"), [(1, 201), (201, 1), (10, 2500)])
def test_smart_resize_refuses_extreme_aspect_ratios(height, width):
    with pytest.raises(ValueError, match="aspect ratio must be smaller than 200"):
        smart_resize(height, width)


@pytest.mark.parametrize(("height", "width"), [(0, 10), (10, 0), (-1, 5)])
def test_smart_resize_refuses_empty_sizes(height, width):
    with pytest.raises(ValueError, match="must be positive"):
        smart_resize(height, width)


def test_aspect_ratio_200_is_still_accepted():
    # round -> 0 x 192, area 0 < min: beta = sqrt(65536 / 200) = 18.10 -> ceil 1 and 114 blocks
    assert smart_resize(1, 200) == (32, 3648)


def test_smart_resize_agrees_with_transformers_on_many_sizes():
    module = pytest.importorskip("transformers.models.qwen2_vl.image_processing_pil_qwen2_vl")
    rng = np.random.default_rng(8)
    sizes = [tuple(int(v) for v in pair) for pair in rng.integers(1, 9000, (600, 2))]
    sizes += [(h, w) for h in (1, 16, 17, 31, 32, 48, 80) for w in (1, 32, 200, 201, 6400)]
    for height, width in sizes:
        for bounds in ((65536, 16777216), (4096, 1310720)):
            try:
                expected = module.smart_resize(height, width, 32, *bounds)
            except ValueError:
                with pytest.raises(ValueError):
                    smart_resize(height, width, 32, *bounds)
            else:
                assert smart_resize(height, width, 32, *bounds) == expected, (height, width)


# --- patch order and pixel values --------------------------------------------------------------


def test_patch_order_matches_the_slow_reference():
    image = random_image(96, 64, seed=1)  # 2x3 merge blocks, no resampling
    out = preprocess_image(image, NO_RESIZE)
    assert out.image_grid_thw.tolist() == [[1, 4, 6]]
    assert out.image_grid_thw.dtype == torch.int64
    assert out.pixel_values.dtype == torch.float32
    assert tuple(out.pixel_values.shape) == (24, 3 * 2 * 16 * 16)
    expected = reference_patches(normalised(np.asarray(image))[None], NO_RESIZE)
    np.testing.assert_allclose(out.pixel_values.numpy(), expected, atol=1e-6)


def test_patch_order_of_distinct_frames_matches_the_slow_reference():
    rng = np.random.default_rng(2)
    frames = rng.integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)  # odd: the last is repeated
    out = patchify(frames, NO_RESIZE)
    assert tuple(out.shape) == (3 * 4 * 4, 1536)
    np.testing.assert_allclose(
        out.numpy(), reference_patches(normalised(frames), NO_RESIZE), atol=1e-6
    )


def test_patch_order_with_other_geometry():
    cfg = ProVisionConfig(patch_size=8, merge_size=3, temporal_patch_size=3, min_pixels=1)
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (3, 48, 72, 3), dtype=np.uint8)
    np.testing.assert_allclose(
        patchify(frames, cfg).numpy(), reference_patches(normalised(frames), cfg), atol=1e-6
    )


@pytest.mark.parametrize(("width", "height"), [(300, 200), (1920, 1080), (33, 700), (5, 3)])
def test_pixels_match_a_direct_bicubic_resize(width, height):
    image = random_image(width, height, seed=width)
    out = preprocess_image(image)
    h, w = smart_resize(height, width)
    resized = np.asarray(image.resize((w, h), PIL_Image.Resampling.BICUBIC))
    assert out.image_grid_thw.tolist() == [[1, h // 16, w // 16]]
    expected = reference_patches(normalised(resized)[None], DEFAULT_PRO_VISION)
    np.testing.assert_allclose(out.pixel_values.numpy(), expected, atol=1e-6)


@pytest.mark.parametrize(
    ("min_pixels", "max_pixels", "sizes"),
    [
        (65536, 16777216, [(640, 480), (1, 1), (100, 30), (37, 301)]),
        (4096, 300_000, [(1000, 800), (2000, 10)]),  # shrinking with a small budget
    ],
)
def test_matches_transformers_pil_backend(min_pixels, max_pixels, sizes):
    module = pytest.importorskip("transformers.models.qwen2_vl.image_processing_pil_qwen2_vl")
    reference = module.Qwen2VLImageProcessorPil(
        size={"shortest_edge": min_pixels, "longest_edge": max_pixels},
        patch_size=16,
        temporal_patch_size=2,
        merge_size=2,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    config = ProVisionConfig(min_pixels=min_pixels, max_pixels=max_pixels)
    for width, height in sizes:
        image = random_image(width, height, seed=height)
        ours = preprocess_image(image, config)
        theirs = reference(images=[image], return_tensors="np")
        assert ours.image_grid_thw.tolist() == np.asarray(theirs["image_grid_thw"]).tolist()
        np.testing.assert_allclose(
            ours.pixel_values.numpy(), np.asarray(theirs["pixel_values"]), atol=1e-6
        )


# --- inputs and conversions --------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["RGBA", "L", "LA", "P", "CMYK", "I", "1"])
def test_other_modes_are_converted_to_rgb(mode):
    image = random_image(70, 50, seed=4, mode=mode)
    expected = preprocess_image(image.convert("RGB"))
    out = preprocess_image(image)
    assert torch.equal(out.pixel_values, expected.pixel_values)


def test_arrays_tensors_and_encoded_files_agree_with_pil():
    image = random_image(90, 60, seed=5)
    expected = preprocess_image(image).pixel_values
    array = np.asarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    for source in (
        array,
        torch.from_numpy(array.copy()),
        torch.from_numpy(array.transpose(2, 0, 1).copy()),
        buffer.getvalue(),
        io.BytesIO(buffer.getvalue()),
    ):
        assert torch.equal(preprocess_image(source).pixel_values, expected)


def test_greyscale_array_is_accepted(tmp_path):
    grey = np.random.default_rng(6).integers(0, 256, (40, 50), dtype=np.uint8)
    expected = preprocess_image(PIL_Image.fromarray(grey).convert("RGB")).pixel_values
    assert torch.equal(preprocess_image(grey).pixel_values, expected)
    path = tmp_path / "grey.png"
    PIL_Image.fromarray(grey).save(path)
    assert torch.equal(preprocess_image(path).pixel_values, expected)
    assert torch.equal(preprocess_image(str(path)).pixel_values, expected)


# --- errors ------------------------------------------------------------------------------------


def test_corrupt_truncated_and_empty_files_raise_value_error(monkeypatch):
    # PIL's process-wide switch decides whether a truncated file is an error; LMDeploy turns it
    # on when imported (and the engine's choice is kept), so pin PIL's default here.
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", False)
    buffer = io.BytesIO()
    random_image(200, 200, seed=7).save(buffer, format="PNG")
    data = buffer.getvalue()
    with pytest.raises(ValueError, match="could not be read"):
        preprocess_image(b"definitely not an image")
    with pytest.raises(ValueError, match="could not be decoded"):
        preprocess_image(data[: len(data) // 2])
    with pytest.raises(ValueError, match="empty"):
        preprocess_image(b"")


@pytest.mark.parametrize("shape", [(0, 10, 3), (10, 0, 3), (0, 0)])
def test_zero_size_arrays_raise_value_error(shape):
    with pytest.raises(ValueError, match="empty"):
        preprocess_image(np.zeros(shape, dtype=np.uint8))


def test_bad_array_shapes_raise():
    with pytest.raises(ValueError, match="expected an"):
        preprocess_image(np.zeros((2, 10, 10, 3), dtype=np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        preprocess_image(np.zeros((10, 10, 3), dtype=np.float32))


def test_degenerate_aspect_ratio_raises_the_smart_resize_error():
    with pytest.raises(ValueError, match="aspect ratio"):
        preprocess_image(np.zeros((1, 300, 3), dtype=np.uint8))


def test_images_past_pils_bomb_limit_raise_before_decoding(monkeypatch):
    monkeypatch.setattr(PIL_Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ValueError, match="too large"):
        preprocess_image(np.zeros((50, 50, 3), dtype=np.uint8))  # 2500 > 2 x 1000
    with pytest.raises(ValueError, match="too large"):
        preprocess_image(random_image(50, 50))
    buffer = io.BytesIO()
    random_image(50, 50).save(buffer, format="PNG")
    with pytest.raises(ValueError, match="too large"):
        preprocess_image(buffer.getvalue())
    assert preprocess_image(np.zeros((40, 40, 3), dtype=np.uint8)).image_grid_thw.numel() == 3
    monkeypatch.setattr(PIL_Image, "MAX_IMAGE_PIXELS", None)
    assert preprocess_image(np.zeros((50, 50, 3), dtype=np.uint8)).image_grid_thw.numel() == 3


# --- token counts and prompt -------------------------------------------------------------------


def test_token_counts_follow_the_grid():
    assert image_grid(1080, 1920) == (1, 68, 120)
    assert count_image_tokens(1080, 1920) == 68 * 120 // 4 == 2040
    assert count_image_tokens(1, 1) == 64
    out = preprocess_image(random_image(640, 480))
    assert count_tokens(out.image_grid_thw[0]) == out.pixel_values.shape[0] // 4 == 300
    assert count_image_tokens(480, 640) == 300


def test_image_prompt_layout():
    assert image_prompt((1, 2, 2)) == "<|vision_start|><|image_pad|><|vision_end|>"
    assert image_prompt(torch.tensor([1, 4, 6])) == (VISION_START + IMAGE_PAD * 6 + VISION_END)
    assert image_prompt([1, 68, 120]).count(IMAGE_PAD) == 2040
    assert image_prompt((1, 6, 6), merge_size=3) == VISION_START + IMAGE_PAD * 4 + VISION_END
