"""`vllm serve` of the tiny Intern-S1-mini checkpoint, without `--trust-remote-code`, end to end.

One server answers chat requests with images and videos sent as data URLs; `usage.prompt_tokens`
must equal the count computed here from the tokenizer and the tiling rule alone. Bad media must
get HTTP 400 with a message that says what is wrong, quickly and without a memory spike, and the
server must go on answering. Media are generated in the test; nothing binary is committed.
"""

from __future__ import annotations

import importlib.util
import json
import struct
import time
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from interns1_plugin import formats
from interns1_plugin.demo import PARSER_FLAGS, image_bytes, image_part, video_bytes, video_part
from interns1_plugin.processing.image import count_tiles
from interns1_plugin.testing.foreign_template import (
    TEMPLATE_CASES,
    assert_served_with_plugin_template,
    use_foreign_template,
)
from interns1_plugin.testing.http import HTTPStatusError, post_json, stream_events
from interns1_plugin.testing.server import VllmServer
from interns1_plugin.testing.tiny_interns1 import build_tiny_interns1

pytestmark = [
    pytest.mark.server,
    pytest.mark.vllm,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed"),
]

MODEL_NAME = "tiny-interns1-mini"
#: 448-pixel tiles, 14-pixel patches, pixel shuffle 0.5: (448 / 14)^2 / 4 tokens per tile.
TOKENS_PER_TILE = 256
MAX_IMAGES, MAX_VIDEOS = 2, 1
#: Frames kept per video, set on the server (`--mm-processor-kwargs`), below the test videos'
#: length so the cap is exercised.
NUM_FRAMES = 4
#: vLLM's per-image (and per-frame) pixel bound, lowered from 179M so that an oversized *video*
#: stays cheap to generate; the 20000x20000 image is far above either bound.
MAX_PIXELS = 2048 * 2048
#: How much the server's peak memory may grow on a rejected bomb (its bitmap would be >1 GB).
BOMB_MEMORY_SLACK = 256 * 2**20


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    root = tmp_path_factory.mktemp("interns1-server")
    model = build_tiny_interns1(root / "mini", "mini", dtype="float32")
    # As a published checkpoint does, it carries a template of its own; the plugin's must win.
    use_foreign_template(model)
    args = [
        *PARSER_FLAGS,
        "--served-model-name",
        MODEL_NAME,
        "--max-model-len",
        "8192",
        "--limit-mm-per-prompt",
        json.dumps({"image": MAX_IMAGES, "video": MAX_VIDEOS}),
        "--mm-processor-kwargs",
        json.dumps({"num_frames": NUM_FRAMES}),
    ]
    env = {"VLLM_MAX_IMAGE_PIXELS": str(MAX_PIXELS)}
    log = root / "server.log"
    with VllmServer(model, args, log_path=log, env=env, use_vllm_cli=True) as running:
        yield running


@pytest.fixture(scope="module")
def tokenizer(server: VllmServer) -> Any:
    """The tokenizer as the server loads it: the plugin's classes, the plugin's chat template."""
    from transformers import AutoTokenizer

    from interns1_plugin import tokenizer as plugin_tokenizer

    plugin_tokenizer.register_with_transformers()
    return AutoTokenizer.from_pretrained(server.model)


# --- media -----------------------------------------------------------------------------------


