"""LMDeploy's preprocessing for Intern-S1-Pro: images, videos and time series via the plugin.

Images and videos go through `processing.pro_vision` / `pro_video` (Qwen3-VL patches, videos
timed per pair of frames), time series through `processing.time_series`: validated, never
truncated (LMDeploy's reference cuts at 240,000 points; here a series over `ts_max_points` is an
error), z-normalised per channel. Placeholders are expanded at the token level as vLLM does.
LMDeploy's own Pro model builds the checkpoint's processor through transformers' AutoProcessor.

A time series reaches LMDeploy as a content part `{"type": "time_series_url", "time_series_url":
{"url": ..., "sampling_rate": ...}}` (or `"time_series"`): the URL is an http(s) URL, a data URL
of a `.npy` file, or a local `.npy` / `.csv` / `.wav` path, which LMDeploy's `TimeSeriesMediaIO`
loads into an array; `sampling_rate` travels as the item's parameter.

The result is what the PyTorch engine's `InternS1ProInputProcessor` reads: one dict per image,
per video temporal group (`video_grid_thw` `[1, h, w]`, as LMDeploy splits Qwen3-VL videos) and
per series, with `modality`, the features, `offset` `(start, end)` and the feature token's id.
That engine stacks the features of one forward pass by the first item's modality, so a request
may not mix time series with images or videos, and its series must share one shape; both are
refused here with a ValueError instead of failing inside the engine.

Options per request in `mm_processor_kwargs`, flat (vLLM's names) or per modality:
`min_pixels`/`max_pixels` (`{"image": ...}`), `video_min_pixels`/`video_max_pixels`, `fps`,
`min_frames`, `max_frames` (`{"video": {"min_pixels", "max_pixels", "fps", ...}}`),
`sampling_rate` and `ts_max_points` (`{"time_series": {"sampling_rate", "max_points"}}`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from lmdeploy.vl.constants import Modality

from interns1_plugin import formats
from interns1_plugin.configs import InternS1ProConfig
from interns1_plugin.lmdeploy.checkpoint import INTERNS1_PRO_ARCHITECTURES, read_json
from interns1_plugin.lmdeploy.media import InternS1ProVideoLoader, use_media_loaders
from interns1_plugin.lmdeploy.models import KEEP_BUILTIN_ENV, keep_builtin
from interns1_plugin.lmdeploy.options import positive_float, positive_int, request_options
from interns1_plugin.lmdeploy.placeholders import Expansion
from interns1_plugin.lmdeploy.vision_base import Item, PluginVisionModel
from interns1_plugin.processing import pro_video
from interns1_plugin.processing import time_series as ts
from interns1_plugin.processing.pro_vision import ProVisionConfig, image_prompt, preprocess_image

IMAGE_PLACEHOLDER = formats.VISION_START + formats.IMAGE_PAD + formats.VISION_END
VIDEO_PLACEHOLDER = formats.VISION_START + formats.VIDEO_PAD + formats.VISION_END
SERIES_PLACEHOLDER = formats.TS_START + formats.TS_TOKEN + formats.TS_END

_PIXEL_OPTIONS = ("min_pixels", "max_pixels", "video_min_pixels", "video_max_pixels")
_FRAME_OPTIONS = ("min_frames", "max_frames")
_FLAT_OPTIONS = frozenset(
    {*_PIXEL_OPTIONS, *_FRAME_OPTIONS, "fps", "sampling_rate", "ts_max_points"}
)
_NESTED_OPTIONS = {
    "image": {"min_pixels": "min_pixels", "max_pixels": "max_pixels"},
    "video": {
        "min_pixels": "video_min_pixels",
        "max_pixels": "video_max_pixels",
        "fps": "fps",
        "min_frames": "min_frames",
        "max_frames": "max_frames",
    },
    "time_series": {"sampling_rate": "sampling_rate", "max_points": "ts_max_points"},
}


class InternS1ProVisionModel(PluginVisionModel):
    """Intern-S1-Pro images, videos and time series for LMDeploy (ahead of LMDeploy's own)."""

    _arch: ClassVar[list[str]] = list(INTERNS1_PRO_ARCHITECTURES)
    config_class: ClassVar[type] = InternS1ProConfig
    modalities: ClassVar[frozenset[str]] = frozenset({"image", "video", "time_series"})

    def build_preprocessor(self, trust_remote_code: bool = False) -> None:
        super().build_preprocessor(trust_remote_code)
        config = self.hf_config
        self.image_token_id = self.token_id(
            formats.IMAGE_PAD, getattr(config, "image_token_id", None)
        )
        self.video_token_id = self.token_id(
            formats.VIDEO_PAD, getattr(config, "video_token_id", None)
        )
        self.has_time_series = getattr(config, "ts_config", None) is not None
        self.ts_token_id = (
            self.token_id(formats.TS_TOKEN, getattr(config, "ts_token_id", None))
            if self.has_time_series
            else None
        )
        self.merge_size = int(config.vision_config.spatial_merge_size)
        self.vision = ProVisionConfig.from_preprocessor_config(
            read_json(self.model_path, "preprocessor_config.json"),
            read_json(self.model_path, "video_preprocessor_config.json"),
        )
        use_media_loaders(InternS1ProVideoLoader)

    def _vision_config(self, options: Mapping[str, Any]) -> ProVisionConfig:
        overrides: dict[str, Any] = {}
        for name in (*_PIXEL_OPTIONS, *_FRAME_OPTIONS):
            if name in options:
                overrides[name] = positive_int(options, name, 1)
        fps = positive_float(options, "fps")
        if fps is not None:
            overrides["fps"] = fps
        return dataclasses.replace(self.vision, **overrides)

    def preprocess(
        self,
        messages: list[dict],
        input_prompt: str | list[int],
        mm_processor_kwargs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Patch images and videos, decode time series, expand placeholders."""
        options = request_options(mm_processor_kwargs, flat=_FLAT_OPTIONS, nested=_NESTED_OPTIONS)
        items = self.collect_items(messages)
        self._check_combination(items)
        vision = self._vision_config(options)
        packers: list[Any] = []
        expansions: list[Expansion] = []
        for modality, data, params in items:
            if modality == "image":
                image = preprocess_image(data, vision)
                text = image_prompt(image.image_grid_thw[0], self.merge_size)
                expansions.append(Expansion("image", IMAGE_PLACEHOLDER, text, formats.IMAGE_PAD))
                packers.append(lambda runs, image=image: self._pack_image(image, runs))
            elif modality == "video":
                video = _preprocess_video(data, params, vision)
                grid = video.video_grid_thw[0]
                text = pro_video.video_prompt(grid, video.timestamps, self.merge_size)
                expansions.append(Expansion("video", VIDEO_PLACEHOLDER, text, formats.VIDEO_PAD))
                packers.append(lambda runs, video=video: self._pack_video(video, runs))
            else:
                series = self._preprocess_series(data, params, options)
                text = ts.time_series_placeholder(series.num_tokens)
                expansions.append(
                    Expansion("time_series", SERIES_PLACEHOLDER, text, formats.TS_TOKEN)
                )
                packers.append(lambda runs, series=series: self._pack_series(series, runs))
        prompt = self.expand(input_prompt, expansions)
        multimodal: list[dict[str, Any]] = []
        for pack, runs in zip(packers, prompt.runs, strict=True):
            multimodal += pack(runs)
        return self.result(input_prompt, prompt, multimodal)

    def _check_combination(self, items: list[Item]) -> None:
        kinds = {modality for modality, _, _ in items}
        if "time_series" not in kinds:
            return
        if not self.has_time_series:
            raise ValueError(f"{self.model_path} has no time-series encoder (no ts_config)")
        if kinds != {"time_series"} and keep_builtin():
            # The plugin's engine model takes any mix; LMDeploy's own takes one kind per request.
            raise ValueError(
                "LMDeploy's built-in Intern-S1-Pro engine model cannot take time series together "
                f"with images or videos in one request ({KEEP_BUILTIN_ENV} is set); send them in "
                "separate requests"
            )

    def _preprocess_series(
        self, data: Any, params: Mapping[str, Any], options: Mapping[str, Any]
    ) -> ts.TimeSeriesInput:
        rate = params.get("sampling_rate")
        payload = data if rate is None else {"values": data, "sampling_rate": rate}
        return ts.preprocess_time_series(
            payload,
            sampling_rate=options.get("sampling_rate"),
            max_points=positive_int(options, "ts_max_points", ts.DEFAULT_MAX_POINTS),
        )

    def _pack_image(self, image: Any, runs: list[tuple[int, int]]) -> list[dict]:
        (start, end), grid = _one(runs), image.image_grid_thw[0]
        return [
            {
                "modality": Modality.IMAGE,
                "pixel_values": self.feature(image.pixel_values),
                "image_grid_thw": grid,
                "offset": (start, end),
                "image_token_id": self.image_token_id,
            }
        ]

    def _pack_video(self, video: pro_video.ProVideo, runs: list[tuple[int, int]]) -> list[dict]:
        """One item per temporal group: its own run of `<|video_pad|>` between timestamps."""
        grid_t, grid_h, grid_w = (int(v) for v in video.video_grid_thw[0])
        if len(runs) != grid_t:
            raise ValueError(f"{len(runs)} video feature runs for {grid_t} temporal groups")
        rows = grid_h * grid_w
        pixels = self.feature(video.pixel_values_videos)
        return [
            {
                "modality": Modality.VIDEO,
                # a copy: a view would carry the whole video's storage to the engine
                "pixel_values_videos": pixels[group * rows : (group + 1) * rows].clone(),
                "video_grid_thw": torch.tensor([1, grid_h, grid_w]),
                "offset": (start, end),
                "video_token_id": self.video_token_id,
            }
            for group, (start, end) in enumerate(runs)
        ]

    def _pack_series(self, series: ts.TimeSeriesInput, runs: list[tuple[int, int]]) -> list[dict]:
        start, end = _one(runs)
        return [
            {
                "modality": Modality.TIME_SERIES,
                "ts_values": self.feature(series.values[None]),
                "ts_lens": torch.tensor([series.length]),
                "ts_sr": torch.tensor([series.sampling_rate]),
                "offset": (start, end),
                "ts_token_id": self.ts_token_id,
            }
        ]

    def result(self, input_prompt: Any, prompt: Any, multimodal: list[dict]) -> dict[str, Any]:
        shapes = {tuple(i["ts_values"].shape) for i in multimodal if "ts_values" in i}
        if len(shapes) > 1:
            raise ValueError(
                "LMDeploy's Intern-S1-Pro engine stacks the time series of a request, so they "
                f"must share one shape (points, channels); got {sorted(s[1:] for s in shapes)}"
            )
        return super().result(input_prompt, prompt, multimodal)


def _one(runs: list[tuple[int, int]]) -> tuple[int, int]:
    if len(runs) != 1:
        raise ValueError(f"expected one run of feature tokens, found {len(runs)}")
    return runs[0]


def _preprocess_video(
    data: Any, params: Mapping[str, Any], config: ProVisionConfig
) -> pro_video.ProVideo:
    """Frames a loader already sampled keep their timing; anything else is sampled here."""
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[1], Mapping):
        data, metadata = data
    else:
        metadata = params.get("video_metadata") or {}
    if metadata.get("frames_indices") is not None:
        return pro_video.preprocess_video(
            data,
            config,
            video_fps=metadata.get("fps"),
            frame_indices=metadata["frames_indices"],
        )
    return pro_video.preprocess_video(data, config, video_fps=metadata.get("fps"))


__all__ = ["InternS1ProVisionModel"]
