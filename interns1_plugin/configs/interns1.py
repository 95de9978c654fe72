"""The `interns1` config: Intern-S1 (Qwen3-MoE text) and Intern-S1-mini (Qwen3 text).

The checkpoints store their math in transformers' native InternVL layout, so this config subclasses
`InternVLConfig`: the native `InternVLForConditionalGeneration` builds from it unchanged. What
differs from InternVL is how the published `config.json` is written, and this class reads it as is:

- `text_config` is a full `qwen3` / `qwen3_moe` config with legacy keys (`rope_theta`,
  `num_experts`, `torch_dtype`); transformers' own text config classes translate them.
- `tie_word_embeddings` lives inside `text_config` only. InternVL's top-level default is `True`,
  which would silently tie `lm_head` to the embeddings, so the top level mirrors the text config.
- `auto_map` points at the hub's Python files. It is dropped: this class replaces them, and a
  config object that still carried it would let a later `trust_remote_code=True` load them.
"""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, InternVLConfig, PretrainedConfig
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from interns1_plugin.configs.vision import InternS1VisionConfig

#: The text model a `text_config` without `model_type` is taken to be (Intern-S1-mini's).
DEFAULT_TEXT_MODEL_TYPE = "qwen3"
#: InternVL's generic default; the published configs carry their own id, which always wins.
DEFAULT_IMAGE_TOKEN_ID = 151667


def _text_config(text_config: PretrainedConfig | dict[str, Any] | None) -> PretrainedConfig:
    """Build the text config with transformers' own class for its `model_type`."""
    if isinstance(text_config, PretrainedConfig):
        return text_config
    data = dict(text_config or {})
    model_type = data.setdefault("model_type", DEFAULT_TEXT_MODEL_TYPE)
    return CONFIG_MAPPING[model_type](**data)


def _vision_config(vision_config: PretrainedConfig | dict[str, Any] | None) -> PretrainedConfig:
    """Build the vision config as `interns1_vision` unless a config object is handed in."""
    if isinstance(vision_config, PretrainedConfig):
        return vision_config
    data = dict(vision_config or {})
    data.pop("model_type", None)
    return InternS1VisionConfig(**data)


class InternS1Config(InternVLConfig):
    """Top-level Intern-S1 / Intern-S1-mini config (`model_type: interns1`)."""

    model_type = "interns1"
    sub_configs = {"text_config": AutoConfig, "vision_config": InternS1VisionConfig}

    def __init__(
        self,
        vision_config: PretrainedConfig | dict[str, Any] | None = None,
        text_config: PretrainedConfig | dict[str, Any] | None = None,
        image_token_id: int = DEFAULT_IMAGE_TOKEN_ID,
        image_seq_length: int = 256,
        downsample_ratio: float = 0.5,
        projector_hidden_act: str = "gelu",
        vision_feature_layer: int | list[int] = -1,
        vision_feature_select_strategy: str = "default",
        **kwargs: Any,
    ) -> None:
        kwargs.pop("auto_map", None)
        text = _text_config(text_config)
        kwargs.setdefault("tie_word_embeddings", bool(getattr(text, "tie_word_embeddings", False)))
        super().__init__(
            vision_config=_vision_config(vision_config),
            text_config=text,
            image_token_id=image_token_id,
            image_seq_length=image_seq_length,
            downsample_ratio=downsample_ratio,
            projector_hidden_act=projector_hidden_act,
            vision_feature_layer=vision_feature_layer,
            vision_feature_select_strategy=vision_feature_select_strategy,
            **kwargs,
        )


__all__ = ["DEFAULT_IMAGE_TOKEN_ID", "DEFAULT_TEXT_MODEL_TYPE", "InternS1Config"]
