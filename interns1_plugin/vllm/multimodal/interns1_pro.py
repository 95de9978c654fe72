"""vLLM's multimodal processing for Intern-S1-Pro: images, videos and time series.

Pixels and time-series values come from the plugin's engine-agnostic preprocessing
(`interns1_plugin.processing.pro_vision` / `time_series`), never from transformers' Qwen-VL
processors (they need torchvision) or the hub's remote code. vLLM tokenizes the rendered prompt;
this module swaps each template placeholder for its expansion:

- image: `<|image_pad|>` (between `<|vision_start|>`/`<|vision_end|>`) -> one pad per merged patch;
- video: `<|vision_start|><|video_pad|><|vision_end|>` -> per frame pair a `<t seconds>` label and
  its own vision block (Qwen3-VL's layout);
- time series: `<|ts_token|>` (between `<|ts_start|>`/`<|ts_end|>`) -> one token per encoder
  output; `time_series` is a modality of its own, added to vLLM's data parser the documented way.

Per-request `mm_processor_kwargs` (or per server through `--mm-processor-kwargs`): `min_pixels` /
`max_pixels` and `video_min_pixels` / `video_max_pixels` (pixel bounds), `fps` / `min_frames` /
`max_frames` (for videos given as frame arrays; video files are sampled by the loader, set through
`media_io_kwargs`), `sampling_rate` (time series without their own) and `ts_max_points` (the
explicit bound on points per channel; over it, a clear error).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import torch
from transformers import BatchFeature
from vllm.config.multimodal import MultiModalDummyOptions
from vllm.inputs import MultiModalDataDict
from vllm.multimodal.inputs import MultiModalFieldConfig, MultiModalKwargsItems
from vllm.multimodal.parse import (
    ImageSize,
    ModalityDataItems,
    MultiModalDataItems,
    MultiModalDataParser,
    ProcessorBatchItems,
    VideoProcessorItems,
)
from vllm.multimodal.processing import (
    BaseDummyInputsBuilder,
    BaseMultiModalProcessor,
    BaseProcessingInfo,
    PromptReplacement,
    PromptUpdate,
    PromptUpdateDetails,
    cached_encode,
)
from vllm.multimodal.video import VIDEO_LOADER_REGISTRY, VideoLoader
from vllm.transformers_utils.repo_utils import get_hf_file_to_dict

from interns1_plugin import formats
from interns1_plugin.processing import pro_video
from interns1_plugin.processing import time_series as ts
from interns1_plugin.processing.pro_vision import (
    DEFAULT_PRO_VISION,
    ProVisionConfig,
    count_image_tokens,
    image_prompt,
    preprocess_image,
)
from interns1_plugin.vllm.multimodal.interns1 import defer_image_bomb_check_to_vllm

#: vLLM's name of the time-series modality (a key of `multi_modal_data`).
TIME_SERIES = "time_series"
#: Name of the plugin's Pro video loader in vLLM's registry.
VIDEO_BACKEND = "interns1_pro"
#: `video_processor_type` of Intern-S1-Pro checkpoints: vLLM picks the loader by this name.
VIDEO_PROCESSOR_TYPES = ("InternS1ProVideoProcessor",)
#: Qwen3-VL's video processor settings live in their own file.
VIDEO_CONFIG_FILE = "video_preprocessor_config.json"
#: `mm_processor_kwargs` keys that override the checkpoint's vision settings.
VISION_OPTIONS = (
    "min_pixels",
    "max_pixels",
    "video_min_pixels",
    "video_max_pixels",
    "fps",
    "min_frames",
    "max_frames",
)
#: Sampling rate of the profiling series: the smallest stride, so few points give many tokens.
_PROFILE_SAMPLING_RATE = 1.0


@VIDEO_LOADER_REGISTRY.register(VIDEO_BACKEND, video_processor=VIDEO_PROCESSOR_TYPES)
class InternS1ProVideoLoader(VideoLoader):
    """vLLM's video loader for Intern-S1-Pro: decord, Qwen3-VL's fps-based frame sampling.

    Frames are sampled by time (`fps`, 2 by default, held within `min_frames` / `max_frames`),
    as the model was trained and as vLLM's own Qwen3-VL loader does; vLLM's generic
    `num_frames` (32 unless set) is therefore not used. Only the sampled frames are decoded,
    resized to the published model's pixel bounds as they arrive, so a long video never sits in
    memory at full resolution; the processor then fits them to the checkpoint's own bounds.
    """

    @classmethod
    def load_bytes(
        cls, data: bytes, num_frames: int = -1, **kwargs: Any
    ) -> tuple[np.ndarray, dict[str, Any]]:
        bounds = {k: int(kwargs[k]) for k in ("min_frames", "max_frames") if kwargs.get(k)}
        config = dataclasses.replace(DEFAULT_PRO_VISION, **bounds)
        fps = kwargs.get("fps")
        sampled = pro_video.load_video_frames(
            data, config, fps=float(fps) if fps and fps > 0 else None
        )
        return sampled.frames, {
            "fps": sampled.video_fps,
            "frames_indices": sampled.indices.tolist(),
            # A lower bound: the reader's frame count is not kept past sampling.
            "total_num_frames": int(sampled.indices.max()) + 1,
            "video_backend": VIDEO_BACKEND,
            "do_sample_frames": False,
        }


def _preprocess_video(video: Any, config: ProVisionConfig) -> pro_video.ProVideo:
    """A decoded `(frames, metadata)` pair from the loader keeps its sampling; else sample."""
    if isinstance(video, tuple) and len(video) == 2 and isinstance(video[1], Mapping):
        frames, meta = video
        indices = list(meta.get("frames_indices") or range(len(frames)))
        if len(indices) > config.max_frames:  # the checkpoint allows fewer than the loader took
            keep = np.linspace(0, len(indices) - 1, config.max_frames).round().astype(int)
            frames, indices = frames[keep], [indices[k] for k in keep]
        return pro_video.preprocess_video(
            frames, config, video_fps=meta.get("fps"), frame_indices=indices
        )
    return pro_video.preprocess_video(video, config)


class TimeSeriesItems(ProcessorBatchItems[Any]):
    """Raw request payloads; decoding and validation happen in the processor."""

    def __init__(self, data: Sequence[Any]) -> None:
        super().__init__(data, TIME_SERIES)

    def get_processor_data(self) -> Mapping[str, object]:
        return {TIME_SERIES: self.get_all()}


class InternS1ProDataParser(MultiModalDataParser):
    """vLLM's parser plus the `time_series` modality."""

    def _parse_time_series(self, data: Any) -> ModalityDataItems[Any, Any] | None:
        if data is None:
            return None
        single = isinstance(data, (str, dict, np.ndarray, torch.Tensor)) or (
            isinstance(data, list)
            and data
            and not isinstance(data[0], (list, dict, str))
            and not isinstance(data[0], (np.ndarray, torch.Tensor))
        )
        return TimeSeriesItems([data] if single else list(data))

    def _parse_video_data(self, data: Any) -> ModalityDataItems[Any, Any] | None:
        """Keep a video's metadata with its frames when there is any.

        The loader's frame indices and source fps time the frames; vLLM passes them on only
        with `video_needs_metadata`, which would also refuse plain frame arrays.
        """
        items = super()._parse_video_data(data)
        if not isinstance(items, VideoProcessorItems) or not isinstance(items.metadata, list):
            return items
        paired = [
            video if meta is None or video is None or isinstance(video, tuple) else (video, meta)
            for video, meta in zip(items.data, items.metadata, strict=True)
        ]
        return VideoProcessorItems(paired, metadata=items.metadata)

    def _get_subparsers(self) -> Mapping[str, Any]:
        return {**super()._get_subparsers(), TIME_SERIES: self._parse_time_series}


