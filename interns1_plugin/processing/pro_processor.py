"""`InternS1ProProcessor`: Intern-S1-Pro's processor without the checkpoint's remote code.

Registered with `AutoProcessor` for `InternS1ProConfig` / `InternS1_1Config`, this class is what
`AutoProcessor.from_pretrained(path)` returns for a Pro checkpoint, also with
`trust_remote_code=True` (see `configs.registration` for why the registration wins over the
`auto_map` the checkpoint's processor files carry). vLLM's chat-template lookup is one such call.

It takes the text the chat template rendered and the items its placeholders stand for, and does
what the plugin's vLLM path does, with the same engine-agnostic functions: images and videos
through `pro_vision` / `pro_video` with the checkpoint's pixel bounds, time series through
`time_series` (decoded, validated, z-normalised, counted), every placeholder expanded in order
(`pro_prompt`), then the text tokenized. Same inputs, same `input_ids` and tensors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from transformers.image_processing_utils import BatchFeature
from transformers.utils import VIDEO_PROCESSOR_NAME

from interns1_plugin import formats
from interns1_plugin.checkpoint_files import find_checkpoint_file
from interns1_plugin.processing import pro_video
from interns1_plugin.processing import time_series as ts
from interns1_plugin.processing.hf_processor import LocalProcessorMixin
from interns1_plugin.processing.image_processor import flatten_images
from interns1_plugin.processing.pro_image_processor import (
    IMAGE_OPTIONS,
    InternS1ProImageProcessor,
    settings_of,
    with_options,
)
from interns1_plugin.processing.pro_prompt import check_counts, expand_placeholders
from interns1_plugin.processing.pro_video_processor import (
    VIDEO_OPTIONS,
    InternS1ProVideoProcessor,
    video_features,
)
from interns1_plugin.processing.pro_vision import (
    ProVisionConfig,
    image_prompt,
    preprocess_image,
)
from interns1_plugin.processing.return_tensors import as_return_tensors
from interns1_plugin.processing.video_processor import as_video_list


def as_series_list(series: Any) -> list[Any]:
    """One series or a list of series, as a list, read as vLLM's data parser reads it.

    A string, dict, array or tensor is one series, and so is a flat list of numbers; any other
    list is a list of series (so one multi-channel series in rows goes in a dict or an array).
    """
    if series is None:
        return []
    if isinstance(series, str | Mapping | np.ndarray | torch.Tensor):
        return [series]
    items = list(series)
    if items and not isinstance(items[0], list | tuple | Mapping | str | np.ndarray | torch.Tensor):
        return [series]
    return items


class InternS1ProProcessor(LocalProcessorMixin):
    """Images, videos and time series to model inputs, prompts to `input_ids`, in order.

    Returns `input_ids`, `attention_mask` and, for what was given: `pixel_values` and
    `image_grid_thw`; `pixel_values_videos`, `video_grid_thw` and `video_timestamps` (seconds
    of each frame pair, one list per video); `ts_values` (one `(length, channels)` tensor per
    series), `ts_sampling_rate` and `ts_num_tokens`. Token attributes follow transformers'
    Qwen3-VL processor (`image_token`, `video_token`, `vision_start_token`, ...) plus the
    time-series ones LMDeploy's Intern-S1-Pro glue reads (`ts_token`, `ts_start_token`, ...).
    """

    PLUGIN_CHAT_TEMPLATE = "interns1_pro"

    def __init__(
        self,
        image_processor: InternS1ProImageProcessor | None = None,
        tokenizer: Any = None,
        video_processor: InternS1ProVideoProcessor | None = None,
        chat_template: str | None = None,
    ) -> None:
        super().__init__(
            image_processor if image_processor is not None else InternS1ProImageProcessor(),
            tokenizer,
            video_processor if video_processor is not None else InternS1ProVideoProcessor(),
            chat_template=chat_template,
        )
        self.vision_config()  # image and video files that disagree fail here
        tokens = {
            "image_token": formats.IMAGE_PAD,
            "video_token": formats.VIDEO_PAD,
            "vision_start_token": formats.VISION_START,
            "vision_end_token": formats.VISION_END,
            "ts_token": formats.TS_TOKEN,
            "ts_start_token": formats.TS_START,
            "ts_end_token": formats.TS_END,
        }
        self._set_special_tokens(tokenizer, tokens)

    def vision_config(self, **options: Any) -> ProVisionConfig:
        """Both files merged as vLLM's path merges them, with per-call options applied.

        Options: `min_pixels` / `max_pixels` (images) and `VIDEO_OPTIONS` (videos).
        """
        config = ProVisionConfig.from_preprocessor_config(
            settings_of(self.image_processor), self.video_processor.settings()
        )
        return with_options(config, options, (*IMAGE_OPTIONS, *VIDEO_OPTIONS))

    @classmethod
    def _get_arguments_from_pretrained(
        cls, pretrained_model_name_or_path: Any, processor_dict: dict | None = None, **kwargs: Any
    ) -> list[Any]:
        """The tokenizer through AutoTokenizer, image and video processors the plugin's own.

        `trust_remote_code` is forced off: nothing from the checkpoint directory runs. Without a
        video config the video settings are the defaults, as on vLLM's path (transformers would
        read the image file's pixel bounds instead, which are for one image, not a video).
        """
        path = pretrained_model_name_or_path
        tokenizer = cls._load_tokenizer(path, kwargs)
        image_processor = InternS1ProImageProcessor.from_pretrained(path, **kwargs)
        nested = "video_processor" in (processor_dict or {})
        if nested or _has_file(path, VIDEO_PROCESSOR_NAME, kwargs):
            video_processor = InternS1ProVideoProcessor.from_pretrained(path, **kwargs)
        else:
            shared = ("patch_size", "temporal_patch_size", "merge_size", "image_mean", "image_std")
            video_processor = InternS1ProVideoProcessor(**settings_of(image_processor, shared))
        return [image_processor, tokenizer, video_processor]

    def __call__(
        self,
        images: Any = None,
        text: str | list[str] | None = None,
        videos: Any = None,
        time_series: Any = None,
        return_tensors: str | None = "pt",
        video_fps: float | None = None,
        sampling_rate: float | None = None,
        ts_max_points: int = ts.DEFAULT_MAX_POINTS,
        **kwargs: Any,
    ) -> BatchFeature:
        """Preprocess every item, expand its placeholder, tokenize.

        Keyword options as vLLM's `mm_processor_kwargs`: `min_pixels` / `max_pixels`,
        `video_min_pixels` / `video_max_pixels`, `fps` / `min_frames` / `max_frames` (frame
        sampling), `sampling_rate` (series without their own) and `ts_max_points`. `video_fps`
        is the frame rate of videos given as decoded frames (24 if not given).
        """
        if text is None:
            raise ValueError("InternS1ProProcessor needs the prompt text")
        texts = [text] if isinstance(text, str) else list(text)
        image_list, video_list = flatten_images(images), as_video_list(videos)
        series_list = as_series_list(time_series)
        counts = {"image": len(image_list), "video": len(video_list)}
        check_counts(texts, counts | {"time_series": len(series_list)})

        config = self.vision_config(**kwargs)
        merge = config.merge_size
        data: dict[str, Any] = {}
        expansions: dict[str, list[str]] = {"image": [], "video": [], "time_series": []}
        if image_list:
            results = [preprocess_image(image, config) for image in image_list]
            data["pixel_values"] = torch.cat([r.pixel_values for r in results])
            data["image_grid_thw"] = torch.cat([r.image_grid_thw for r in results])
            expansions["image"] = [image_prompt(r.image_grid_thw[0], merge) for r in results]
        if video_list:
            items = [pro_video.preprocess_video(v, config, video_fps=video_fps) for v in video_list]
            data |= video_features(items)
            expansions["video"] = [
                pro_video.video_prompt(v.video_grid_thw[0], v.timestamps, merge) for v in items
            ]
        if series_list:
            options = {"sampling_rate": sampling_rate, "max_points": ts_max_points}
            inputs = [ts.preprocess_time_series(item, **options) for item in series_list]
            data["ts_values"] = [i.values for i in inputs]
            data["ts_sampling_rate"] = torch.tensor([i.sampling_rate for i in inputs])
            data["ts_num_tokens"] = torch.tensor([i.num_tokens for i in inputs])
            expansions["time_series"] = [ts.time_series_placeholder(i.num_tokens) for i in inputs]

        expanded = expand_placeholders(texts, expansions)
        data |= dict(self._tokenize(expanded, return_tensors, kwargs))
        return BatchFeature(data=as_return_tensors(data, return_tensors))

    @property
    def model_input_names(self) -> list[str]:
        return [
            *self.tokenizer.model_input_names,
            "pixel_values",
            "image_grid_thw",
            "pixel_values_videos",
            "video_grid_thw",
            "ts_values",
            "ts_sampling_rate",
        ]


def _has_file(path: Any, name: str, kwargs: Mapping[str, Any]) -> bool:
    """Whether the checkpoint holds `name` (a missing file is an answer, not an error)."""
    return find_checkpoint_file(path, name, kwargs) is not None


__all__ = ["InternS1ProProcessor", "as_series_list"]
