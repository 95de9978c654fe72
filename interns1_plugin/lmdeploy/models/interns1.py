"""Intern-S1 / Intern-S1-mini for LMDeploy's PyTorch engine.

InternViT (`intern_s1_vit`) and the pixel-shuffle projector in front of LMDeploy's own
`Qwen3ForCausalLM` or `Qwen3MoeForCausalLM`, picked by `text_config.model_type`; so paged
attention, fused MoE, tensor / expert parallelism, FP8 and CUDA graphs are LMDeploy's. The
checkpoint's tensor names map onto this module tree through `rename_weight` (prefixes) and
`load_weights` (q/k/v stacking of the ViT; the language model stacks its own).

The engine receives what the plugin's `vision_interns1.InternS1VisionModel` emits: one item per
image (all its tiles) or per video frame (one tile) with `pixel_values`, `offset` (first feature
token) and `image_tokens` (feature token count). `InternS1InputProcessor` checks each against the
config and the prompt ids; the features of each item replace the embeddings of exactly its own
positions, wherever the engine's chunking or prefix caching puts them in a step.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from lmdeploy.pytorch.model_inputs import StepContext, StepContextManager
from lmdeploy.pytorch.models.qwen3 import Qwen3ForCausalLM
from lmdeploy.pytorch.models.qwen3_moe import Qwen3MoeForCausalLM
from lmdeploy.pytorch.models.utils.model import vlm_model
from lmdeploy.pytorch.multimodal.data_type import MultiModalData
from lmdeploy.pytorch.nn import LayerNorm
from lmdeploy.pytorch.weight_loader.model_weight_loader import load_weight
from lmdeploy.vl.constants import Modality
from torch import nn
from transformers import PretrainedConfig
from transformers.activations import ACT2FN

from interns1_plugin.lmdeploy.models.base import Features, InternS1EngineModel, join_prefix
from interns1_plugin.lmdeploy.models.inputs import (
    ItemsInputProcessor,
    Packed,
    describe,
    sequence_items,
    step_positions,
)
from interns1_plugin.lmdeploy.models.intern_s1_vit import InternS1VisionModel
from interns1_plugin.lmdeploy.models.layers import mlp_linears
from interns1_plugin.modeling.interns1_vision_config import (
    as_pair,
    check_vision_feature_selection,
    language_model_type,
    tokens_per_tile,
)
from interns1_plugin.modeling.pixel_shuffle import shuffle_tile_features

#: LMDeploy language-model class by `text_config.model_type`.
LANGUAGE_MODELS: dict[str, type[nn.Module]] = {
    "qwen3": Qwen3ForCausalLM,
    "qwen3_moe": Qwen3MoeForCausalLM,
}

#: Checkpoint prefix -> module path: the one weight mapper (applied by LMDeploy's loader).
WEIGHT_PREFIXES: tuple[tuple[str, str], ...] = (
    ("model.language_model.", "language_model.model."),
    ("lm_head.", "language_model.lm_head."),
    ("model.vision_tower.", "vision_tower."),
    ("model.multi_modal_projector.", "multi_modal_projector."),
)
#: The ViT's separate q/k/v projections stacked into one `qkv_proj`: (checkpoint, module, shard).
VISION_STACKED: tuple[tuple[str, str, str], ...] = (
    (".attention.q_proj.", ".attention.qkv_proj.", "q"),
    (".attention.k_proj.", ".attention.qkv_proj.", "k"),
    (".attention.v_proj.", ".attention.qkv_proj.", "v"),
)


class InternS1MultiModalProjector(nn.Module):
    """LayerNorm -> Linear -> GELU -> Linear, from shuffled ViT features to the LM hidden size.

    Unquantized in FP8 checkpoints, like the ViT.
    """

    def __init__(
        self,
        config: PretrainedConfig,
        dtype: torch.dtype | None = None,
        device: torch.device | None = None,
    ) -> None:
        super().__init__()
        in_size = config.vision_config.hidden_size * int(1 / config.downsample_ratio) ** 2
        out_size = config.text_config.hidden_size
        # transformers' `nn.LayerNorm` default epsilon, as the reference model uses.
        self.layer_norm = LayerNorm(in_size, 1e-5, dtype=dtype, device=device)
        self.linear_1, self.linear_2 = mlp_linears(in_size, out_size, out_size, dtype, device)
        self.act = ACT2FN[config.projector_hidden_act]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(self.layer_norm(features))))


class InternS1ForConditionalGeneration(InternS1EngineModel):
    """The checkpoint's `InternS1ForConditionalGeneration` (`model_type: interns1`)."""

    weight_prefixes = WEIGHT_PREFIXES

    def __init__(
        self,
        config: PretrainedConfig,
        ctx_mgr: StepContextManager,
        dtype: torch.dtype | None = None,
        device: torch.device | None = None,
        prefix: str = "",
    ) -> None:
        super().__init__(config, ctx_mgr)
        check_vision_feature_selection(config)
        text_type = language_model_type(config, LANGUAGE_MODELS)
        self.downsample_ratio = float(config.downsample_ratio)
        # `vlm_model` builds placeholders under `--language-model-only`; LMDeploy's loader then
        # skips their tensors.
        self.vision_tower = vlm_model(InternS1VisionModel)(
            config.vision_config, dtype=dtype, device=device
        )
        self.multi_modal_projector = vlm_model(InternS1MultiModalProjector)(
            config, dtype=dtype, device=device
        )
        self.language_model = LANGUAGE_MODELS[text_type](
            config.text_config,
            ctx_mgr,
            dtype=dtype,
            device=device,
            prefix=join_prefix(prefix, "language_model"),
        )
        self.input_processor = InternS1InputProcessor(config, dtype)

    def image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Tiles (N, 3, H, W) -> (N * tokens per tile, LM hidden): drop CLS, shuffle, project."""
        features = shuffle_tile_features(self.vision_tower(pixel_values), self.downsample_ratio)
        return self.multi_modal_projector(features).flatten(0, 1)

    def step_items(self, context: StepContext) -> dict[str, Any]:
        """The step's tiles and, in the same order, the flat step positions of their features."""
        device = context.input_ids.device
        tiles: list[torch.Tensor] = []
        positions: list[torch.Tensor] = []
        for inputs, shift in sequence_items(context):
            for item in inputs.get("image", []):
                tiles.append(item.data)
                positions.append(step_positions(item, shift, device))
        if not tiles:
            return {"pixel_values": None, "image_token_index": None}
        return {"pixel_values": torch.cat(tiles), "image_token_index": torch.cat(positions)}

    def item_features(
        self,
        pixel_values: torch.Tensor | None = None,
        image_token_index: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Features:
        """`image_token_index`: positions in the flattened step whose embeddings the features of
        `pixel_values` replace, in order."""
        if pixel_values is None:
            return []
        features = self.image_features(pixel_values)
        if features.shape[0] != image_token_index.numel():
            raise ValueError(
                f"{pixel_values.shape[0]} tiles give {features.shape[0]} feature tokens for "
                f"{image_token_index.numel()} image positions"
            )
        return [(features, image_token_index)]

    def load_encoder_weights(self, weights: Iterator[tuple[str, torch.Tensor]]) -> None:
        """The ViT (its q/k/v stacked into `qkv_proj`) and the projector."""
        params = dict(self.named_parameters())
        for name, tensor in weights:
            for old, new, shard in VISION_STACKED:
                if old in name:
                    param = self.checkpoint_param(params, name.replace(old, new))
                    load_weight(param, tensor, shard_id=shard)
                    break
            else:
                load_weight(self.checkpoint_param(params, name), tensor)


class InternS1InputProcessor(ItemsInputProcessor):
    """Checks and packs the preprocessing's image items into the engine's `MultiModalData`."""

    item_kind = "image"

    def __init__(self, config: PretrainedConfig, dtype: torch.dtype | None) -> None:
        super().__init__(dtype)
        vision = config.vision_config
        self.tile_shape = (int(vision.num_channels), *as_pair(vision.image_size))
        self.tokens_per_tile = tokens_per_tile(config)
        self.image_token_id = int(config.image_token_id)

    def pack(self, input_ids: list[int], items: list[dict[str, Any]]) -> Packed:
        return {"image": [self._image(input_ids, item) for item in items]}

    def _image(self, input_ids: list[int], item: dict[str, Any]) -> MultiModalData:
        pixels = item.get("pixel_values")
        if not isinstance(pixels, torch.Tensor) or pixels.dim() != 4:
            raise ValueError(
                "an Intern-S1 image item needs pixel_values as a (tiles, channels, height, width) "
                f"tensor, got {describe(pixels)}"
            )
        if tuple(pixels.shape[1:]) != self.tile_shape:
            raise ValueError(
                f"Intern-S1 tiles are {self.tile_shape}, got pixel_values of shape "
                f"{tuple(pixels.shape)}"
            )
        token_id = int(item.get("image_token_id", self.image_token_id))
        if token_id != self.image_token_id:
            raise ValueError(
                f"image items use token id {token_id}, the config's image_token_id is "
                f"{self.image_token_id}"
            )
        start = _as_int(item.get("offset"), "offset")
        count = _as_int(item.get("image_tokens"), "image_tokens")
        if count != pixels.shape[0] * self.tokens_per_tile:
            raise ValueError(
                f"{pixels.shape[0]} tiles need {pixels.shape[0] * self.tokens_per_tile} feature "
                f"tokens, the item says {count}"
            )
        span = input_ids[start : start + count]
        if start < 0 or len(span) != count or any(t != self.image_token_id for t in span):
            raise ValueError(
                f"prompt positions {start}..{start + count - 1} are not all image tokens "
                f"({self.image_token_id})"
            )
        return MultiModalData(
            modality=Modality.IMAGE,
            data=self.in_model_dtype(pixels),
            start=start,
            end=start + count,
            meta={"image_token_id": token_id},
        )


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"an Intern-S1 image item needs an integer {what}, got {value!r}")
    return value


__all__ = [
    "LANGUAGE_MODELS",
    "InternS1ForConditionalGeneration",
    "InternS1InputProcessor",
    "InternS1MultiModalProjector",
]
