"""The hostile payloads themselves: malformed and oversized images, videos and time series.

Built in memory, deterministically (seeded random bytes), so every run sends the same bytes;
numpy and OpenCV are imported only by the builders that need them.
"""

from __future__ import annotations

import io
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Any

from interns1_plugin.demo import data_url, image_bytes

QUESTION = "What is the weather in Tokyo?"


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares `width` x `height` RGB, followed by one empty data chunk."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\0"))
    return b"\x89PNG\r\n\x1a\n" + body + _png_chunk(b"IEND", b"")


def png_bomb(width: int, height: int) -> bytes:
    """A complete, valid 1-bit black PNG of any size in a few hundred kB (rows compress alone)."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = bytes(1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    body = _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", pixels)
    return b"\x89PNG\r\n\x1a\n" + body + _png_chunk(b"IEND", b"")


def corrupt_png() -> bytes:
    """A real PNG with its compressed pixel data overwritten (header and CRCs untouched)."""
    data = bytearray(image_bytes(600, 300))
    start = data.index(b"IDAT") + 4
    data[start + 16 : start + 400] = bytes(range(256)) + bytes(128)
    return bytes(data)


def random_bytes(size: int, seed: int = 0) -> bytes:
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def mjpg_video(frames: int, fps: float, side: int = 16) -> bytes:
    """A small MJPG AVI (OpenCV) of `frames` frames of `side` x `side`, grey levels cycling."""
    import cv2
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="hostile-video-") as tmp:
        path = str(Path(tmp) / "clip.avi")
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, (side, side))
        if not writer.isOpened():
            raise RuntimeError("OpenCV cannot write MJPG video here")
        for index in range(frames):
            writer.write(np.full((side, side, 3), (index * 37) % 256, np.uint8))
        writer.release()
        return Path(path).read_bytes()


def hour_long_video() -> bytes:
    """One hour at 0.25 fps: 900 frames of 32x32, about 220 kB."""
    return mjpg_video(900, 0.25, side=32)


def video_claiming_frames(claimed: int = 10**9) -> bytes:
    """An 8-frame AVI whose headers (avih, strh, dmlh) claim `claimed` frames."""
    data = bytearray(mjpg_video(8, 4.0, side=32))
    for tag, offset in ((b"avih", 16), (b"strh", 32), (b"dmlh", 0)):
        at = data.find(tag)
        if at >= 0:
            struct.pack_into("<I", data, at + 8 + offset, claimed)
    return bytes(data)


def npy_url(array: Any) -> str:
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array, dtype=np.float32))
    return data_url(buffer.getvalue(), "application/x-npy")


def npy_header_claiming(points: int) -> str:
    """A .npy data URL whose header declares `points` float32 values but holds 16 bytes."""
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({points},), }}"
    header += " " * (-(len(header) + 11) % 64) + "\n"
    raw = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + bytes(16)
    return data_url(raw, "application/x-npy")


def series_part(**body: Any) -> dict[str, Any]:
    return {"type": "time_series", "time_series": body}


def text_part(text: str = QUESTION) -> dict[str, str]:
    return {"type": "text", "text": text}


def url_image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def sine(points: int, channels: int = 1) -> Any:
    import numpy as np

    wave = np.sin(np.arange(points, dtype=np.float32) / 50.0)
    return wave if channels == 1 else np.stack([wave] * channels, axis=1)
