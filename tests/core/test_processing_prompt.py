"""Placeholder expansion: exact texts, token counts, and every image / video claimed once."""

from __future__ import annotations

import pytest

from interns1_plugin.formats import (
    IMAGE_SEQ_LENGTH,
    IMG_CONTEXT,
    IMG_END,
    IMG_START,
    VIDEO_PLACEHOLDER,
)
from interns1_plugin.processing.prompt import (
    expand_batch,
    expand_placeholders,
    image_placeholder,
    placeholder_kinds,
    video_placeholder,
)


@pytest.mark.parametrize("tiles", [1, 2, 7, 13])
def test_image_placeholder_is_wrapped_once(tiles):
    text = image_placeholder(tiles)
    assert text.startswith(IMG_START) and text.endswith(IMG_END)
    assert text.count(IMG_START) == text.count(IMG_END) == 1
    assert text.count(IMG_CONTEXT) == IMAGE_SEQ_LENGTH * tiles
    assert text == IMG_START + IMG_CONTEXT * (256 * tiles) + IMG_END


def test_video_placeholder_lists_frames():
    expected = "\n".join(f"Frame{i + 1}: {IMG_START}{IMG_CONTEXT * 256}{IMG_END}" for i in range(3))
    assert video_placeholder(3) == expected
    assert video_placeholder(1) == f"Frame1: {IMG_START}{IMG_CONTEXT * 256}{IMG_END}"
    assert video_placeholder(32).count(IMG_CONTEXT) == 32 * 256


def test_expansion_follows_placeholder_order():
    text = f"a{IMG_CONTEXT}b{VIDEO_PLACEHOLDER}c{IMG_CONTEXT}d"
    assert placeholder_kinds(text) == [IMG_CONTEXT, VIDEO_PLACEHOLDER, IMG_CONTEXT]
    expanded = expand_placeholders(text, iter([2, 5]), iter([3]))
    assert expanded == (
        "a" + image_placeholder(2) + "b" + video_placeholder(3) + "c" + image_placeholder(5) + "d"
    )


def test_batch_shares_images_in_order():
    texts = [f"x{IMG_CONTEXT}", f"{IMG_CONTEXT}{IMG_CONTEXT}y", "plain"]
    expanded = expand_batch(texts, [1, 2, 3], [])
    assert expanded == [
        "x" + image_placeholder(1),
        image_placeholder(2) + image_placeholder(3) + "y",
        "plain",
    ]


def test_counts_must_match_placeholders():
    with pytest.raises(ValueError, match="more"):
        expand_batch([f"{IMG_CONTEXT}{IMG_CONTEXT}"], [1], [])
    with pytest.raises(ValueError, match="more"):
        expand_batch([VIDEO_PLACEHOLDER], [], [])
    with pytest.raises(ValueError, match="placeholders"):
        expand_batch([IMG_CONTEXT], [1, 1], [])
    with pytest.raises(ValueError, match="placeholders"):
        expand_batch(["no media"], [], [4])


def test_custom_tokens_per_tile():
    assert image_placeholder(2, tokens_per_tile=16).count(IMG_CONTEXT) == 32
    assert video_placeholder(2, tokens_per_tile=16).count(IMG_CONTEXT) == 32


def test_token_counts_with_a_tokenizer(tmp_path):
    pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    from interns1_plugin.testing.tiny_interns1 import write_byte_level_tokenizer

    files = write_byte_level_tokenizer(tmp_path)
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path)
    context_id = files.token_ids[IMG_CONTEXT]

    ids = tokenizer(image_placeholder(13))["input_ids"]
    assert len(ids) == 13 * 256 + 2
    assert ids.count(context_id) == 13 * 256
    assert ids[0] == files.token_ids[IMG_START] and ids[-1] == files.token_ids[IMG_END]

    video_ids = tokenizer(video_placeholder(4))["input_ids"]
    assert video_ids.count(context_id) == 4 * 256
    assert video_ids.count(files.token_ids[IMG_START]) == 4
