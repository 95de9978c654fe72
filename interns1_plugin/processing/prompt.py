"""Placeholder expansion: what the chat template's `<IMG_CONTEXT>` / `<video>` become in the prompt.

The template marks each image with one `<IMG_CONTEXT>` and each video with one `<video>`. The model
expects one `<IMG_CONTEXT>` per visual token, wrapped per image or per frame:

- image: `<img>` + `<IMG_CONTEXT>` x (256 x tiles) + `</img>`;
- video: one line per frame, `Frame{i}: <img>` + `<IMG_CONTEXT>` x 256 + `</img>`, joined by "\\n".
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from interns1_plugin.formats import (
    FRAME_LABEL,
    IMAGE_SEQ_LENGTH,
    IMG_CONTEXT,
    IMG_END,
    IMG_START,
    VIDEO_PLACEHOLDER,
)

PLACEHOLDER_PATTERN = re.compile(f"({re.escape(IMG_CONTEXT)}|{re.escape(VIDEO_PLACEHOLDER)})")


def image_placeholder(num_tiles: int, tokens_per_tile: int = IMAGE_SEQ_LENGTH) -> str:
    """The prompt text of one image cut into `num_tiles` tiles."""
    return f"{IMG_START}{IMG_CONTEXT * (tokens_per_tile * num_tiles)}{IMG_END}"


def video_placeholder(num_frames: int, tokens_per_tile: int = IMAGE_SEQ_LENGTH) -> str:
    """The prompt text of one video of `num_frames` single-tile frames."""
    frame = image_placeholder(1, tokens_per_tile)
    return "\n".join(FRAME_LABEL.format(index=i + 1) + frame for i in range(num_frames))


def placeholder_kinds(text: str) -> list[str]:
    """The placeholders of `text` in order: `IMG_CONTEXT` or `VIDEO_PLACEHOLDER` strings."""
    return PLACEHOLDER_PATTERN.findall(text)


def expand_placeholders(
    text: str,
    image_tiles: Iterator[int],
    video_frames: Iterator[int],
    tokens_per_tile: int = IMAGE_SEQ_LENGTH,
) -> str:
    """Replace each placeholder of `text`, consuming one count from the matching iterator.

    Iterators (not lists) let one batch of texts share the images and videos in order. Raises
    ValueError when a placeholder has no image or video left.
    """

    def expand(match: re.Match[str]) -> str:
        is_image = match.group(0) == IMG_CONTEXT
        counts = image_tiles if is_image else video_frames
        count = next(counts, None)
        if count is None:
            kind = "images" if is_image else "videos"
            raise ValueError(f"the prompt has more {match.group(0)} placeholders than {kind}")
        if is_image:
            return image_placeholder(count, tokens_per_tile)
        return video_placeholder(count, tokens_per_tile)

    return PLACEHOLDER_PATTERN.sub(expand, text)


def expand_batch(
    texts: Sequence[str],
    image_tiles: Sequence[int],
    video_frames: Sequence[int],
    tokens_per_tile: int = IMAGE_SEQ_LENGTH,
) -> list[str]:
    """Expand a batch; every image and video must be claimed by exactly one placeholder."""
    images, videos = iter(image_tiles), iter(video_frames)
    expanded = [expand_placeholders(t, images, videos, tokens_per_tile) for t in texts]
    if next(images, None) is not None or next(videos, None) is not None:
        raise ValueError("more images or videos were given than the prompt has placeholders")
    return expanded


__all__ = [
    "FRAME_LABEL",
    "PLACEHOLDER_PATTERN",
    "expand_batch",
    "expand_placeholders",
    "image_placeholder",
    "placeholder_kinds",
    "video_placeholder",
]
