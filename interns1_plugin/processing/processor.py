"""`InternS1Processor`: the processor class Intern-S1's files name, without their remote code.

The published `processor_config.json` / `preprocessor_config.json` say
`"processor_class": "InternS1Processor"`; registered with `AutoProcessor`, this class is what
`AutoProcessor.from_pretrained(path)` returns, `trust_remote_code` untouched. It takes the text the
chat template rendered (one `<IMG_CONTEXT>` per image, one `<video>` per video), expands each
placeholder to the model's visual tokens and tokenizes the result.

Sub-processors are always the plugin's own (`InternS1ImageProcessor`, `InternS1VideoProcessor`),
read from the checkpoint's JSON files whatever class names they hold: the named GotOcr2 / InternVL
classes need torchvision, skip tiling when `crop_to_patches` is false and never cap video frames.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.image_processing_utils import BatchFeature
from transformers.processing_utils import MultiModalData

from interns1_plugin.formats import (
    IMAGE_SEQ_LENGTH,
    IMG_CONTEXT,
    IMG_END,
    IMG_START,
    VIDEO_PLACEHOLDER,
)
from interns1_plugin.processing.hf_processor import LocalProcessorMixin
from interns1_plugin.processing.image import concat_tiles, tile_image
from interns1_plugin.processing.image_processor import InternS1ImageProcessor, flatten_images
from interns1_plugin.processing.prompt import expand_batch, placeholder_kinds
from interns1_plugin.processing.return_tensors import as_return_tensors
from interns1_plugin.processing.video import preprocess_video
from interns1_plugin.processing.video_processor import InternS1VideoProcessor, as_video_list


class InternS1Processor(LocalProcessorMixin):
    """Images and videos to `pixel_values`, prompts to `input_ids`, in placeholder order.

    Returns `input_ids`, `attention_mask`, `pixel_values` (image tiles and video frames
    interleaved as their placeholders appear) and, on request, `image_num_patches` (tiles per
    image) and `video_num_patches` (frames per video). Attribute names follow transformers'
    `InternVLProcessor` (`image_token`, `video_token`, `image_seq_length`, ...) so engine glue
    written against it reads this class the same way.
    """

    PLUGIN_CHAT_TEMPLATE = "interns1"

    def __init__(
        self,
        image_processor: InternS1ImageProcessor | None = None,
        tokenizer: Any = None,
        video_processor: InternS1VideoProcessor | None = None,
        chat_template: str | None = None,
        image_seq_length: int = IMAGE_SEQ_LENGTH,
    ) -> None:
        super().__init__(
            image_processor if image_processor is not None else InternS1ImageProcessor(),
            tokenizer,
            video_processor if video_processor is not None else InternS1VideoProcessor(),
            chat_template=chat_template,
        )
        self.image_seq_length = image_seq_length
        tokens = {
            "image_token": IMG_CONTEXT,
            "video_token": VIDEO_PLACEHOLDER,
            "start_image_token": IMG_START,
            "end_image_token": IMG_END,
        }
        self._set_special_tokens(tokenizer, tokens)

    @property
    def image_token_ids(self) -> list[int]:
        return [self.image_token_id, self.start_image_token_id, self.end_image_token_id]

    @classmethod
    def _get_arguments_from_pretrained(
        cls, pretrained_model_name_or_path: Any, processor_dict: dict | None = None, **kwargs: Any
    ) -> list[Any]:
        """Load the tokenizer through AutoTokenizer and the plugin's own image / video processors.

        `trust_remote_code` is forced off: the point of this class is that nothing from the
        checkpoint directory is executed.
        """
        path = pretrained_model_name_or_path
        tokenizer = cls._load_tokenizer(path, kwargs)
        image_processor = InternS1ImageProcessor.from_pretrained(path, **kwargs)
        # Without a video config transformers reads preprocessor_config.json: same size and stats.
        video_processor = InternS1VideoProcessor.from_pretrained(path, **kwargs)
        return [image_processor, tokenizer, video_processor]

    def __call__(
        self,
        images: Any = None,
        text: str | list[str] | None = None,
        videos: Any = None,
        return_tensors: str | None = "pt",
        num_frames: int | None = None,
        min_patches: int | None = None,
        max_patches: int | None = None,
        return_num_patches: bool = False,
        **kwargs: Any,
    ) -> BatchFeature:
        """Expand placeholders, tokenize, and gather pixels in placeholder order.

        `return_num_patches` adds `image_num_patches` / `video_num_patches` (what engines need to
        split `pixel_values`); off by default because `model.generate(**inputs)` rejects them.
        """
        if text is None:
            raise ValueError("InternS1Processor needs the prompt text")
        texts = [text] if isinstance(text, str) else list(text)
        image_list = flatten_images(images)
        video_list = as_video_list(videos)
        self._check_counts(texts, len(image_list), len(video_list))

        tiling = self.image_processor.tiling(min_patches, max_patches)
        image_results = [tile_image(image, tiling) for image in image_list]
        frames = self.video_processor.num_frames if num_frames is None else num_frames
        frame_tiling = self.video_processor.tiling()
        video_results = [preprocess_video(v, frames, frame_tiling) for v in video_list]

        expanded = expand_batch(
            texts,
            [r.num_tiles for r in image_results],
            [r.num_frames for r in video_results],
            self.image_seq_length,
        )
        data = dict(self._tokenize(expanded, return_tensors, kwargs))

        pieces = self._pixels_in_order(texts, image_results, video_results)
        if pieces:
            data["pixel_values"] = concat_tiles(pieces)
        if return_num_patches and image_results:
            data["image_num_patches"] = torch.tensor([r.num_tiles for r in image_results])
        if return_num_patches and video_results:
            data["video_num_patches"] = torch.tensor([r.num_frames for r in video_results])
        return BatchFeature(data=as_return_tensors(data, return_tensors))

    @staticmethod
    def _check_counts(texts: list[str], num_images: int, num_videos: int) -> None:
        """Fail before any pixel work when placeholders and media do not pair up."""
        kinds = [kind for t in texts for kind in placeholder_kinds(t)]
        wanted = (kinds.count(IMG_CONTEXT), kinds.count(VIDEO_PLACEHOLDER))
        if wanted != (num_images, num_videos):
            raise ValueError(
                f"the prompt has {wanted[0]} image and {wanted[1]} video placeholders, "
                f"but {num_images} images and {num_videos} videos were given"
            )

    @staticmethod
    def _pixels_in_order(
        texts: list[str], image_results: list[Any], video_results: list[Any]
    ) -> list[torch.Tensor]:
        """Image tiles and video frames interleaved as their placeholders appear in the batch."""
        images, videos = iter(image_results), iter(video_results)
        pieces = []
        for kind in (k for t in texts for k in placeholder_kinds(t)):
            pieces.append(next(images if kind == IMG_CONTEXT else videos).pixel_values)
        return pieces

    def _get_num_multimodal_tokens(
        self, image_sizes: list[list[int]] | None = None, **kwargs: Any
    ) -> MultiModalData:
        """Placeholder tokens per image of (height, width), `<img>` and `</img>` included."""
        data: dict[str, Any] = {}
        if image_sizes is not None:
            patches = [
                self.image_processor.get_number_of_image_patches(h, w, kwargs)
                for h, w in image_sizes
            ]
            data["num_image_patches"] = patches
            data["num_image_tokens"] = [2 + self.image_seq_length * n for n in patches]
        return MultiModalData(**data)

    @property
    def model_input_names(self) -> list[str]:
        return [*self.tokenizer.model_input_names, "pixel_values"]


__all__ = ["InternS1Processor"]
