"""The `interns1_pro` config (alias `interns1_1`): Intern-S1-Pro without remote code.

Pro is a Qwen3-MoE text model with two additions (FoPE position encoding and grouped expert
routing, both carried by `text_config`), a Qwen3-VL-style vision tower (`vision_config`, no
deepstack) and a time-series encoder (`ts_config`). The classes here read the published keys as
they are; transformers' own `qwen3_moe` and `qwen3_vl_vision` configs hold the standard ones.

- `text_config.rope_scaling` carries the FoPE keys (`fope_init_factor`, `fope_sep_head`,
  `num_inv_freq`) next to `rope_type: default`; transformers 5 keeps them in `rope_parameters`
  and `rope_scaling` reads the same dict, which is what the engines look at.
- `text_config.router_n_groups`: experts are split into that many equal groups and each token
  takes `num_experts_per_tok / router_n_groups` experts from every group.
- `tie_word_embeddings` mirrors the text config (the top-level default would silently tie).
- `auto_map` is dropped, as for `interns1`: these classes replace the hub's Python files.
"""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig
from transformers.models.auto.configuration_auto import CONFIG_MAPPING
from transformers.models.qwen3_vl.configuration_qwen3_vl import Qwen3VLVisionConfig

from interns1_plugin import formats

#: The text model a `text_config` with no (or an unknown) `model_type` is read as.
PRO_TEXT_MODEL_TYPE = "qwen3_moe"
#: Keys of `rope_scaling` that switch FoPE on.
FOPE_KEYS = ("fope_init_factor", "fope_sep_head", "num_inv_freq")


def _text_config(text_config: PretrainedConfig | dict[str, Any] | None) -> PretrainedConfig:
    if isinstance(text_config, PretrainedConfig):
        return text_config
    data = dict(text_config or {})
    model_type = data.get("model_type")
    if model_type not in CONFIG_MAPPING:
        data["model_type"] = PRO_TEXT_MODEL_TYPE
    return CONFIG_MAPPING[data["model_type"]](**data)


def _sub_config(
    value: PretrainedConfig | dict[str, Any] | None, config_class: type[PretrainedConfig]
) -> PretrainedConfig:
    if isinstance(value, PretrainedConfig):
        return value
    data = dict(value or {})
    data.pop("model_type", None)
    return config_class(**data)


class InternS1ProVisionConfig(Qwen3VLVisionConfig):
    """Qwen3-VL vision config; Pro's tower has no deepstack mergers."""

    model_type = "interns1_pro_vision"
    base_config_key = "vision_config"

    def __init__(self, deepstack_visual_indexes: list[int] | None = None, **kwargs: Any) -> None:
        super().__init__(deepstack_visual_indexes=list(deepstack_visual_indexes or []), **kwargs)


class InternS1ProTimeSeriesConfig(PretrainedConfig):
    """The time-series encoder: a per-patch subsampler, a Whisper-style encoder, a projector.

    The subsampler's sizes are fixed by the architecture (128-wide, 8 heads, one layer); these keys
    size the Whisper-style part and the projector into the language model.
    """

    model_type = "interns1_pro_time_series"
    base_config_key = "ts_config"

    def __init__(
        self,
        d_model: int = 1024,
        encoder_layers: int = 24,
        encoder_attention_heads: int = 16,
        encoder_ffn_dim: int = 4096,
        activation_function: str = "gelu",
        num_mel_bins: int = 80,
        max_source_positions: int = 1500,
        scale_embedding: bool = False,
        ts_adapt_in_dim: int = 256,
        ts_adapt_out_dim: int = 1024,
        ts_hidden_dim: int = 1024,
        out_hidden_size: int = 4096,
        **kwargs: Any,
    ) -> None:
        self.d_model = d_model
        self.encoder_layers = encoder_layers
        self.encoder_attention_heads = encoder_attention_heads
        self.encoder_ffn_dim = encoder_ffn_dim
        self.activation_function = activation_function
        self.num_mel_bins = num_mel_bins
        self.max_source_positions = max_source_positions
        self.scale_embedding = scale_embedding
        self.ts_adapt_in_dim = ts_adapt_in_dim
        self.ts_adapt_out_dim = ts_adapt_out_dim
        self.ts_hidden_dim = ts_hidden_dim
        self.out_hidden_size = out_hidden_size
        super().__init__(**kwargs)


class InternS1ProConfig(PretrainedConfig):
    """Top-level Intern-S1-Pro config (`model_type: interns1_pro`)."""

    model_type = "interns1_pro"
    sub_configs = {
        "text_config": PretrainedConfig,
        "vision_config": InternS1ProVisionConfig,
        "ts_config": InternS1ProTimeSeriesConfig,
    }

    def __init__(
        self,
        text_config: PretrainedConfig | dict[str, Any] | None = None,
        vision_config: PretrainedConfig | dict[str, Any] | None = None,
        ts_config: PretrainedConfig | dict[str, Any] | None = None,
        image_token_id: int = formats.PRO_IMAGE_TOKEN_ID,
        video_token_id: int = formats.PRO_VIDEO_TOKEN_ID,
        vision_start_token_id: int | None = None,
        vision_end_token_id: int | None = None,
        ts_token_id: int | None = None,
        ts_start_token_id: int | None = None,
        ts_end_token_id: int | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("auto_map", None)
        self.text_config = _text_config(text_config)
        self.vision_config = _sub_config(vision_config, InternS1ProVisionConfig)
        # A checkpoint without a time-series encoder stays loadable; its requests get an error.
        self.ts_config = (
            None if ts_config is None else _sub_config(ts_config, InternS1ProTimeSeriesConfig)
        )
        self.image_token_id = image_token_id
        self.video_token_id = video_token_id
        self.vision_start_token_id = vision_start_token_id
        self.vision_end_token_id = vision_end_token_id
        self.ts_token_id = ts_token_id
        self.ts_start_token_id = ts_start_token_id
        self.ts_end_token_id = ts_end_token_id
        kwargs.setdefault(
            "tie_word_embeddings", bool(getattr(self.text_config, "tie_word_embeddings", False))
        )
        super().__init__(**kwargs)

    def get_text_config(self, *args: Any, **kwargs: Any) -> PretrainedConfig:
        return self.text_config

    @property
    def uses_fope(self) -> bool:
        rope = getattr(self.text_config, "rope_scaling", None) or {}
        return any(rope.get(key) is not None for key in FOPE_KEYS)


class InternS1_1Config(InternS1ProConfig):  # noqa: N801 - the published name
    """The same model published under `model_type: interns1_1`."""

    model_type = "interns1_1"

    # Spelled out: transformers generates an `__init__` for config subclasses without one,
    # and that one would skip building the sub-configs.
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)


__all__ = [
    "FOPE_KEYS",
    "InternS1ProConfig",
    "InternS1ProTimeSeriesConfig",
    "InternS1ProVisionConfig",
    "InternS1_1Config",
]
