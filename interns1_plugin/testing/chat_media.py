"""Random media files, and the chat content parts a client sends them in, for engine tests.

Parts are `(kind, value)`: `("text", str)`, `("image" | "video", media key)` or
`("time_series", (media key, sampling rate or None))`; media keys name files in a dict of paths.
Files are drawn from the caller's generator, so a fixture's draws stay in its own order.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

#: Frame size (width, height) of the test videos.
VIDEO_SIZE = (96, 64)


def write_image(path: Path, shape: tuple[int, int], rng: np.random.Generator) -> Path:
    """A random RGB PNG of (height, width) `shape`."""
    from PIL import Image

    Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8)).save(path)
    return path


def write_images(
    root: Path, shapes: Mapping[str, tuple[int, int]], rng: np.random.Generator
) -> dict[str, Path]:
    """`write_image` per name, as `root / "<name>.png"`, in the mapping's order."""
    return {name: write_image(root / f"{name}.png", shape, rng) for name, shape in shapes.items()}


def write_video(path: Path, rng: np.random.Generator, frames: int = 20, fps: float = 10.0) -> Path:
    """A random mp4 of `frames` frames of `VIDEO_SIZE` at `fps`."""
    import cv2

    width, height = VIDEO_SIZE
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    writer.release()
    return path


def content_parts(parts: list[tuple[str, Any]], media: Mapping[str, Path]) -> list[dict[str, Any]]:
    """OpenAI-style content parts: media by path, time series as a data URL of its .npy file."""
    content: list[dict[str, Any]] = []
    for kind, value in parts:
        if kind == "text":
            content.append({"type": "text", "text": value})
        elif kind == "image":
            content.append({"type": "image_url", "image_url": {"url": str(media[value])}})
        elif kind == "video":
            content.append({"type": "video_url", "video_url": {"url": str(media[value])}})
        else:
            key, rate = value
            url = (
                "data:application/x-npy;base64,"
                + base64.b64encode(media[key].read_bytes()).decode()
            )
            spec: dict[str, Any] = {"url": url}
            if rate is not None:
                spec["sampling_rate"] = rate
            content.append({"type": "time_series_url", "time_series_url": spec})
    return content


__all__ = ["VIDEO_SIZE", "content_parts", "write_image", "write_images", "write_video"]
