"""Intern-S1-Pro for LMDeploy's PyTorch engine.

The language model is LMDeploy's `Qwen3MoeForCausalLM`, which takes both of Pro's differences
from Qwen3-MoE from the config: FoPE (LMDeploy's `FopeRotaryEmbedding`, built when
`rope_scaling` carries the FoPE keys, with the checkpoint's learned per-KV-head coefficients) and
grouped routing (its `SoftmaxTopK` with `router_n_groups`); so paged attention, fused MoE,
tensor / expert parallelism, FP8 and CUDA graphs are LMDeploy's. In front of it: the Qwen3-VL
style vision tower (`interns1_pro_vision`) and the time-series encoder, the plugin's plain-torch
module (small, replicated on every rank). Positions are 1-D, so every item's features simply
replace its placeholder tokens' embeddings.

The engine receives what the plugin's `vision_interns1_pro.InternS1ProVisionModel` emits: one item
per image (`pixel_values`, `image_grid_thw`), per video temporal group (`pixel_values_videos`,
`video_grid_thw`) and per time series (`ts_values` `(1, T, C)`, `ts_lens`, `ts_sr`), each with
its `offset` `(start, end)` and feature token id. `InternS1ProInputProcessor` checks them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from lmdeploy.pytorch.model_inputs import StepContext, StepContextManager
from lmdeploy.pytorch.models.qwen3_moe import Qwen3MoeForCausalLM
from lmdeploy.pytorch.models.utils.model import vlm_model
from lmdeploy.pytorch.multimodal.data_type import MultiModalData
from lmdeploy.pytorch.nn.rotary_embedding import FopeRotaryEmbedding
from lmdeploy.pytorch.weight_loader.model_weight_loader import load_weight
from lmdeploy.vl.constants import Modality
from transformers import PretrainedConfig

from interns1_plugin.lmdeploy.models.base import Features, InternS1EngineModel, join_prefix
from interns1_plugin.lmdeploy.models.inputs import (
    ItemsInputProcessor,
    Packed,
    describe,
    sequence_items,
    step_positions,
)
from interns1_plugin.lmdeploy.models.interns1_pro_vision import InternS1ProVisionModel
from interns1_plugin.modeling.time_series_encoder import InternS1ProTimeSeriesEncoder
from interns1_plugin.processing.time_series import num_time_series_tokens

#: Checkpoint prefix -> module path: the one weight mapper (applied by LMDeploy's loader).
WEIGHT_PREFIXES: tuple[tuple[str, str], ...] = (
    ("model.language_model.", "language_model.model."),
    ("lm_head.", "language_model.lm_head."),
    ("model.visual.", "visual."),
    ("model.time_series.", "time_series."),
)
_TIME_SERIES_PREFIX = "time_series."
#: The checkpoint's fused vision `qkv`, split into the q/k/v shards of `qkv_proj`-style loading.
_VISION_QKV = ".attn.qkv."
#: Engine item keys of the vision modalities: (pixel key, grid key).
_VISION_KEYS = {
    Modality.IMAGE: ("pixel_values", "image_grid_thw"),
    Modality.VIDEO: ("pixel_values_videos", "video_grid_thw"),
}
#: Engine item key of each modality's feature token id.
_TOKEN_KEYS = {
    Modality.IMAGE: "image_token_id",
    Modality.VIDEO: "video_token_id",
    Modality.TIME_SERIES: "ts_token_id",
}


class InternS1ProForConditionalGeneration(InternS1EngineModel):
    """The checkpoint's `InternS1ProForConditionalGeneration` (alias `InternS1_1_...`)."""

    weight_prefixes = WEIGHT_PREFIXES
    display_name = "Intern-S1-Pro"

    def __init__(
        self,
        config: PretrainedConfig,
        ctx_mgr: StepContextManager,
        dtype: torch.dtype | None = None,
        device: torch.device | None = None,
        prefix: str = "",
    ) -> None:
        super().__init__(config, ctx_mgr)
        self.visual = vlm_model(InternS1ProVisionModel)(
            config.vision_config, dtype=dtype, device=device
        )
        self.time_series = None
        if getattr(config, "ts_config", None) is not None:
            self.time_series = vlm_model(InternS1ProTimeSeriesEncoder)(config.ts_config)
            self.time_series.to(device=device, dtype=dtype)
        self.language_model = Qwen3MoeForCausalLM(
            config.text_config,
            ctx_mgr,
            dtype=dtype,
            device=device,
            prefix=join_prefix(prefix, "language_model"),
        )
        rotary = self.language_model.model.rotary_emb
        if not isinstance(rotary, FopeRotaryEmbedding):
            rope = getattr(config.text_config, "rope_scaling", None)
            raise ValueError(
                f"Intern-S1-Pro needs FoPE, but text_config.rope_scaling {rope} gave LMDeploy's "
                f"{type(rotary).__name__}"
            )
        self.input_processor = InternS1ProInputProcessor(config, dtype)

    def step_items(self, context: StepContext) -> dict[str, Any]:
        """The step's vision rows and series, with the flat step positions of their features."""
        items: dict[str, Any] = {
            "pixel_values": None,
            "vision_grid": None,
            "vision_token_index": None,
            "ts_values": None,
            "ts_rates": None,
            "ts_token_index": None,
        }
        device = context.input_ids.device
        pixels, grids, vision_index = [], [], []
        series, rates, series_index = [], [], []
        kinds = (Modality.IMAGE.value, Modality.VIDEO.value)
        for inputs, shift in sequence_items(context):
            vision = sorted((d for k in kinds for d in inputs.get(k, [])), key=lambda d: d.start)
            for data in vision:
                pixels.append(data.data)
                grids.append(tuple(data.meta["grid_thw"]))
                vision_index.append(step_positions(data, shift, device))
            for data in inputs.get(Modality.TIME_SERIES.value, []):
                series.append(data.data)
                rates.append(data.meta["sampling_rate"])
                series_index.append(step_positions(data, shift, device))
        if pixels:
            items.update(
                pixel_values=torch.cat(pixels),
                vision_grid=grids,
                vision_token_index=torch.cat(vision_index),
            )
        if series:
            items.update(ts_values=series, ts_rates=rates, ts_token_index=torch.cat(series_index))
        return items

    def item_features(
        self,
        pixel_values: torch.Tensor | None = None,
        vision_grid: list[tuple[int, int, int]] | None = None,
        vision_token_index: torch.Tensor | None = None,
        ts_values: list[torch.Tensor] | None = None,
        ts_rates: list[float] | None = None,
        ts_token_index: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Features:
        """`*_token_index`: the flat step positions the features replace, in item order."""
        features = []
        if pixel_values is not None:
            features.append((self.visual(pixel_values, vision_grid), vision_token_index))
        if ts_values is not None:
            if self.time_series is None:
                raise ValueError("this Intern-S1-Pro checkpoint has no time-series encoder")
            encoded = torch.cat(self.time_series(ts_values, ts_rates))
            features.append((encoded, ts_token_index))
        return features

    def load_encoder_weights(self, weights: Iterator[tuple[str, torch.Tensor]]) -> None:
        """The vision tower (its fused `qkv` split into shards) and the time-series encoder."""
        params = dict(self.named_parameters())
        modules = dict(self.named_modules())
        series: list[tuple[str, torch.Tensor]] = []
        for name, tensor in weights:
            if name.startswith(_TIME_SERIES_PREFIX):
                series.append((name[len(_TIME_SERIES_PREFIX) :], tensor))
            elif _VISION_QKV in name:
                module_name = name.rpartition(".")[0]
                param = self.checkpoint_param(params, name)
                shards = modules[module_name].weight_spliter(tensor)
                for shard, part in zip(("q", "k", "v"), shards, strict=True):
                    load_weight(param, part, shard_id=shard)
            else:
                load_weight(self.checkpoint_param(params, name), tensor)
        if series:
            if self.time_series is None:
                raise ValueError("time-series tensors, but the config has no ts_config")
            try:
                self.time_series.load_weights(series)
            except KeyError as error:
                raise ValueError(str(error)) from error


class InternS1ProInputProcessor(ItemsInputProcessor):
    """Checks and packs the preprocessing's items into the engine's `MultiModalData`."""

    def __init__(self, config: PretrainedConfig, dtype: torch.dtype | None) -> None:
        super().__init__(dtype)
        vision = config.vision_config
        self.patch_dim = (
            vision.in_channels * vision.temporal_patch_size * vision.patch_size * vision.patch_size
        )
        self.merge = int(vision.spatial_merge_size)
        self.token_ids = {
            Modality.IMAGE: config.image_token_id,
            Modality.VIDEO: config.video_token_id,
            Modality.TIME_SERIES: getattr(config, "ts_token_id", None),
        }
        self.has_time_series = getattr(config, "ts_config", None) is not None

    def pack(self, input_ids: list[int], items: list[dict[str, Any]]) -> Packed:
        packed: Packed = {}
        for item in items:
            modality = Modality(item.get("modality"))
            if modality in _VISION_KEYS:
                data = self._vision(input_ids, item, modality)
            elif modality == Modality.TIME_SERIES:
                data = self._series(input_ids, item)
            else:
                raise ValueError(f"Intern-S1-Pro does not take {modality.value!r} inputs")
            packed.setdefault(modality.value, []).append(data)
        return packed

    def _span(
        self, input_ids: list[int], item: dict[str, Any], modality: Modality, count: int
    ) -> tuple[int, int, int]:
        """(start, end, token id) of the item's placeholder run, checked against the prompt."""
        offset = item.get("offset")
        if not (isinstance(offset, (tuple, list)) and len(offset) == 2):
            raise ValueError(f"a {modality.value} item needs offset (start, end), got {offset!r}")
        start, end = (int(v) for v in offset)
        token_id = int(item.get(_TOKEN_KEYS[modality], -1))
        if token_id != self.token_ids[modality]:
            raise ValueError(
                f"{modality.value} items use token id {token_id}, the config says "
                f"{self.token_ids[modality]}"
            )
        if end - start != count:
            raise ValueError(
                f"a {modality.value} item with {count} feature tokens spans {end - start} "
                "prompt positions"
            )
        span = input_ids[start:end] if start >= 0 else []
        if len(span) != count or any(t != token_id for t in span):
            raise ValueError(
                f"prompt positions {start}..{end - 1} are not all {modality.value} tokens "
                f"({token_id})"
            )
        return start, end, token_id

    def _vision(
        self, input_ids: list[int], item: dict[str, Any], modality: Modality
    ) -> MultiModalData:
        pixel_key, grid_key = _VISION_KEYS[modality]
        pixels, grid = item.get(pixel_key), item.get(grid_key)
        grid = torch.as_tensor(grid).flatten().tolist() if grid is not None else []
        if len(grid) != 3 or any(int(v) <= 0 for v in grid):
            raise ValueError(f"a {modality.value} item needs {grid_key} (t, h, w), got {grid}")
        t, h, w = (int(v) for v in grid)
        if h % self.merge or w % self.merge:
            raise ValueError(f"{grid_key} {grid} is not divisible by the merge size {self.merge}")
        rows = t * h * w
        if not isinstance(pixels, torch.Tensor) or tuple(pixels.shape) != (rows, self.patch_dim):
            raise ValueError(
                f"{pixel_key} must be ({rows}, {self.patch_dim}) for grid {grid}, got "
                f"{describe(pixels)}"
            )
        start, end, token_id = self._span(input_ids, item, modality, rows // self.merge**2)
        return MultiModalData(
            modality=modality,
            data=self.in_model_dtype(pixels),
            start=start,
            end=end,
            meta={"grid_thw": (t, h, w), _TOKEN_KEYS[modality]: token_id},
        )

    def _series(self, input_ids: list[int], item: dict[str, Any]) -> MultiModalData:
        if not self.has_time_series:
            raise ValueError("this Intern-S1-Pro checkpoint has no time-series encoder")
        values = item.get("ts_values")
        if not isinstance(values, torch.Tensor) or values.dim() != 3 or values.shape[0] != 1:
            raise ValueError(
                f"ts_values must be one series (1, points, channels), got {describe(values)}"
            )
        length = int(torch.as_tensor(item.get("ts_lens", -1)).flatten()[0])
        rate = float(torch.as_tensor(item.get("ts_sr", float("nan"))).flatten()[0])
        if length != values.shape[1]:
            raise ValueError(f"ts_lens {length} does not match {values.shape[1]} points")
        if not rate > 0:
            raise ValueError(f"ts_sr must be a positive sampling rate, got {rate}")
        count = num_time_series_tokens(length, rate)
        start, end, token_id = self._span(input_ids, item, Modality.TIME_SERIES, count)
        return MultiModalData(
            modality=Modality.TIME_SERIES,
            data=values[0],
            start=start,
            end=end,
            meta={"sampling_rate": rate, "ts_token_id": token_id},
        )


__all__ = ["InternS1ProForConditionalGeneration", "InternS1ProInputProcessor"]
