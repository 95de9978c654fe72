"""`InternS1ProProcessor` on the tiny Intern-S1-Pro checkpoint: what `AutoProcessor` returns.

Each output is checked against the engine-agnostic functions the plugin's vLLM path runs
(`pro_vision.preprocess_image`, `pro_video.preprocess_video`, `time_series.preprocess_time_series`
and their prompt expansions) with the checkpoint's merged image / video settings; the vLLM path
itself is compared in `tests/vllm/test_pro_processor_vllm_parity.py`, and loads with
`trust_remote_code=True` next to bundled code in `test_remote_code_pro.py`.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
PIL_Image = pytest.importorskip("PIL.Image")

from interns1_plugin import formats  # noqa: E402
from interns1_plugin.configs import register_with_transformers  # noqa: E402
from interns1_plugin.processing import pro_video  # noqa: E402
from interns1_plugin.processing import time_series as ts  # noqa: E402
from interns1_plugin.processing.pro_image_processor import InternS1ProImageProcessor  # noqa: E402
from interns1_plugin.processing.pro_processor import (  # noqa: E402
    InternS1ProProcessor,
    as_series_list,
)
from interns1_plugin.processing.pro_prompt import PLACEHOLDERS  # noqa: E402
from interns1_plugin.processing.pro_video_processor import InternS1ProVideoProcessor  # noqa: E402
from interns1_plugin.processing.pro_vision import (  # noqa: E402
    DEFAULT_PRO_VISION,
    ProVisionConfig,
    count_image_tokens,
    image_grid,
    image_prompt,
    preprocess_image,
)
from interns1_plugin.testing.tiny_interns1_pro import (  # noqa: E402
    TINY_PRO,
    build_tiny_interns1_pro,
    preprocessor_config,
    video_preprocessor_config,
)

IMAGE, VIDEO, SERIES = (PLACEHOLDERS[k] for k in ("image", "video", "time_series"))


def user_turn(body: str) -> str:
    return f"{formats.IM_START}user\n{body}{formats.IM_END}\n{formats.IM_START}assistant\n"


def random_image(width: int, height: int, seed: int):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return PIL_Image.fromarray(pixels)


def random_video(frames: int, height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (frames, height, width, 3), dtype=np.uint8)


def series(length: int, channels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sin(np.arange(length)[:, None] / 7.0) + 0.3 * rng.standard_normal((length, channels))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    register_with_transformers()
    return build_tiny_interns1_pro(tmp_path_factory.mktemp("pro") / "model")


@pytest.fixture(scope="module")
def processor(checkpoint: Path) -> InternS1ProProcessor:
    return transformers.AutoProcessor.from_pretrained(checkpoint)


@pytest.fixture(scope="module")
def vision() -> ProVisionConfig:
    """The checkpoint's settings, merged as vLLM's path merges the two files."""
    return ProVisionConfig.from_preprocessor_config(
        preprocessor_config(TINY_PRO), video_preprocessor_config(TINY_PRO)
    )


def ids_of(out) -> list[int]:
    return out["input_ids"][0].tolist()


def test_autoprocessor_returns_the_plugin_processor(processor, vision):
    assert type(processor) is InternS1ProProcessor
    assert type(processor.image_processor) is InternS1ProImageProcessor
    assert type(processor.video_processor) is InternS1ProVideoProcessor
    assert processor.vision_config() == vision
    assert vision != DEFAULT_PRO_VISION  # the tiny files' bounds were read, not the defaults
    assert processor.chat_template is not None
    tokenizer = processor.tokenizer
    for name, token in [
        ("image_token", formats.IMAGE_PAD),
        ("video_token", formats.VIDEO_PAD),
        ("vision_start_token", formats.VISION_START),
        ("vision_end_token", formats.VISION_END),
        ("ts_token", formats.TS_TOKEN),
        ("ts_start_token", formats.TS_START),
        ("ts_end_token", formats.TS_END),
    ]:
        assert getattr(processor, name) == token
        assert getattr(processor, f"{name}_id") == tokenizer.convert_tokens_to_ids(token)


def test_alias_config_gets_the_same_processor(checkpoint, tmp_path):
    alias = Path(shutil.copytree(checkpoint, tmp_path / "alias"))
    config = json.loads((alias / "config.json").read_text(encoding="utf-8"))
    config["model_type"] = "interns1_1"
    config["architectures"] = ["InternS1_1_ForConditionalGeneration"]
    (alias / "config.json").write_text(json.dumps(config), encoding="utf-8")
    assert type(transformers.AutoProcessor.from_pretrained(alias)) is InternS1ProProcessor


@pytest.mark.parametrize("size", [(96, 64), (150, 100), (500, 20)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_image_matches_the_shared_preprocessing(processor, vision, size):
    image = random_image(*size, seed=3)
    out = processor(text=user_turn(f"Look {IMAGE} here."), images=image)
    pixels, grid = preprocess_image(image, vision)
    assert torch.equal(out["pixel_values"], pixels)
    assert torch.equal(out["image_grid_thw"], grid)
    tokens = count_image_tokens(size[1], size[0], vision)
    assert ids_of(out).count(processor.image_token_id) == tokens
    expected = processor.tokenizer(user_turn(f"Look {image_prompt(grid[0])} here."))["input_ids"]
    assert ids_of(out) == expected


def test_video_frames_match_the_shared_preprocessing(processor, vision):
    video = random_video(30, 64, 96, seed=4)
    out = processor(text=user_turn(f"{VIDEO} what happens?"), videos=video)
    ref = pro_video.preprocess_video(video, vision)
    assert torch.equal(out["pixel_values_videos"], ref.pixel_values_videos)
    assert torch.equal(out["video_grid_thw"], ref.video_grid_thw)
    assert out["video_timestamps"] == [ref.timestamps]
    text = pro_video.video_prompt(ref.video_grid_thw[0], ref.timestamps, vision.merge_size)
    assert ids_of(out) == processor.tokenizer(user_turn(f"{text} what happens?"))["input_ids"]
    decoded = processor.tokenizer.decode(ids_of(out))
    assert [f"<{t:.1f} seconds>" in decoded for t in ref.timestamps] == [True, True]


def test_time_series_matches_the_shared_preprocessing(processor):
    values = series(2000, 3, seed=5)
    out = processor(
        text=user_turn(f"{SERIES} explain"), time_series={"values": values, "sampling_rate": 50.0}
    )
    ref = ts.preprocess_time_series({"values": values, "sampling_rate": 50.0})
    assert torch.equal(out["ts_values"][0], ref.values)
    assert out["ts_num_tokens"].tolist() == [ref.num_tokens]
    assert out["ts_sampling_rate"].tolist() == [50.0]
    assert ids_of(out).count(processor.ts_token_id) == ref.num_tokens
    assert ref.num_tokens == ts.num_time_series_tokens(2000, 50.0)


def test_items_of_every_kind_expand_in_prompt_order(processor, vision):
    images = [random_image(64, 64, 1), random_image(128, 64, 2)]
    video = random_video(9, 64, 64, seed=6)
    mono = np.cos(np.arange(600) / 5.0)
    text = user_turn(f"{SERIES} a {IMAGE} b {VIDEO} c {IMAGE}")
    out = processor(text=text, images=images, videos=video, time_series=mono)

    refs = [preprocess_image(image, vision) for image in images]
    assert torch.equal(out["pixel_values"], torch.cat([r.pixel_values for r in refs]))
    series_ref = ts.preprocess_time_series(mono)
    video_ref = pro_video.preprocess_video(video, vision)
    body = (
        f"{ts.time_series_placeholder(series_ref.num_tokens)} a {image_prompt(refs[0][1][0])} b "
        f"{pro_video.video_prompt(video_ref.video_grid_thw[0], video_ref.timestamps)} c "
        f"{image_prompt(refs[1][1][0])}"
    )
    assert ids_of(out) == processor.tokenizer(user_turn(body))["input_ids"]


def test_per_call_options_override_the_files(processor, vision):
    image = random_image(150, 100, seed=7)
    small = processor(text=IMAGE, images=image, max_pixels=32 * 32 * 4)
    bounded = dataclasses.replace(vision, max_pixels=32 * 32 * 4)
    assert small["image_grid_thw"].tolist() == [list(image_grid(100, 150, bounded))]
    assert image_grid(100, 150, bounded) != image_grid(100, 150, vision)
    video = random_video(40, 32, 32, seed=8)
    few = processor(text=VIDEO, videos=video, max_frames=4)
    assert few["video_grid_thw"][0, 0].item() == 2  # 4 frames, in pairs
    values = np.sin(np.arange(3000) / 9.0)
    rated = processor(text=SERIES, time_series=values, sampling_rate=200.0)
    assert rated["ts_num_tokens"].tolist() == [ts.num_time_series_tokens(3000, 200.0)]
    with pytest.raises(ts.TimeSeriesInputError, match="1000"):
        processor(text=SERIES, time_series=values, ts_max_points=1000)


def test_mismatched_items_are_an_error(processor):
    with pytest.raises(ValueError, match="placeholders"):
        processor(text=user_turn("no placeholder"), images=random_image(64, 64, 0))
    with pytest.raises(ValueError, match="placeholders"):
        processor(text=user_turn(SERIES * 2), time_series=np.arange(500.0))
    with pytest.raises(ValueError, match="placeholders"):
        processor(text=user_turn(formats.IMAGE_PAD), images=random_image(64, 64, 0))
    with pytest.raises(ValueError, match="prompt text"):
        processor(images=random_image(64, 64, 0))


def test_series_lists_are_read_as_vllm_reads_them():
    assert len(as_series_list([0.1, 0.2, 0.3])) == 1
    assert len(as_series_list(np.zeros((5, 2)))) == 1
    assert len(as_series_list({"values": [1.0, 2.0]})) == 1
    assert len(as_series_list([[0.1, 0.2], [0.3, 0.4]])) == 2
    assert len(as_series_list([np.zeros(4), np.zeros(5)])) == 2
    assert as_series_list(None) == []


def test_batch_is_left_padded(processor):
    texts = [user_turn(f"{IMAGE} short"), user_turn(f"a much longer prompt here {IMAGE}")]
    out = processor(text=texts, images=[random_image(64, 64, 1), random_image(96, 64, 2)])
    assert out["input_ids"].shape[0] == 2
    assert out["attention_mask"][0, 0] == 0 and out["attention_mask"][1, 0] == 1
    assert out["image_grid_thw"].shape == (2, 3)


def test_chat_template_placeholders_are_expanded(processor):
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image"},
                {"type": "time_series"},
                {"type": "text", "text": "Compare."},
            ],
        }
    ]
    prompt = processor.tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, chat_template=processor.chat_template
    )
    assert prompt.count(IMAGE) == 1 and prompt.count(SERIES) == 1
    out = processor(text=prompt, images=random_image(64, 64, 0), time_series=np.arange(800.0))
    assert ids_of(out).count(processor.ts_token_id) == out["ts_num_tokens"].item()


def test_without_a_video_config_videos_use_the_defaults(checkpoint, tmp_path):
    """As on vLLM's path; transformers alone would bound videos by the image file's bounds."""
    bare = Path(shutil.copytree(checkpoint, tmp_path / "bare"))
    (bare / "video_preprocessor_config.json").unlink()
    loaded = transformers.AutoProcessor.from_pretrained(bare)
    expected = ProVisionConfig.from_preprocessor_config(preprocessor_config(TINY_PRO), None)
    assert loaded.vision_config() == expected
    assert expected.video_max_pixels == DEFAULT_PRO_VISION.video_max_pixels


def test_save_and_reload(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    again = transformers.AutoProcessor.from_pretrained(tmp_path)
    assert type(again) is InternS1ProProcessor
    assert again.vision_config() == processor.vision_config()
    image, video = random_image(120, 80, 3), random_video(6, 32, 64, seed=9)
    text = user_turn(f"{IMAGE}{VIDEO}")
    first = processor(text=text, images=image, videos=video)
    second = again(text=text, images=image, videos=video)
    for key in ("input_ids", "pixel_values", "pixel_values_videos", "video_grid_thw"):
        assert torch.equal(first[key], second[key]), key
