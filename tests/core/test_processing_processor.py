"""`InternS1Processor` against transformers' own InternVL processor on the same inputs.

The reference is transformers' `InternVLProcessor` over its `GotOcr2ImageProcessorPil` with
tiling on, sharing the tiny checkpoint's tokenizer; ids must be identical and pixels within 1e-5.
transformers checks a processor's video processor against a class it only exports with
torchvision installed, so the reference is built with that check relaxed (no video involved).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
PIL_Image = pytest.importorskip("PIL.Image")
transformers = pytest.importorskip("transformers")

from interns1_plugin.configs import register_with_transformers  # noqa: E402
from interns1_plugin.formats import (  # noqa: E402
    IM_END,
    IM_START,
    IMG_CONTEXT,
    IMG_END,
    IMG_START,
    VIDEO_PLACEHOLDER,
)
from interns1_plugin.processing.image_processor import InternS1ImageProcessor  # noqa: E402
from interns1_plugin.processing.processor import InternS1Processor  # noqa: E402
from interns1_plugin.processing.prompt import video_placeholder  # noqa: E402
from interns1_plugin.processing.video_processor import InternS1VideoProcessor  # noqa: E402
from interns1_plugin.testing.tiny_interns1 import build_tiny_interns1  # noqa: E402

TOLERANCE = 1e-5


class _ReferenceProcessor(transformers.InternVLProcessor):
    def check_argument_for_proper_class(self, argument_name, argument):
        return type(argument)


def reference_processor(tokenizer):
    image_processor = transformers.GotOcr2ImageProcessorPil(
        size={"height": 448, "width": 448},
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
        crop_to_patches=True,
        min_patches=1,
        max_patches=12,
    )
    return _ReferenceProcessor(
        image_processor=image_processor, tokenizer=tokenizer, video_processor=None
    )


def random_image(width: int, height: int, seed: int):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return PIL_Image.fromarray(pixels)


def user_turn(body: str) -> str:
    return f"{IM_START}user\n{body}{IM_END}\n{IM_START}assistant\n"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    register_with_transformers()
    return build_tiny_interns1(tmp_path_factory.mktemp("tiny") / "mini", "mini")


@pytest.fixture(scope="module")
def processor(checkpoint) -> InternS1Processor:
    return transformers.AutoProcessor.from_pretrained(checkpoint)


@pytest.fixture(scope="module")
def reference(processor):
    return reference_processor(processor.tokenizer)


def test_autoprocessor_returns_the_plugin_processor(processor):
    assert type(processor) is InternS1Processor
    assert type(processor.image_processor) is InternS1ImageProcessor
    assert type(processor.video_processor) is InternS1VideoProcessor
    assert processor.image_seq_length == 256
    assert processor.image_token == IMG_CONTEXT and processor.video_token == VIDEO_PLACEHOLDER
    assert processor.image_token_id == processor.tokenizer.convert_tokens_to_ids(IMG_CONTEXT)
    assert processor.chat_template is not None
    # The published file says crop_to_patches: false; tiling stays on.
    assert processor.image_processor.get_number_of_image_patches(1500, 2000) == 13


@pytest.mark.parametrize(
    "sizes",
    [[(2000, 1500)], [(448, 448)], [(1, 1)], [(5000, 50), (640, 480)], [(300, 900), (900, 300)]],
    ids=lambda sizes: "+".join(f"{w}x{h}" for w, h in sizes),
)
def test_matches_transformers_internvl_processor(processor, reference, sizes):
    images = [random_image(w, h, seed=i) for i, (w, h) in enumerate(sizes)]
    text = user_turn("".join(f"{IMG_CONTEXT}\nImage {i}. " for i in range(len(images))))
    expected = reference(text=text, images=images, return_tensors="pt")
    ours = processor(text=text, images=images)

    assert torch.equal(ours["input_ids"], expected["input_ids"])
    assert torch.equal(ours["attention_mask"], expected["attention_mask"])
    assert ours["pixel_values"].shape == expected["pixel_values"].shape
    assert torch.allclose(ours["pixel_values"], expected["pixel_values"], atol=TOLERANCE, rtol=0)


def test_placeholder_token_counts(processor):
    image = random_image(2000, 1500, seed=0)
    out = processor(text=user_turn(f"{IMG_CONTEXT}Describe."), images=image)
    ids = out["input_ids"][0].tolist()
    assert ids.count(processor.image_token_id) == 13 * 256
    assert ids.count(processor.start_image_token_id) == ids.count(processor.end_image_token_id) == 1
    assert out["pixel_values"].shape == (13, 3, 448, 448)
    assert set(out) == {"input_ids", "attention_mask", "pixel_values"}


def test_num_patches_on_request(processor):
    images = [random_image(2000, 1500, 1), random_image(200, 200, 2)]
    video = np.zeros((100, 64, 64, 3), dtype=np.uint8)
    text = user_turn(f"{IMG_CONTEXT}{VIDEO_PLACEHOLDER}{IMG_CONTEXT}")
    out = processor(text=text, images=images, videos=video, num_frames=6, return_num_patches=True)
    assert out["image_num_patches"].tolist() == [13, 1]
    assert out["video_num_patches"].tolist() == [6]
    assert out["pixel_values"].shape[0] == 13 + 6 + 1


def test_video_expands_to_frames_and_pixels_interleave(processor):
    rng = np.random.default_rng(5)
    video = rng.integers(0, 256, (300, 90, 120, 3), dtype=np.uint8)
    image = random_image(896, 448, seed=9)
    text = user_turn(f"{VIDEO_PLACEHOLDER}\nthen {IMG_CONTEXT}")
    out = processor(text=text, images=image, videos=video, num_frames=4)

    decoded = processor.tokenizer.decode(out["input_ids"][0])
    assert video_placeholder(4) in decoded
    assert decoded.count(IMG_START) == decoded.count(IMG_END) == 4 + 1
    assert out["input_ids"][0].tolist().count(processor.image_token_id) == (4 + 3) * 256
    video_pixels = processor.video_processor(video, num_frames=4)["pixel_values_videos"]
    image_pixels = processor.image_processor(image)["pixel_values"]
    assert torch.equal(out["pixel_values"][:4], video_pixels)
    assert torch.equal(out["pixel_values"][4:], image_pixels)


def test_default_frame_cap_bounds_long_videos(processor):
    video = np.zeros((2000, 32, 32, 3), dtype=np.uint8)
    out = processor(text=user_turn(VIDEO_PLACEHOLDER), videos=video)
    assert out["pixel_values"].shape[0] == 32
    assert out["input_ids"][0].tolist().count(processor.image_token_id) == 32 * 256


def test_batch_is_left_padded(processor, reference):
    images = [random_image(448, 448, 1), random_image(1200, 400, 2)]
    texts = [user_turn(f"{IMG_CONTEXT} short"), user_turn(f"a longer prompt {IMG_CONTEXT}")]
    ours = processor(text=texts, images=images)
    expected = reference(text=texts, images=images, return_tensors="pt", padding=True)
    assert torch.equal(ours["input_ids"], expected["input_ids"])
    assert torch.equal(ours["attention_mask"], expected["attention_mask"])
    assert ours["attention_mask"][0, 0] == 0  # padding sits on the left
    assert torch.allclose(ours["pixel_values"], expected["pixel_values"], atol=TOLERANCE, rtol=0)


def test_mismatched_media_is_an_error(processor):
    with pytest.raises(ValueError):
        processor(text=user_turn("no placeholder"), images=random_image(64, 64, 0))
    with pytest.raises(ValueError):
        processor(text=user_turn(IMG_CONTEXT * 2), images=random_image(64, 64, 0))
    with pytest.raises(ValueError):
        processor(images=random_image(64, 64, 0))


def test_chat_template_placeholders_are_expanded(processor):
    messages = [
        {
            "role": "user",
            "content": [{"type": "image"}, {"type": "video"}, {"type": "text", "text": "Compare."}],
        }
    ]
    prompt = processor.tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, chat_template=processor.chat_template
    )
    assert prompt.count(IMG_CONTEXT) == 1 and prompt.count(VIDEO_PLACEHOLDER) == 1
    video = np.zeros((10, 32, 32, 3), dtype=np.uint8)
    out = processor(text=prompt, images=random_image(64, 64, 0), videos=video)
    assert out["input_ids"][0].tolist().count(processor.image_token_id) == (1 + 10) * 256
    assert processor.video_token_id not in out["input_ids"][0].tolist()


def test_num_multimodal_tokens(processor):
    data = processor._get_num_multimodal_tokens(image_sizes=[[1500, 2000], [448, 448]])
    assert data.num_image_patches == [13, 1]
    assert data.num_image_tokens == [2 + 13 * 256, 2 + 256]


def test_save_and_reload(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    again = transformers.AutoProcessor.from_pretrained(tmp_path)
    assert type(again) is InternS1Processor
    image = random_image(700, 500, 3)
    text = user_turn(IMG_CONTEXT)
    first, second = processor(text=text, images=image), again(text=text, images=image)
    assert torch.equal(first["input_ids"], second["input_ids"])
    assert torch.equal(first["pixel_values"], second["pixel_values"])