class InternS1ProProcessingInfo(BaseProcessingInfo):
    """Pixel bounds, frame budget and time-series bound of one Intern-S1-Pro checkpoint."""

    def get_supported_mm_limits(self) -> Mapping[str, int | None]:
        limits: dict[str, int | None] = {"image": None, "video": None}
        if getattr(self.get_hf_config(), "ts_config", None) is not None:
            limits[TIME_SERIES] = None
        return limits

    def get_data_parser(self) -> MultiModalDataParser:
        return InternS1ProDataParser(
            expected_hidden_size=self._get_expected_hidden_size(),
            allow_missing_mm_embeddings=self.allow_missing_mm_embeddings,
        )

    def _options(self, mm_kwargs: Mapping[str, object]) -> dict[str, Any]:
        return self.ctx.get_merged_mm_kwargs(mm_kwargs)

    @cached_property
    def _checkpoint_vision_config(self) -> ProVisionConfig:
        model = self.ctx.model_config
        video = get_hf_file_to_dict(VIDEO_CONFIG_FILE, model.model, model.revision)
        return ProVisionConfig.from_preprocessor_config(
            self.ctx.get_hf_image_processor_config(), video
        )

    def get_vision_config(self, mm_kwargs: Mapping[str, object] = {}) -> ProVisionConfig:
        """The checkpoint's processor configs with the request's pixel / frame options."""
        options = self._options(mm_kwargs)
        overrides = {key: options[key] for key in VISION_OPTIONS if options.get(key) is not None}
        return dataclasses.replace(self._checkpoint_vision_config, **overrides)

    def get_time_series_options(self, mm_kwargs: Mapping[str, object] = {}) -> dict[str, Any]:
        options = self._options(mm_kwargs)
        return {
            "sampling_rate": options.get("sampling_rate"),
            "max_points": int(options.get("ts_max_points", ts.DEFAULT_MAX_POINTS)),
        }

    @property
    def merge_size(self) -> int:
        return int(self.get_hf_config().vision_config.spatial_merge_size)

    def get_num_image_tokens(self, *, image_width: int, image_height: int) -> int:
        return count_image_tokens(image_height, image_width, self.get_vision_config())

    def get_image_size_with_most_features(self) -> ImageSize:
        config = self.get_vision_config()
        side = int(config.max_pixels**0.5) // (config.patch_size * config.merge_size)
        side *= config.patch_size * config.merge_size
        return ImageSize(width=side, height=side)

    def get_max_image_tokens(self) -> int:
        size = self.get_image_size_with_most_features()
        return self.get_num_image_tokens(image_width=size.width, image_height=size.height)

    def get_mm_max_tokens_per_item(
        self, seq_len: int, mm_counts: Mapping[str, int]
    ) -> Mapping[str, int]:
        tokens = {"image": self.get_max_image_tokens(), "video": seq_len}
        if TIME_SERIES in self.get_supported_mm_limits():
            # A series may take the whole context: its token count depends on its sampling rate.
            tokens[TIME_SERIES] = seq_len
        return tokens


