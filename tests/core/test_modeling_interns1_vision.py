"""Intern-S1 / mini vision-side config reading and tile-feature shuffling shared by both engines."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from interns1_plugin.modeling.interns1_vision_config import (
    as_pair,
    check_vision_feature_selection,
    language_model_type,
    tokens_per_tile,
)
from interns1_plugin.modeling.pixel_shuffle import shuffle_tile_features


def _config(**overrides: object) -> SimpleNamespace:
    fields = dict(
        vision_config=SimpleNamespace(image_size=[448, 448], patch_size=[14, 14]),
        text_config=SimpleNamespace(model_type="qwen3"),
        downsample_ratio=0.5,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    return SimpleNamespace(**{**fields, **overrides})


def test_as_pair() -> None:
    assert as_pair(448) == (448, 448)
    assert as_pair([448, 224]) == (448, 224)
    assert as_pair((14, 14)) == (14, 14)


def test_tokens_per_tile() -> None:
    assert tokens_per_tile(_config()) == 32 * 32 // 4
    ints = _config(vision_config=SimpleNamespace(image_size=56, patch_size=14))
    assert tokens_per_tile(ints) == 4 * 4 // 4


def test_feature_selection_check() -> None:
    check_vision_feature_selection(_config())
    for bad in ({"vision_feature_layer": -2}, {"vision_feature_select_strategy": "full"}):
        with pytest.raises(NotImplementedError, match="last ViT layer without CLS"):
            check_vision_feature_selection(_config(**bad))


def test_language_model_type() -> None:
    assert language_model_type(_config(), {"qwen3", "qwen3_moe"}) == "qwen3"
    with pytest.raises(ValueError, match="'llama'"):
        language_model_type(_config(text_config=SimpleNamespace(model_type="llama")), {"qwen3"})


def test_shuffle_tile_features_drop_cls_and_fold_2x2_blocks() -> None:
    """Token (k, j) of a 4x4 patch grid at ratio 1/2 is patches (2k, 2j), (2k, 2j+1),
    (2k+1, 2j), (2k+1, 2j+1) concatenated, row-major over (k, j)."""
    tiles, side, channels = 2, 4, 3
    hidden = torch.randn(tiles, 1 + side * side, channels)
    out = shuffle_tile_features(hidden, 0.5)
    assert out.shape == (tiles, 4, 4 * channels)
    for n in range(tiles):
        grid = hidden[n, 1:].reshape(side, side, channels)
        for k in range(2):
            for j in range(2):
                block = [grid[2 * k, 2 * j], grid[2 * k, 2 * j + 1]]
                block += [grid[2 * k + 1, 2 * j], grid[2 * k + 1, 2 * j + 1]]
                assert torch.equal(out[n, k * 2 + j], torch.cat(block))
