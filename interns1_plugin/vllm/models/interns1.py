"""Intern-S1 / Intern-S1-mini for vLLM: InternViT + projector in front of vLLM's own Qwen3 LM.

The language model is vLLM's `Qwen3ForCausalLM` or `Qwen3MoeForCausalLM`, picked by
`text_config.model_type`, so tensor/expert parallelism, FP8 and LoRA are vLLM's. The vision side
is `intern_s1_vit.py`; prompt expansion and pixel preparation live in
`interns1_plugin.vllm.multimodal`.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from transformers import PretrainedConfig
from vllm.config import VllmConfig
from vllm.model_executor.layers.activation import get_act_fn
from vllm.model_executor.layers.layernorm import LayerNorm
from vllm.model_executor.layers.quantization import QuantizationConfig
from vllm.model_executor.layers.quantization.fp8 import Fp8Config
from vllm.model_executor.models.interfaces import (
    MultiModalEmbeddings,
    SupportsLoRA,
    SupportsMultiModal,
    SupportsPP,
)
from vllm.model_executor.models.module_mapping import MultiModelKeys
from vllm.model_executor.models.utils import (
    AutoWeightsLoader,
    WeightsMapper,
    init_vllm_registered_model,
    maybe_prefix,
)
from vllm.multimodal import MULTIMODAL_REGISTRY
from vllm.sequence import IntermediateTensors

from interns1_plugin import formats
from interns1_plugin.modeling.interns1_vision_config import (
    check_vision_feature_selection,
    language_model_type,
)
from interns1_plugin.modeling.pixel_shuffle import shuffle_tile_features
from interns1_plugin.vllm.models.intern_s1_vit import InternS1VisionModel
from interns1_plugin.vllm.models.layers import mlp_linears
from interns1_plugin.vllm.models.mm_fields import flat
from interns1_plugin.vllm.multimodal.interns1 import (
    InternS1DummyInputsBuilder,
    InternS1MultiModalProcessor,
    InternS1ProcessingInfo,
)

#: vLLM architecture of the language model, by `text_config.model_type`.
LANGUAGE_MODELS: dict[str, str] = {
    "qwen3": "Qwen3ForCausalLM",
    "qwen3_moe": "Qwen3MoeForCausalLM",
}

#: (pixel field, per-item tile count field, precomputed embedding field), one row per modality.
_MM_FIELDS = (
    ("pixel_values", "image_num_patches", "image_embeds"),
    ("pixel_values_videos", "video_num_patches", "video_embeds"),
)


class InternS1MultiModalProjector(nn.Module):
    """LayerNorm -> Linear -> GELU -> Linear, from shuffled ViT features to the LM hidden size."""

    def __init__(self, config: PretrainedConfig, *, prefix: str = "") -> None:
        super().__init__()
        in_size = config.vision_config.hidden_size * int(1 / config.downsample_ratio) ** 2
        out_size = config.text_config.hidden_size
        self.layer_norm = LayerNorm(in_size)
        self.linear_1, self.linear_2 = mlp_linears(
            in_size,
            out_size,
            out_size,
            quant_config=None,
            disable_tp=False,
            prefixes=(f"{prefix}.linear_1", f"{prefix}.linear_2"),
        )
        self.act = get_act_fn(config.projector_hidden_act)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.linear_1(self.layer_norm(features))
        hidden, _ = self.linear_2(self.act(hidden))
        return hidden


def _match_ignored_layers_by_suffix(quant_config: QuantizationConfig | None) -> None:
    """Let FP8 ignore lists name layers by suffix (`mlp.gate`, `lm_head`).

    vLLM matches `modules_to_not_convert` exactly against its own module path
    (`language_model.model.layers.0.mlp.gate`), so short names would be missed and those
    unquantized checkpoint weights loaded as FP8. Suffix matching still accepts full names.
    """
    if isinstance(quant_config, Fp8Config):
        quant_config.ignored_layers_match_mode = "suffix"


@MULTIMODAL_REGISTRY.register_processor(
    InternS1MultiModalProcessor,
    info=InternS1ProcessingInfo,
    dummy_inputs=InternS1DummyInputsBuilder,
)
class InternS1ForConditionalGeneration(nn.Module, SupportsMultiModal, SupportsPP, SupportsLoRA):
    """The checkpoint's `InternS1ForConditionalGeneration` (`model_type: interns1`)."""

    # The ViT can run whole on every rank, each on its share of the tiles.
    supports_encoder_tp_data = True

    # The one mapping from checkpoint names (transformers' native InternVL layout) to this
    # module tree; the LM applies its own q/k/v and gate/up stacking below `language_model`.
    hf_to_vllm_mapper = WeightsMapper(
        orig_to_new_stacked={
            ".attention.q_proj": (".attention.qkv_proj", "q"),
            ".attention.k_proj": (".attention.qkv_proj", "k"),
            ".attention.v_proj": (".attention.qkv_proj", "v"),
        },
        orig_to_new_prefix={
            "model.language_model.": "language_model.model.",
            "lm_head.": "language_model.lm_head.",
            "model.vision_tower.": "vision_tower.",
            "model.multi_modal_projector.": "multi_modal_projector.",
        },
    )
    # Fused modules of both the ViT and the LM, for quantization ignore lists and LoRA.
    packed_modules_mapping = {
        "qkv_proj": ["q_proj", "k_proj", "v_proj"],
        "gate_up_proj": ["gate_proj", "up_proj"],
    }

    @classmethod
    def get_placeholder_str(cls, modality: str, i: int) -> str | None:
        """What the Intern-S1 chat template writes for an image or a video part."""
        if modality.startswith("image"):
            return formats.IMG_CONTEXT
        if modality.startswith("video"):
            return formats.VIDEO_PLACEHOLDER
        raise ValueError(f"Intern-S1 takes images and videos, not {modality!r}")

    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
        super().__init__()
        config = vllm_config.model_config.hf_config
        self.config = config
        check_vision_feature_selection(config)
        text_type = language_model_type(config, LANGUAGE_MODELS)
        self.downsample_ratio = float(config.downsample_ratio)

        # No quantization for the ViT and projector (as in vLLM's built-in Intern-S1): FP8
        # checkpoints keep these weights unquantized.
        with self._mark_tower_model(vllm_config, {"image", "video"}):
            self.vision_tower = InternS1VisionModel(
                config.vision_config, prefix=maybe_prefix(prefix, "vision_tower")
            )
            self.multi_modal_projector = InternS1MultiModalProjector(
                config, prefix=maybe_prefix(prefix, "multi_modal_projector")
            )
        _match_ignored_layers_by_suffix(vllm_config.quant_config)
        with self._mark_language_model(vllm_config):
            self.language_model = init_vllm_registered_model(
                vllm_config=vllm_config,
                hf_config=config.text_config,
                architectures=[LANGUAGE_MODELS[text_type]],
                prefix=maybe_prefix(prefix, "language_model"),
            )
        self.make_empty_intermediate_tensors = self.language_model.make_empty_intermediate_tensors

    def _embed_tiles(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Tiles (N, 3, H, W) -> (N, tokens per tile, LM hidden): drop CLS, shuffle, project."""
        features = shuffle_tile_features(self.vision_tower(pixel_values), self.downsample_ratio)
        return self.multi_modal_projector(features)

    def embed_multimodal(self, **kwargs: object) -> MultiModalEmbeddings:
        """One (tiles * 256, hidden) tensor per image or video, in the order of the items."""
        embeddings: list[torch.Tensor] = []
        for pixel_key, count_key, embeds_key in _MM_FIELDS:
            if kwargs.get(embeds_key) is not None:
                embeddings.extend(kwargs[embeds_key])  # type: ignore[arg-type]
            elif kwargs.get(pixel_key) is not None:
                tiles_per_item = flat(kwargs[count_key]).flatten().tolist()
                tokens = self._embed_tiles(flat(kwargs[pixel_key]))
                per_item = [tiles * tokens.shape[1] for tiles in tiles_per_item]
                embeddings.extend(tokens.reshape(-1, tokens.shape[-1]).split(per_item))
        return embeddings

    def forward(
        self,
        input_ids: torch.Tensor | None,
        positions: torch.Tensor,
        intermediate_tensors: IntermediateTensors | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs: object,
    ) -> torch.Tensor | IntermediateTensors:
        if intermediate_tensors is not None:
            inputs_embeds = None
        return self.language_model.model(input_ids, positions, intermediate_tensors, inputs_embeds)

    def compute_logits(self, hidden_states: torch.Tensor) -> torch.Tensor | None:
        return self.language_model.compute_logits(hidden_states)

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        return AutoWeightsLoader(self).load_weights(weights, mapper=self.hf_to_vllm_mapper)

    def get_mm_mapping(self) -> MultiModelKeys:
        return MultiModelKeys.from_string_field(
            language_model="language_model",
            connector="multi_modal_projector",
            tower_model="vision_tower",
        )
