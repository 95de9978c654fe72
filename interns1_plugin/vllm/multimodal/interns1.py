"""vLLM's multimodal processing for Intern-S1 / mini, over the plugin's own preprocessing.

No transformers processor is called (transformers' GotOcr2 / InternVL processors need
torchvision): pixels come from `interns1_plugin.processing` (tiling, frame sampling) and the
expanded prompt text from its `prompt` module, so vLLM, LMDeploy and transformers see the same
tiles and the same placeholder text. vLLM tokenizes the prompt itself; this module only swaps each
template placeholder (`<IMG_CONTEXT>` per image, `<video>` per video) for its expansion.

Importing it also adapts vLLM's media loading (in the API server, where requests are parsed):
video files are decoded by the plugin (`InternS1VideoLoader`) and oversized images are refused
by vLLM's own pixel bound with a client error (`defer_image_bomb_check_to_vllm`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import BatchFeature
from vllm import envs
from vllm.config.multimodal import MultiModalDummyOptions
from vllm.inputs import MultiModalDataDict
from vllm.multimodal.inputs import MultiModalFieldConfig, MultiModalKwargsItems
from vllm.multimodal.parse import (
    ImageEmbeddingItems,
    ImageProcessorItems,
    ImageSize,
    MultiModalDataItems,
    VideoEmbeddingItems,
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
from vllm.multimodal.video_decoders import check_frame_pixel_limit

from interns1_plugin import formats
from interns1_plugin.modeling.interns1_vision_config import tokens_per_tile
from interns1_plugin.processing.image import TilingConfig, count_tiles, tile_image
from interns1_plugin.processing.prompt import image_placeholder, video_placeholder
from interns1_plugin.processing.video import DEFAULT_NUM_FRAMES, decode_video, preprocess_video

#: Name of the plugin's video loader in vLLM's registry.
VIDEO_BACKEND = "interns1"
#: `video_processor_type` of Intern-S1 / mini checkpoints: vLLM picks the loader by this name.
VIDEO_PROCESSOR_TYPES = ("InternVLVideoProcessor", "InternS1VideoProcessor")


def defer_image_bomb_check_to_vllm() -> None:
    """Let vLLM's pixel bound, not PIL's, refuse oversized images, so clients get HTTP 400.

    vLLM reads an image's header, compares width x height with `VLLM_MAX_IMAGE_PIXELS` and raises
    ValueError (400) before any pixel is decoded. PIL's own decompression-bomb guard fires earlier,
    inside `Image.open`, for images over twice its limit (the same 179M pixels by default), with
    an exception vLLM does not translate: a 20000x20000 PNG got a 500. While vLLM's bound is on,
    PIL's guard adds no protection, so it is switched off; with `VLLM_MAX_IMAGE_PIXELS<=0` it stays.
    """
    if envs.VLLM_MAX_IMAGE_PIXELS > 0:
        Image.MAX_IMAGE_PIXELS = None


def _frame_size(data: bytes) -> tuple[int, int] | None:
    """Frame width and height from the container header, or None when OpenCV cannot tell.

    decord has no way to read the size without decoding a frame; vLLM's own loader reads it
    this way. The capture is left to the garbage collector, as vLLM does: OpenCV crashes the
    process when `release()` is called on a capture opened over a Python stream.
    """
    try:
        from vllm.multimodal.video_decoders.opencv import OpenCVVideoBackendMixin, cv2

        capture = OpenCVVideoBackendMixin.open_video_capture(data)
    except (ImportError, ValueError):
        return None
    return int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))


@VIDEO_LOADER_REGISTRY.register(VIDEO_BACKEND, video_processor=VIDEO_PROCESSOR_TYPES)
class InternS1VideoLoader(VideoLoader):
    """vLLM's video loader for Intern-S1: the plugin's decord decoding and frame sampling.

    vLLM's default (OpenCV) loader picks frames with its own spacing, so the frames the model saw
    differed from LMDeploy's and transformers' (the plugin's segment centres). Here the file is
    decoded as everywhere else: only the sampled frames, by index. `num_frames` is vLLM's
    `media_io_kwargs` value (32 by default, -1 for every frame); the processor then keeps at most
    its own `num_frames` of them. Other `media_io_kwargs` (fps, ...) are ignored.
    """

    @classmethod
    def load_bytes(
        cls, data: bytes, num_frames: int = DEFAULT_NUM_FRAMES, **kwargs: Any
    ) -> tuple[np.ndarray, dict[str, Any]]:
        size = _frame_size(data) if data else None
        if size is not None:
            check_frame_pixel_limit(*size)  # vLLM's bound, before a frame is decoded
        video = decode_video(data, num_frames if num_frames > 0 else None)
        return video.frames, {
            "total_num_frames": video.total_frames,
            "frames_indices": video.indices.tolist(),
            "video_backend": VIDEO_BACKEND,
            "do_sample_frames": False,
        }


class InternS1ProcessingInfo(BaseProcessingInfo):
    """Tiling, frame budget and token counts of one Intern-S1 checkpoint.

    Per-request `mm_processor_kwargs`: `min_patches` / `max_patches` (tiles per image) and
    `num_frames` (frames kept per video, evenly spaced).
    """

    def get_supported_mm_limits(self) -> Mapping[str, int | None]:
        return {"image": None, "video": None}

    def _options(self, mm_kwargs: Mapping[str, object]) -> dict[str, Any]:
        return self.ctx.get_merged_mm_kwargs(mm_kwargs)

    def get_tiling(self, mm_kwargs: Mapping[str, object] = {}) -> TilingConfig:
        """The checkpoint's `preprocessor_config.json`, with per-request tile bounds."""
        config = TilingConfig.from_preprocessor_config(self.ctx.get_hf_image_processor_config())
        options = self._options(mm_kwargs)
        return TilingConfig(
            tile_size=config.tile_size,
            min_tiles=int(options.get("min_patches", config.min_tiles)),
            max_tiles=int(options.get("max_patches", config.max_tiles)),
            mean=config.mean,
            std=config.std,
        )

    def get_frame_tiling(self, mm_kwargs: Mapping[str, object] = {}) -> TilingConfig:
        """Video frames are single tiles: no grid, no thumbnail."""
        config = self.get_tiling(mm_kwargs)
        return TilingConfig(
            tile_size=config.tile_size, min_tiles=1, max_tiles=1, mean=config.mean, std=config.std
        )

    def get_num_frames_limit(self, mm_kwargs: Mapping[str, object] = {}) -> int:
        return int(self._options(mm_kwargs).get("num_frames", DEFAULT_NUM_FRAMES))

    @property
    def tokens_per_tile(self) -> int:
        """256 for 448-pixel tiles, 14-pixel patches and pixel shuffle 0.5."""
        return tokens_per_tile(self.get_hf_config())

    def get_num_image_tokens(self, *, image_width: int, image_height: int) -> int:
        return self.tokens_per_tile * count_tiles(image_width, image_height, self.get_tiling())

    def get_image_size_with_most_features(self) -> ImageSize:
        """A one-row strip of `max_tiles` tiles: the most tiles, plus the thumbnail."""
        tiling = self.get_tiling()
        return ImageSize(width=tiling.tile_size * tiling.max_tiles, height=tiling.tile_size)

    def get_max_image_tokens(self) -> int:
        size = self.get_image_size_with_most_features()
        return self.get_num_image_tokens(image_width=size.width, image_height=size.height)

    def get_num_frames_with_most_features(self, seq_len: int, mm_counts: Mapping[str, int]) -> int:
        """Frames per video when the videos share the context, capped by the frame limit.

        Images are not subtracted: a prompt with one long video and no image is valid, and the
        encoder budget must hold it.
        """
        videos = max(mm_counts.get("video", 0), 1)
        frames = seq_len // self.tokens_per_tile // videos
        return max(1, min(frames, self.get_num_frames_limit()))

    def get_mm_max_tokens_per_item(
        self, seq_len: int, mm_counts: Mapping[str, int]
    ) -> Mapping[str, int]:
        frames = self.get_num_frames_with_most_features(seq_len, mm_counts)
        return {"image": self.get_max_image_tokens(), "video": frames * self.tokens_per_tile}


class InternS1DummyInputsBuilder(BaseDummyInputsBuilder[InternS1ProcessingInfo]):
    """Profiling inputs: the largest image and the longest video the context allows."""

    def get_dummy_text(self, mm_counts: Mapping[str, int]) -> str:
        images = formats.IMG_CONTEXT * mm_counts.get("image", 0)
        return images + formats.VIDEO_PLACEHOLDER * mm_counts.get("video", 0)

    def get_dummy_mm_data(
        self,
        seq_len: int,
        mm_counts: Mapping[str, int],
        mm_options: MultiModalDummyOptions,
    ) -> MultiModalDataDict:
        image = self.info.get_image_size_with_most_features()
        tile = self.info.get_tiling().tile_size
        return {
            "image": self._get_dummy_images(
                width=image.width,
                height=image.height,
                num_images=mm_counts.get("image", 0),
                overrides=mm_options.get("image"),
            ),
            "video": self._get_dummy_videos(
                width=tile,
                height=tile,
                num_frames=self.info.get_num_frames_with_most_features(seq_len, mm_counts),
                num_videos=mm_counts.get("video", 0),
                overrides=mm_options.get("video"),
            ),
        }


class InternS1MultiModalProcessor(BaseMultiModalProcessor[InternS1ProcessingInfo]):
    """Tiles images and samples video frames, then expands each placeholder in the prompt ids."""

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
            tiling = self.info.get_tiling(hf_kwargs)
            tiles = [tile_image(image, tiling) for image in images]
            processed["pixel_values"] = torch.cat([t.pixel_values for t in tiles]).to(dtype)
            processed["image_num_patches"] = torch.tensor([t.num_tiles for t in tiles])
        videos: Sequence[Any] = hf_data.get("videos") or []  # type: ignore[assignment]
        if videos:
            tiling = self.info.get_frame_tiling(hf_kwargs)
            limit = self.info.get_num_frames_limit(hf_kwargs)
            frames = [preprocess_video(video, limit, tiling) for video in videos]
            processed["pixel_values_videos"] = torch.cat([f.pixel_values for f in frames]).to(dtype)
            processed["video_num_patches"] = torch.tensor([f.num_frames for f in frames])
        return self._finalize_hf_mm_data(hf_data, hf_kwargs, passthrough_data, processed)

    def _get_mm_fields_config(
        self,
        hf_inputs: BatchFeature,
        hf_processor_mm_kwargs: Mapping[str, object],
    ) -> Mapping[str, MultiModalFieldConfig]:
        image_tiles = hf_inputs.get("image_num_patches", torch.empty(0))
        video_frames = hf_inputs.get("video_num_patches", torch.empty(0))
        return {
            "pixel_values": MultiModalFieldConfig.flat_from_sizes("image", image_tiles),
            "image_num_patches": MultiModalFieldConfig.batched("image", keep_on_cpu=True),
            "image_embeds": MultiModalFieldConfig.batched("image"),
            "pixel_values_videos": MultiModalFieldConfig.flat_from_sizes("video", video_frames),
            "video_num_patches": MultiModalFieldConfig.batched("video", keep_on_cpu=True),
            "video_embeds": MultiModalFieldConfig.batched("video"),
        }

    def _get_prompt_updates(
        self,
        mm_items: MultiModalDataItems,
        hf_processor_mm_kwargs: Mapping[str, object],
        out_mm_kwargs: MultiModalKwargsItems,
    ) -> Sequence[PromptUpdate]:
        tokenizer = self.info.get_tokenizer()
        per_tile = self.info.tokens_per_tile
        context_id = tokenizer.convert_tokens_to_ids(formats.IMG_CONTEXT)
        out_data = out_mm_kwargs.get_data()

        def encode(text: str) -> list[int]:
            return cached_encode(tokenizer, text, add_special_tokens=False)

        def tiles(modality: str, count_key: str, item_idx: int) -> int:
            embeds_type = ImageEmbeddingItems if modality == "image" else VideoEmbeddingItems
            pixels_type = ImageProcessorItems if modality == "image" else VideoProcessorItems
            items = mm_items.get_items(modality, (embeds_type, pixels_type))
            if isinstance(items, embeds_type):
                return items.get_feature_size(item_idx) // per_tile
            return int(out_data[count_key][item_idx])

        def image(item_idx: int) -> PromptUpdateDetails:
            text = image_placeholder(tiles("image", "image_num_patches", item_idx), per_tile)
            return PromptUpdateDetails.select_token_id(encode(text), context_id)

        def video(item_idx: int) -> PromptUpdateDetails:
            text = video_placeholder(tiles("video", "video_num_patches", item_idx), per_tile)
            return PromptUpdateDetails.select_token_id(encode(text), context_id)

        return [
            PromptReplacement(
                modality="image", target=encode(formats.IMG_CONTEXT), replacement=image
            ),
            PromptReplacement(
                modality="video", target=encode(formats.VIDEO_PLACEHOLDER), replacement=video
            ),
        ]


# In the API server this module is imported before the first request is parsed.
defer_image_bomb_check_to_vllm()