class InternS1ProDummyInputsBuilder(BaseDummyInputsBuilder[InternS1ProProcessingInfo]):
    """Profiling inputs: the largest image, a short video, the longest time series that fits."""

    def get_dummy_text(self, mm_counts: Mapping[str, int]) -> str:
        image = formats.VISION_START + formats.IMAGE_PAD + formats.VISION_END
        video = formats.VISION_START + formats.VIDEO_PAD + formats.VISION_END
        series = formats.TS_START + formats.TS_TOKEN + formats.TS_END
        return (
            image * mm_counts.get("image", 0)
            + video * mm_counts.get("video", 0)
            + series * mm_counts.get(TIME_SERIES, 0)
        )

    def _profile_series_length(self, seq_len: int) -> int:
        """Points whose token count just fits `seq_len` at the profiling sampling rate."""
        length = 8
        while (
            ts.num_time_series_tokens(length * 2, _PROFILE_SAMPLING_RATE) <= seq_len
            and length < ts.DEFAULT_MAX_POINTS
        ):
            length *= 2
        return length

    def get_dummy_mm_data(
        self,
        seq_len: int,
        mm_counts: Mapping[str, int],
        mm_options: MultiModalDummyOptions,
    ) -> MultiModalDataDict:
        image = self.info.get_image_size_with_most_features()
        config = self.info.get_vision_config()
        side = config.patch_size * config.merge_size * 2
        data: dict[str, Any] = {
            "image": self._get_dummy_images(
                width=image.width,
                height=image.height,
                num_images=mm_counts.get("image", 0),
                overrides=mm_options.get("image"),
            ),
            "video": self._get_dummy_videos(
                width=side,
                height=side,
                num_frames=config.temporal_patch_size * 2,
                num_videos=mm_counts.get("video", 0),
                overrides=mm_options.get("video"),
            ),
        }
        count = mm_counts.get(TIME_SERIES, 0)
        if count:
            length = self._profile_series_length(seq_len // max(count, 1))
            values = np.sin(np.arange(length, dtype=np.float32) / 7.0)
            series = {"values": values, "sampling_rate": _PROFILE_SAMPLING_RATE}
            data[TIME_SERIES] = [series] * count
        return data


class InternS1ProMultiModalProcessor(BaseMultiModalProcessor[InternS1ProProcessingInfo]):
    """Patches images and videos, decodes time series, then expands each placeholder."""

    def _get_data_parser(self) -> MultiModalDataParser:
        return self.info.get_data_parser()

    def _apply_hf_processor_main(
        self,
        mm_items: MultiModalDataItems,
        hf_kwargs: Mapping[str, object],
    ) -> BatchFeature:
        hf_data, hf_kwargs, passthrough_data = self._get_hf_mm_inputs(mm_items, hf_kwargs)
        dtype = self.info.ctx.model_config.dtype
        processed = BatchFeature()
        images: Sequence[Any] = hf_data.get("images") or []  # type: ignore[assignment]
        if images:
            config = self.info.get_vision_config(hf_kwargs)
            results = [preprocess_image(image, config) for image in images]
            processed["pixel_values"] = torch.cat([r[0] for r in results]).to(dtype)
            processed["image_grid_thw"] = torch.cat([r[1] for r in results])
        videos: Sequence[Any] = hf_data.get("videos") or []  # type: ignore[assignment]
        if videos:
            config = self.info.get_vision_config(hf_kwargs)
            results = [_preprocess_video(video, config) for video in videos]
            pixels = torch.cat([r.pixel_values_videos for r in results])
            processed["pixel_values_videos"] = pixels.to(dtype)
            processed["video_grid_thw"] = torch.cat([r.video_grid_thw for r in results])
            # float64: a float32 1.45 s would print as "<1.5 seconds>".
            processed["video_timestamps"] = [
                torch.tensor(r.timestamps, dtype=torch.float64) for r in results
            ]
        series: Sequence[Any] = hf_data.get(TIME_SERIES) or []  # type: ignore[assignment]
        if series:
            options = self.info.get_time_series_options(hf_kwargs)
            inputs = [ts.preprocess_time_series(item, **options) for item in series]
            processed["ts_values"] = [i.values.to(dtype) for i in inputs]
            processed["ts_sampling_rate"] = torch.tensor([i.sampling_rate for i in inputs])
            processed["ts_num_tokens"] = torch.tensor([i.num_tokens for i in inputs])
        return self._finalize_hf_mm_data(hf_data, hf_kwargs, passthrough_data, processed)

    def _get_mm_fields_config(
        self,
        hf_inputs: BatchFeature,
        hf_processor_mm_kwargs: Mapping[str, object],
    ) -> Mapping[str, MultiModalFieldConfig]:
        image_grid = hf_inputs.get("image_grid_thw", torch.empty((0, 3)))
        video_grid = hf_inputs.get("video_grid_thw", torch.empty((0, 3)))
        return {
            "pixel_values": MultiModalFieldConfig.flat_from_sizes("image", image_grid.prod(-1)),
            "image_grid_thw": MultiModalFieldConfig.batched("image", keep_on_cpu=True),
            "pixel_values_videos": MultiModalFieldConfig.flat_from_sizes(
                "video", video_grid.prod(-1)
            ),
            "video_grid_thw": MultiModalFieldConfig.batched("video", keep_on_cpu=True),
            "video_timestamps": MultiModalFieldConfig.batched("video", keep_on_cpu=True),
            "ts_values": MultiModalFieldConfig.batched(TIME_SERIES),
            "ts_sampling_rate": MultiModalFieldConfig.batched(TIME_SERIES, keep_on_cpu=True),
            "ts_num_tokens": MultiModalFieldConfig.batched(TIME_SERIES, keep_on_cpu=True),
        }

    def _get_prompt_updates(
        self,
        mm_items: MultiModalDataItems,
        hf_processor_mm_kwargs: Mapping[str, object],
        out_mm_kwargs: MultiModalKwargsItems,
    ) -> Sequence[PromptUpdate]:
        tokenizer = self.info.get_tokenizer()
        merge = self.info.merge_size
        out = out_mm_kwargs.get_data()

        def encode(text: str) -> list[int]:
            return cached_encode(tokenizer, text, add_special_tokens=False)

        def token_id(text: str) -> int:
            return int(tokenizer.convert_tokens_to_ids(text))

        def image(item_idx: int) -> PromptUpdateDetails:
            text = image_prompt(out["image_grid_thw"][item_idx], merge)
            return PromptUpdateDetails.select_token_id(encode(text), token_id(formats.IMAGE_PAD))

        def video(item_idx: int) -> PromptUpdateDetails:
            timestamps = out["video_timestamps"][item_idx].tolist()
            text = pro_video.video_prompt(out["video_grid_thw"][item_idx], timestamps, merge)
            return PromptUpdateDetails.select_token_id(encode(text), token_id(formats.VIDEO_PAD))

        def series(item_idx: int) -> PromptUpdateDetails:
            count = int(out["ts_num_tokens"][item_idx])
            text = ts.time_series_placeholder(
                count, formats.TS_START, formats.TS_TOKEN, formats.TS_END
            )
            return PromptUpdateDetails.select_token_id(encode(text), token_id(formats.TS_TOKEN))

        vision = formats.VISION_START, formats.VISION_END
        return [
            PromptReplacement(
                modality="image",
                target=encode(vision[0] + formats.IMAGE_PAD + vision[1]),
                replacement=image,
            ),
            PromptReplacement(
                modality="video",
                target=encode(vision[0] + formats.VIDEO_PAD + vision[1]),
                replacement=video,
            ),
            PromptReplacement(
                modality=TIME_SERIES,
                target=encode(formats.TS_START + formats.TS_TOKEN + formats.TS_END),
                replacement=series,
            ),
        ]


__all__ = [
    "TIME_SERIES",
    "InternS1ProDataParser",
    "InternS1ProDummyInputsBuilder",
    "InternS1ProMultiModalProcessor",
    "InternS1ProProcessingInfo",
]


# In the API server this module is imported before the first request is parsed: oversized
# images get vLLM's 400, not PIL's decompression-bomb error (a 500).
defer_image_bomb_check_to_vllm()
