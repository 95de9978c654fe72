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

from collections.abc import Iterable
from typing import Any

import torch
from lmdeploy.pytorch.engine.input_process import BaseModelInputProcessor, PreprocessInputResult
from lmdeploy.pytorch.model_inputs import StepContext, StepContextManager
from lmdeploy.pytorch.models.qwen3 import Qwen3ForCausalLM
from lmdeploy.pytorch.models.qwen3_moe import Qwen3MoeForCausalLM
from lmdeploy.pytorch.models.utils.cudagraph import CudaGraphMixin
from lmdeploy.pytorch.models.utils.model import DeployModelMixin, vlm_model
from lmdeploy.pytorch.multimodal.data_type import MultiModalData
from lmdeploy.pytorch.nn import LayerNorm
from lmdeploy.pytorch.nn.linear import build_colwise_linear, build_rowwise_linear
from lmdeploy.pytorch.weight_loader.model_weight_loader import load_weight
from lmdeploy.vl.constants import Modality
from torch import nn
from transformers import PretrainedConfig
from transformers.activations import ACT2FN

from interns1_plugin.lmdeploy.models.intern_s1_vit import InternS1VisionModel
from interns1_plugin.modeling.pixel_shuffle import pixel_shuffle

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
_LANGUAGE_PREFIX = "language_model."


def tokens_per_tile(config: PretrainedConfig) -> int:
    """Feature tokens one tile becomes: its patch grid shrunk by the pixel shuffle."""
    vision = config.vision_config
    size, patch = vision.image_size, vision.patch_size
    side = (size if isinstance(size, int) else size[0]) // (
        patch if isinstance(patch, int) else patch[0]
    )
    return int(side * side * config.downsample_ratio**2)


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
        self.linear_1 = build_colwise_linear(
            in_size, out_size, bias=True, dtype=dtype, device=device, is_tp=True, dp_disable_tp=True
        )
        self.act = ACT2FN[config.projector_hidden_act]
        self.linear_2 = build_rowwise_linear(
            out_size,
            out_size,
            bias=True,
            dtype=dtype,
            device=device,
            is_tp=True,
            dp_disable_tp=True,
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(self.layer_norm(features))))


