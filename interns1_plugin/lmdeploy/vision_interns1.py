"""LMDeploy's vision preprocessing for Intern-S1 / Intern-S1-mini, through the plugin's processing.

Images are cut into 448x448 tiles (`processing.image`), videos keep at most `num_frames` evenly
spaced frames, one tile each (`processing.video`); the template's `<IMG_CONTEXT>` / `<video>`
placeholders become `processing.prompt`'s text, expanded at the token level as vLLM does, so both
engines see the same ids and pixels. LMDeploy's own model for this architecture handles images
only (a video is "Unsupported message type") and loads transformers' processor.

The result feeds the PyTorch engine's InternVL input processor (and TurboMind's native vision):
per image one dict with all its tiles, per video frame one dict with its single tile, each with
`pixel_values`, `offset` (first feature token), `image_tokens` (feature token count) and
`image_token_id`.

Options per request, in `mm_processor_kwargs` (flat as in vLLM, or per modality as LMDeploy's
own models read them): `min_patches` / `max_patches` (tiles per image; `{"image": {...}}`) and
`num_frames` (frames kept per video; `{"video": {"num_frames": n}}`). The server-wide default
frame limit is `INTERNS1_PLUGIN_VIDEO_NUM_FRAMES` (32). A video file is decoded by the plugin's
loader (see `media`), which decodes at most `media_io_kwargs["video"]["num_frames"]` frames
(LMDeploy's default 32), so a request gets at most the smaller of the two.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from lmdeploy.vl.constants import Modality

from interns1_plugin import formats
from interns1_plugin.configs import InternS1Config
from interns1_plugin.lmdeploy.checkpoint import INTERNS1_ARCHITECTURES, read_json
from interns1_plugin.lmdeploy.media import InternS1VideoLoader, use_media_loaders
from interns1_plugin.lmdeploy.options import positive_int, request_options
from interns1_plugin.lmdeploy.placeholders import Expansion
from interns1_plugin.lmdeploy.vision_base import PluginVisionModel, env_positive_int
from interns1_plugin.modeling.interns1_vision_config import tokens_per_tile
from interns1_plugin.processing.image import TilingConfig, tile_image
from interns1_plugin.processing.pro_vision import load_rgb
from interns1_plugin.processing.prompt import image_placeholder, video_placeholder
from interns1_plugin.processing.video import DEFAULT_NUM_FRAMES, preprocess_video

#: Server-wide default of frames kept per video (a request's `num_frames` overrides it).
NUM_FRAMES_ENV = "INTERNS1_PLUGIN_VIDEO_NUM_FRAMES"
_FLAT_OPTIONS = frozenset({"min_patches", "max_patches", "num_frames"})
_NESTED_OPTIONS = {
    "image": {"min_patches": "min_patches", "max_patches": "max_patches"},
    "video": {"num_frames": "num_frames"},
}


class InternS1VisionModel(PluginVisionModel):
    """Intern-S1 / mini images and videos for LMDeploy (registered ahead of LMDeploy's own)."""

    _arch: ClassVar[list[str]] = list(INTERNS1_ARCHITECTURES)
    _turbomind_native_vision = True
    config_class: ClassVar[type] = InternS1Config
    modalities: ClassVar[frozenset[str]] = frozenset({"image", "video"})

    def build_preprocessor(self, trust_remote_code: bool = False) -> None:
        super().build_preprocessor(trust_remote_code)
        config = self.hf_config
        self.image_token_id = self.token_id(formats.IMG_CONTEXT, config.image_token_id)
        self.tokens_per_tile = tokens_per_tile(config)
        self.tiling = TilingConfig.from_preprocessor_config(
            read_json(self.model_path, "preprocessor_config.json")
        )
        self.default_num_frames = env_positive_int(NUM_FRAMES_ENV, DEFAULT_NUM_FRAMES)
        frame_limit = self.default_num_frames
        use_media_loaders(lambda: InternS1VideoLoader(frame_limit))

    def _tilings(self, options: dict[str, Any]) -> tuple[TilingConfig, TilingConfig]:
        """(image tiling with the request's tile bounds, single-tile frame tiling)."""
        base = self.tiling
        image = TilingConfig(
            tile_size=base.tile_size,
            min_tiles=positive_int(options, "min_patches", base.min_tiles),
            max_tiles=positive_int(options, "max_patches", base.max_tiles),
            mean=base.mean,
            std=base.std,
        )
        frame = TilingConfig(base.tile_size, 1, 1, mean=base.mean, std=base.std)
        return image, frame

    def preprocess(
        self,
        messages: list[dict],
        input_prompt: str | list[int],
        mm_processor_kwargs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Tile images, sample video frames, expand placeholders; ValueError for bad input."""
        options = request_options(mm_processor_kwargs, flat=_FLAT_OPTIONS, nested=_NESTED_OPTIONS)
        image_tiling, frame_tiling = self._tilings(options)
        num_frames = positive_int(options, "num_frames", self.default_num_frames)
        pixels: list[torch.Tensor] = []
        expansions: list[Expansion] = []
        for modality, data, _ in self.collect_items(messages):
            if modality == "image":
                tiles = tile_image(load_rgb(data), image_tiling)
                pixels.append(tiles.pixel_values)
                text = image_placeholder(tiles.num_tiles, self.tokens_per_tile)
                expansions.append(
                    Expansion("image", formats.IMG_CONTEXT, text, formats.IMG_CONTEXT)
                )
            else:
                frames = preprocess_video(_frames(data), num_frames, frame_tiling)
                pixels.append(frames.pixel_values)
                text = video_placeholder(frames.num_frames, self.tokens_per_tile)
                expansions.append(
                    Expansion("video", formats.VIDEO_PLACEHOLDER, text, formats.IMG_CONTEXT)
                )
        prompt = self.expand(input_prompt, expansions)
        multimodal: list[dict[str, Any]] = []
        for item_pixels, runs in zip(pixels, prompt.runs, strict=True):
            multimodal += self._pack(item_pixels, runs)
        return self.result(input_prompt, prompt, multimodal)

    def _pack(self, pixels: torch.Tensor, runs: Sequence[tuple[int, int]]) -> list[dict]:
        """One engine item per run: an image's tiles together, or one video frame's tile."""
        if not runs or pixels.shape[0] % len(runs):
            raise ValueError(f"{pixels.shape[0]} tiles cannot fill {len(runs)} feature runs")
        per_run = pixels.shape[0] // len(runs)
        packed = []
        for index, (start, end) in enumerate(runs):
            tiles = pixels[index * per_run : (index + 1) * per_run]
            if len(runs) > 1:  # a view would carry the whole video's storage to the engine
                tiles = tiles.clone()
            if (end - start) != self.tokens_per_tile * tiles.shape[0]:
                raise ValueError(
                    f"{end - start} feature tokens for {tiles.shape[0]} tiles of "
                    f"{self.tokens_per_tile} tokens: the prompt does not match the pixels"
                )
            packed.append(
                {
                    "modality": Modality.IMAGE,
                    "pixel_values": self.feature(tiles),
                    "offset": start,
                    "image_tokens": end - start,
                    "image_token_id": self.image_token_id,
                }
            )
        return packed


def _frames(data: Any) -> Any:
    """LMDeploy hands decoded frames `(T, H, W, 3)`; a `(frames, metadata)` pair is unpacked."""
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[1], dict):
        return data[0]
    return data


__all__ = ["NUM_FRAMES_ENV", "InternS1VisionModel"]
