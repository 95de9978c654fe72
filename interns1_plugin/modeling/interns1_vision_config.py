"""What Intern-S1 / mini's config says about the vision side, checked once for both engines.

The checkpoint's config allows more than the published models use (other feature layers, keeping
CLS, other language models); the engines' models refuse those rather than run them wrongly.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


def as_pair(value: int | list[int] | tuple[int, ...]) -> tuple[int, int]:
    """A size the config writes as one int or as (height, width)."""
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[1])


def check_vision_feature_selection(config: Any) -> None:
    """The projector reads the ViT's last layer without CLS; refuse any other selection."""
    if config.vision_feature_layer != -1 or config.vision_feature_select_strategy != "default":
        raise NotImplementedError(
            "Intern-S1 reads the last ViT layer without CLS "
            "(vision_feature_layer -1, vision_feature_select_strategy 'default')"
        )


def language_model_type(config: Any, supported: Collection[str]) -> str:
    """`text_config.model_type`, if the engine has a language model for it."""
    text_type = config.text_config.model_type
    if text_type not in supported:
        raise ValueError(f"unsupported Intern-S1 language model type {text_type!r}")
    return text_type


def tokens_per_tile(config: Any) -> int:
    """Feature tokens one tile becomes: its patch grid shrunk by the pixel shuffle.

    256 for 448-pixel tiles, 14-pixel patches and a downsample ratio of 0.5.
    """
    vision = config.vision_config
    side = as_pair(vision.image_size)[0] // as_pair(vision.patch_size)[0]
    return int(side * side * config.downsample_ratio**2)


__all__ = [
    "as_pair",
    "check_vision_feature_selection",
    "language_model_type",
    "tokens_per_tile",
]