class InternS1ForConditionalGeneration(nn.Module, DeployModelMixin, CudaGraphMixin):
    """The checkpoint's `InternS1ForConditionalGeneration` (`model_type: interns1`)."""

    # Fused modules of the ViT and the LM, for quantization ignore lists and LoRA.
    packed_modules_mapping = {
        "qkv_proj": ["q_proj", "k_proj", "v_proj"],
        "gate_up_proj": ["gate_proj", "up_proj"],
    }

    def __init__(
        self,
        config: PretrainedConfig,
        ctx_mgr: StepContextManager,
        dtype: torch.dtype | None = None,
        device: torch.device | None = None,
        prefix: str = "",
    ) -> None:
        super().__init__()
        if config.vision_feature_layer != -1 or config.vision_feature_select_strategy != "default":
            raise NotImplementedError(
                "Intern-S1 reads the last ViT layer without CLS "
                "(vision_feature_layer -1, vision_feature_select_strategy 'default')"
            )
        text_type = config.text_config.model_type
        if text_type not in LANGUAGE_MODELS:
            raise ValueError(f"unsupported Intern-S1 language model type {text_type!r}")
        self.config = config
        self.ctx_mgr = ctx_mgr
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
            prefix=_join(prefix, "language_model"),
        )
        self.input_processor = InternS1InputProcessor(config, dtype)

    # --- engine interface ---------------------------------------------------------------------

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def get_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.language_model.get_logits(hidden_states)

    def update_weights(self) -> None:
        """Nothing of its own: the language model ties its own embeddings."""

    def get_input_processor(self) -> BaseModelInputProcessor:
        return self.input_processor

    def image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Tiles (N, 3, H, W) -> (N * tokens per tile, LM hidden): drop CLS, shuffle, project."""
        features = self.vision_tower(pixel_values)[:, 1:]
        n, num_patches, channels = features.shape
        side = int(num_patches**0.5)
        features = pixel_shuffle(features.reshape(n, side, side, channels), self.downsample_ratio)
        features = self.multi_modal_projector(features.reshape(n, -1, features.shape[-1]))
        return features.flatten(0, 1)

    def forward(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor,
        past_key_values: list[list[torch.Tensor]],
        attn_metadata: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_token_index: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Any:
        """`image_token_index`: positions in the flattened step whose embeddings the features of
        `pixel_values` replace, in order."""
        if pixel_values is not None:
            if inputs_embeds is None:
                inputs_embeds = self.get_input_embeddings()(input_ids)
            features = self.image_features(pixel_values)
            if features.shape[0] != image_token_index.numel():
                raise ValueError(
                    f"{pixel_values.shape[0]} tiles give {features.shape[0]} feature tokens for "
                    f"{image_token_index.numel()} image positions"
                )
            inputs_embeds[0, image_token_index] = features.to(inputs_embeds.dtype)
        return self.language_model(
            input_ids=input_ids,
            position_ids=position_ids,
            past_key_values=past_key_values,
            attn_metadata=attn_metadata,
            inputs_embeds=inputs_embeds,
        )

    def prepare_inputs_for_generation(
        self,
        past_key_values: list[list[torch.Tensor]],
        inputs_embeds: torch.Tensor | None = None,
        context: StepContext = None,
    ) -> dict[str, Any]:
        input_ids = context.input_ids
        pixel_values, image_token_index = _step_images(context)
        # Features precomputed by LMDeploy's vision path, if any, go in as LMDeploy's models do.
        if context.input_embeddings is not None and len(context.input_embeddings) > 0:
            if inputs_embeds is None:
                inputs_embeds = self.get_input_embeddings()(input_ids)
            indexing = context.input_embedding_indexing
            inputs_embeds[:, indexing, :] = context.input_embeddings.to(inputs_embeds)
        return {
            "input_ids": input_ids,
            "position_ids": context.position_ids,
            "past_key_values": past_key_values,
            "attn_metadata": context.attn_metadata,
            "inputs_embeds": inputs_embeds,
            "pixel_values": pixel_values,
            "image_token_index": image_token_index,
        }

    # --- weights ------------------------------------------------------------------------------

    @classmethod
    def rename_weight(cls, name: str) -> str:
        """Checkpoint name -> module path (LMDeploy's loader applies it to every tensor)."""
        for old, new in WEIGHT_PREFIXES:
            if name.startswith(old):
                return new + name[len(old) :]
        return name

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Load renamed tensors; any tensor without a place here is an error."""
        params = dict(self.named_parameters())
        language: list[tuple[str, torch.Tensor]] = []
        for name, tensor in weights:
            if name.startswith(_LANGUAGE_PREFIX):
                language.append((name[len(_LANGUAGE_PREFIX) :], tensor))
                continue
            for old, new, shard in VISION_STACKED:
                if old in name:
                    load_weight(_param(params, name.replace(old, new)), tensor, shard_id=shard)
                    break
            else:
                load_weight(_param(params, name), tensor)
        # The language model stacks q/k/v and gate/up, gathers experts and FP8 scales itself.
        try:
            self.language_model.load_weights(language)
        except KeyError as error:
            raise ValueError(
                f"checkpoint tensor {error.args[0]!r} has no parameter in the language model"
            ) from error


class InternS1InputProcessor(BaseModelInputProcessor):
    """Checks and packs the preprocessing's items into the engine's `MultiModalData`."""

    def __init__(self, config: PretrainedConfig, dtype: torch.dtype | None) -> None:
        vision = config.vision_config
        size = vision.image_size
        height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.tile_shape = (int(vision.num_channels), height, width)
        self.tokens_per_tile = tokens_per_tile(config)
        self.image_token_id = int(config.image_token_id)
        self.dtype = dtype

    def preprocess_input(
        self,
        input_ids: list[int],
        input_multimodals: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> PreprocessInputResult:
        """ValueError for items that do not fit the model or the prompt."""
        if not input_multimodals:
            return PreprocessInputResult(input_ids=input_ids, input_multimodals=None)
        images = [self._image(input_ids, item) for item in input_multimodals]
        spans = sorted((image.start, image.end) for image in images)
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            if start < end:
                raise ValueError("two image items cover the same prompt positions")
        return PreprocessInputResult(input_ids=input_ids, input_multimodals={"image": images})

    def _image(self, input_ids: list[int], item: dict[str, Any]) -> MultiModalData:
        pixels = item.get("pixel_values")
        if not isinstance(pixels, torch.Tensor) or pixels.dim() != 4:
            raise ValueError(
                "an Intern-S1 image item needs pixel_values as a (tiles, channels, height, width) "
                f"tensor, got {_describe(pixels)}"
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
            data=pixels if self.dtype is None else pixels.to(self.dtype),
            start=start,
            end=start + count,
            meta={"image_token_id": token_id},
        )


def _step_images(context: StepContext) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The step's tiles and, in the same order, the flat step positions of their features.

    An item's `start`/`end` are prompt positions; in the step they sit at the sequence's query
    start plus the offset past its history (tokens already in the cache).
    """
    if context.input_multimodals is None:
        return None, None
    history = context.kv_seqlens - context.q_seqlens
    tiles: list[torch.Tensor] = []
    positions: list[torch.Tensor] = []
    for seq, inputs in enumerate(context.input_multimodals):
        for item in (inputs or {}).get("image", []):
            tiles.append(item.data)
            span = torch.arange(item.start, item.end, device=context.input_ids.device)
            positions.append(span + (context.q_start_loc[seq] - history[seq]))
    if not tiles:
        return None, None
    return torch.cat(tiles), torch.cat(positions)


def _param(params: dict[str, nn.Parameter], name: str) -> nn.Parameter:
    if name not in params:
        raise ValueError(f"checkpoint tensor {name!r} has no parameter in the Intern-S1 model")
    return params[name]


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"an Intern-S1 image item needs an integer {what}, got {value!r}")
    return value


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return type(value).__name__


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


__all__ = [
    "LANGUAGE_MODELS",
    "InternS1ForConditionalGeneration",
    "InternS1InputProcessor",
    "InternS1MultiModalProjector",
]