def text_part(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def bomb_png(width: int, height: int) -> bytes:
    """A valid 1-bit black PNG of any size, a few tens of kB: rows are compressed one by one,
    so the bitmap never exists on this side either."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = bytes(1 + (width + 7) // 8)  # filter byte + packed pixels
    packer = zlib.compressobj(9)
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    chunks = _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", pixels) + _png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def needs_video_writer() -> None:
    pytest.importorskip("cv2", reason="writing a test video needs OpenCV")


# --- expected prompt length ------------------------------------------------------------------


def count_ids(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def image_tokens(tiles: int) -> int:
    """`<img>`, 256 context tokens per tile, `</img>`."""
    return TOKENS_PER_TILE * tiles + 2


def video_tokens(tokenizer: Any, frames: int) -> int:
    """Per frame a `Frame{i}: ` label and a one-tile image; frames joined by newlines."""
    labels = sum(
        count_ids(tokenizer, ("\n" if i > 1 else "") + f"Frame{i}: ") for i in range(1, frames + 1)
    )
    return labels + frames * image_tokens(1)


def expected_prompt_tokens(
    tokenizer: Any, parts: list[dict[str, Any]], image_tiles: list[int], video_frames: list[int]
) -> int:
    """The rendered chat prompt, each one-token placeholder replaced by its expansion."""
    messages = [{"role": "user", "content": parts}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text.count(formats.IMG_CONTEXT) == len(image_tiles)
    assert text.count(formats.VIDEO_PLACEHOLDER) == len(video_frames)
    placeholders = len(image_tiles) + len(video_frames)
    expansions = sum(image_tokens(t) for t in image_tiles)
    expansions += sum(video_tokens(tokenizer, n) for n in video_frames)
    return count_ids(tokenizer, text) - placeholders + expansions


# --- requests --------------------------------------------------------------------------------


def chat_url(server: VllmServer) -> str:
    return f"{server.base_url}/v1/chat/completions"


def chat_request(parts: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL_NAME,
        "messages": [{"role": "user", "content": parts}],
        "max_tokens": 4,
        "temperature": 0,
        **extra,
    }


def chat(server: VllmServer, parts: list[dict[str, Any]]) -> dict[str, Any]:
    return post_json(chat_url(server), chat_request(parts))


def assert_still_serving(server: VllmServer, tokenizer: Any) -> None:
    """A normal image request right after a bad one is answered in full."""
    parts = [image_part(image_bytes(448, 448)), text_part("Still there?")]
    reply = chat(server, parts)
    assert reply["usage"]["prompt_tokens"] == expected_prompt_tokens(tokenizer, parts, [1], [])
    assert reply["choices"][0]["finish_reason"] == "length"


def peak_rss(pid: int | None) -> int | None:
    """The process's peak resident memory in bytes (Linux), None where it cannot be read."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


# --- good requests ---------------------------------------------------------------------------


def test_served_by_the_cli_without_remote_code(server: VllmServer) -> None:
    command = server.command()
    assert command[1:3] == ["serve", server.model]
    assert "--trust-remote-code" not in command
    with urllib.request.urlopen(f"{server.base_url}/v1/models", timeout=30) as response:
        models = [m["id"] for m in json.loads(response.read())["data"]]
    assert models == [MODEL_NAME]


@pytest.mark.parametrize("case", sorted(TEMPLATE_CASES))
def test_prompts_come_from_the_plugins_template_not_the_checkpoints(
    server: VllmServer, tokenizer: Any, case: str
) -> None:
    assert_served_with_plugin_template(server.base_url, MODEL_NAME, tokenizer, "interns1", case)


def test_one_png_image(server: VllmServer, tokenizer: Any) -> None:
    parts = [image_part(image_bytes(600, 300)), text_part("Describe the picture.")]
    reply = chat(server, parts)
    tiles = count_tiles(600, 300)
    assert tiles == 3  # a 2x1 grid and the thumbnail
    assert reply["usage"]["prompt_tokens"] == expected_prompt_tokens(tokenizer, parts, [tiles], [])
    assert reply["usage"]["completion_tokens"] == 4


def test_two_images_png_and_jpeg(server: VllmServer, tokenizer: Any) -> None:
    jpeg = image_bytes(256, 512, fmt="JPEG")
    parts = [
        image_part(jpeg, "image/jpeg"),
        image_part(image_bytes(900, 900)),
        text_part("Compare."),
    ]
    reply = chat(server, parts)
    tiles = [count_tiles(256, 512), count_tiles(900, 900)]
    assert reply["usage"]["prompt_tokens"] == expected_prompt_tokens(tokenizer, parts, tiles, [])


def test_video(server: VllmServer, tokenizer: Any) -> None:
    needs_video_writer()
    parts = [video_part(video_bytes(10)), text_part("What happens?")]
    reply = chat(server, parts)
    frames = min(10, NUM_FRAMES)
    assert reply["usage"]["prompt_tokens"] == expected_prompt_tokens(tokenizer, parts, [], [frames])


def test_short_video_keeps_every_frame(server: VllmServer, tokenizer: Any) -> None:
    needs_video_writer()
    parts = [image_part(image_bytes(600, 300)), video_part(video_bytes(3)), text_part("Same?")]
    reply = chat(server, parts)
    expected = expected_prompt_tokens(tokenizer, parts, [count_tiles(600, 300)], [3])
    assert reply["usage"]["prompt_tokens"] == expected


def test_streamed_image_request(server: VllmServer, tokenizer: Any) -> None:
    parts = [image_part(image_bytes(600, 300)), text_part("Describe the picture.")]
    request = chat_request(parts, stream_options={"include_usage": True})
    events = list(stream_events(chat_url(server), request))
    deltas = [c["delta"] for e in events for c in e["choices"]]
    finish = [c["finish_reason"] for e in events for c in e["choices"] if c["finish_reason"]]
    assert any(d.get("reasoning") or d.get("content") for d in deltas)
    assert finish == ["length"]
    usage = events[-1]["usage"]
    assert usage["prompt_tokens"] == expected_prompt_tokens(tokenizer, parts, [3], [])
    assert usage["completion_tokens"] == 4


def test_one_pixel_image_is_one_tile(server: VllmServer, tokenizer: Any) -> None:
    """1x1 is a valid image: the tiling rule gives it one tile, upscaled like any small image."""
    parts = [image_part(image_bytes(1, 1))]
    reply = chat(server, parts)
    assert count_tiles(1, 1) == 1
    assert reply["usage"]["prompt_tokens"] == expected_prompt_tokens(tokenizer, parts, [1], [])


# --- bad requests ----------------------------------------------------------------------------


def _truncated_png() -> list[dict[str, Any]]:
    return [image_part(image_bytes(600, 300)[:200])]


def _not_an_image() -> list[dict[str, Any]]:
    return [image_part(b"\x89PNG\r\n\x1a\n" + b"definitely not pixels" * 8)]


def _empty_video() -> list[dict[str, Any]]:
    return [video_part(b"")]


def _video_without_frames() -> list[dict[str, Any]]:
    needs_video_writer()
    return [video_part(video_bytes(0))]


def _corrupt_video() -> list[dict[str, Any]]:
    return [video_part(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)]


def _truncated_video() -> list[dict[str, Any]]:
    needs_video_writer()
    return [video_part(video_bytes(10)[:400])]


def _oversized_video() -> list[dict[str, Any]]:
    needs_video_writer()
    return [video_part(video_bytes(1, 2100, 2100))]


def _too_many_images() -> list[dict[str, Any]]:
    return [image_part(image_bytes(64, 64))] * (MAX_IMAGES + 1)


def _too_many_videos() -> list[dict[str, Any]]:
    needs_video_writer()
    return [video_part(video_bytes(2))] * (MAX_VIDEOS + 1)


#: name -> (parts builder, fragments the error message must contain, lower-cased)
BAD_INPUTS: dict[str, tuple[Callable[[], list[dict[str, Any]]], tuple[str, ...]]] = {
    "truncated_png": (_truncated_png, ("image", "truncated")),
    "not_an_image": (_not_an_image, ("failed to load image",)),
    "empty_video": (_empty_video, ("video", "empty")),
    "video_without_frames": (_video_without_frames, ("video", "could not be decoded")),
    "corrupt_video": (_corrupt_video, ("video", "could not be decoded")),
    "truncated_video": (_truncated_video, ("video", "could not be decoded")),
    "oversized_video": (_oversized_video, ("video frame", "2100x2100", "exceed")),
    "too_many_images": (_too_many_images, (f"at most {MAX_IMAGES} image",)),
    "too_many_videos": (_too_many_videos, (f"at most {MAX_VIDEOS} video",)),
}


def assert_bad_request(server: VllmServer, parts: list[dict[str, Any]], *fragments: str) -> str:
    with pytest.raises(HTTPStatusError) as caught:
        chat(server, parts)
    assert caught.value.status == 400, caught.value.body
    message = json.loads(caught.value.body)["error"]["message"]
    for fragment in fragments:
        assert fragment in message.lower(), message
    return message


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_a_clear_400(server: VllmServer, tokenizer: Any, case: str) -> None:
    build, fragments = BAD_INPUTS[case]
    assert_bad_request(server, build(), *fragments)
    assert_still_serving(server, tokenizer)


def test_decompression_bomb_is_refused_from_its_header(server: VllmServer, tokenizer: Any) -> None:
    """20000x20000 (1.2 GB as RGB) in 49 kB: refused before a pixel is decoded."""
    bomb = bomb_png(20000, 20000)
    assert len(bomb) < 200_000
    before = peak_rss(server.pid)
    started = time.monotonic()
    assert_bad_request(server, [image_part(bomb)], "20000x20000", "exceed")
    assert time.monotonic() - started < 10
    after = peak_rss(server.pid)
    if before is not None and after is not None:
        assert after - before < BOMB_MEMORY_SLACK
    assert_still_serving(server, tokenizer)
