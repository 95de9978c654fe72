"""Intern-S1-Pro for vLLM: Qwen3-VL-style vision, the time-series encoder, the FoPE MoE text model.

Positions are plain 1-D (no M-RoPE) and the vision tower feeds no deepstack levels, so image,
video and time-series features simply replace their placeholder tokens' embeddings. What runs
where under parallelism: the language model is sharded by vLLM's layers (attention heads and
dense MLPs by tensor parallelism, experts by tensor or expert parallelism, layers by pipeline
stages); the vision tower shards its heads like the LM (`interns1_pro_vision.py`); the
time-series encoder is small and replicated on every rank.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from vllm.config import VllmConfig
from vllm.model_executor.models.interfaces import (
    MultiModalEmbeddings,
    SupportsMultiModal,
    SupportsPP,
)
from vllm.model_executor.models.module_mapping import MultiModelKeys
from vllm.model_executor.models.utils import AutoWeightsLoader, WeightsMapper, maybe_prefix
from vllm.multimodal import MULTIMODAL_REGISTRY
from vllm.sequence import IntermediateTensors

from interns1_plugin import formats
from interns1_plugin.modeling.time_series_encoder import InternS1ProTimeSeriesEncoder
from interns1_plugin.vllm.models.interns1_pro_text import InternS1ProForCausalLM
from interns1_plugin.vllm.models.interns1_pro_vision import InternS1ProVisionTransformer
from interns1_plugin.vllm.models.mm_fields import flat
from interns1_plugin.vllm.multimodal.interns1_pro import (
    TIME_SERIES,
    InternS1ProDummyInputsBuilder,
    InternS1ProMultiModalProcessor,
    InternS1ProProcessingInfo,
)


def _grid(value: object) -> torch.Tensor:
    """`(num_items, 3)` grids, whether vLLM hands over one tensor or a list of rows."""
    if isinstance(value, torch.Tensor):
        return value.reshape(-1, 3)
    return torch.stack([torch.as_tensor(v).reshape(3) for v in value])  # type: ignore[union-attr]


@MULTIMODAL_REGISTRY.register_processor(
    InternS1ProMultiModalProcessor,
    info=InternS1ProProcessingInfo,
    dummy_inputs=InternS1ProDummyInputsBuilder,
)
class InternS1ProForConditionalGeneration(nn.Module, SupportsMultiModal, SupportsPP):
    """The checkpoint's `InternS1ProForConditionalGeneration` (`model_type: interns1_pro`)."""

    hf_to_vllm_mapper = WeightsMapper(
        orig_to_new_prefix={
            "model.language_model.": "language_model.model.",
            "lm_head.": "language_model.lm_head.",
            "model.visual.": "visual.",
            "model.time_series.": "time_series.",
        },
    )
    packed_modules_mapping = {"qkv_proj": ["q_proj", "k_proj", "v_proj"]}

    @classmethod
    def get_placeholder_str(cls, modality: str, i: int) -> str | None:
        """What the Pro chat template writes for an image, a video or a time-series part."""
        if modality.startswith("image"):
            return formats.VISION_START + formats.IMAGE_PAD + formats.VISION_END
        if modality.startswith("video"):
            return formats.VISION_START + formats.VIDEO_PAD + formats.VISION_END
        if modality == TIME_SERIES:
            return formats.TS_START + formats.TS_TOKEN + formats.TS_END
        raise ValueError(f"Intern-S1-Pro takes images, videos and time series, not {modality!r}")

    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
        super().__init__()
        config = vllm_config.model_config.hf_config
        self.config = config
        with self._mark_tower_model(vllm_config, {"image", "video"}):
            self.visual = InternS1ProVisionTransformer(
                config.vision_config, prefix=maybe_prefix(prefix, "visual")
            )
        self.time_series: InternS1ProTimeSeriesEncoder | None = None
        if getattr(config, "ts_config", None) is not None:
            with self._mark_tower_model(vllm_config, {TIME_SERIES}):
                self.time_series = InternS1ProTimeSeriesEncoder(config.ts_config)
        with self._mark_language_model(vllm_config):
            self.language_model = InternS1ProForCausalLM(
                vllm_config=vllm_config, prefix=maybe_prefix(prefix, "language_model")
            )
        self.make_empty_intermediate_tensors = self.language_model.make_empty_intermediate_tensors

    def _embed_vision(self, pixels: object, grid: object) -> list[torch.Tensor]:
        grid_thw = _grid(grid)
        tokens = self.visual(flat(pixels), grid_thw)
        merge = self.visual.spatial_merge_size**2
        return list(tokens.split((grid_thw.prod(-1) // merge).tolist()))

    def _embed_time_series(self, values: object, rates: object) -> list[torch.Tensor]:
        if self.time_series is None:
            raise ValueError("this Intern-S1-Pro checkpoint has no time-series encoder")
        series = [torch.as_tensor(v) for v in values]  # type: ignore[union-attr]
        sampling_rates = flat(rates).flatten().tolist()
        return self.time_series(series, sampling_rates)

    def embed_multimodal(self, **kwargs: object) -> MultiModalEmbeddings:
        """One (tokens, hidden) tensor per item, modality by modality in the order vLLM asks."""
        embeddings: list[torch.Tensor] = []
        if kwargs.get("pixel_values") is not None:
            embeddings += self._embed_vision(kwargs["pixel_values"], kwargs["image_grid_thw"])
        if kwargs.get("pixel_values_videos") is not None:
            embeddings += self._embed_vision(
                kwargs["pixel_values_videos"], kwargs["video_grid_thw"]
            )
        if kwargs.get("ts_values") is not None:
            embeddings += self._embed_time_series(kwargs["ts_values"], kwargs["ts_sampling_rate"])
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
        # A config without `ts_config` builds no encoder; its weights, if any, are not needed.
        skip = [] if self.time_series is not None else ["time_series."]
        loader = AutoWeightsLoader(self, ignore_unexpected_prefixes=skip)
        return loader.load_weights(weights, mapper=self.hf_to_vllm_mapper)

    def get_mm_mapping(self) -> MultiModelKeys:
        return MultiModelKeys.from_string_field(
            language_model="language_model",
            connector=["visual.merger", "time_series.projector"],
            tower_model=["visual.", "time_series."],
        )
