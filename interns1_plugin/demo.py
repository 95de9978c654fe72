"""`make demo`: serve tiny checkpoints with the plugin through `vllm serve` and show the replies.

1. Parsers: a scripted tiny Qwen3 (see `interns1_plugin.testing.scripted_checkpoint`) answers like
   Intern-S1 does under greedy decoding — reasoning, `</think>`, a thought and an action-format
   tool call — so what is printed is the plugin's parsers at work on a live server.
2. Vision: a tiny Intern-S1-mini-shaped checkpoint (`interns1_plugin.testing.tiny_interns1`),
   served without `--trust-remote-code`, answers an image and a video sent as data URLs. Its
   weights are random, so the text is gibberish; the prompt token counts show the plugin's tiling
   and frame sampling at work (256 tokens per tile or frame).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

from interns1_plugin import formats
from interns1_plugin.testing.http import collect_stream, post_json, stream_events
from interns1_plugin.testing.scripted_checkpoint import (
    WEATHER_TOOL_CALL_SCRIPT,
    build_scripted_qwen3,
)
from interns1_plugin.testing.server import VllmServer

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
PARSER_FLAGS = (
    "--enable-auto-tool-choice",
    "--reasoning-parser",
    formats.PARSER_NAME,
    "--tool-call-parser",
    formats.PARSER_NAME,
)


def _chat_request(model: str) -> dict:
    return {
        "model": model,
        "messages": [{"role": "user", "content": "What is the weather in Tokyo?"}],
        "tools": [WEATHER_TOOL],
        "temperature": 0,
        "max_tokens": 64,
    }


def _show(title: str, message: dict) -> None:
    print(f"\n=== {title} ===")
    print(f"reasoning : {message.get('reasoning') or message.get('reasoning_content')!r}")
    print(f"content   : {message.get('content')!r}")
    for call in message.get("tool_calls") or []:
        function = call.get("function", call)
        print(f"tool call : {function['name']}({function['arguments']})")
    if "finish_reason" in message:
        print(f"finish    : {message['finish_reason']}")


def run_parsers(workdir: Path) -> bool:
    """The scripted checkpoint's tool call, parsed by the intern-s1 parsers."""
    checkpoint = build_scripted_qwen3(workdir / "scripted-weather", WEATHER_TOOL_CALL_SCRIPT)
    print(f"built tiny checkpoint: {checkpoint}")
    server = VllmServer(checkpoint, PARSER_FLAGS, use_vllm_cli=True)
    print("starting:", shlex.join(server.command()))
    with server:
        print(f"server ready in {server.startup_seconds:.1f} s at {server.base_url}")
        url = f"{server.base_url}/v1/chat/completions"
        request = _chat_request(str(checkpoint))
        reply = post_json(url, request)
        choice = reply["choices"][0]
        _show("chat completion", {**choice["message"], "finish_reason": choice["finish_reason"]})
        _show("streamed chat completion", collect_stream(stream_events(url, request)))
        print(
            f"\nprompt tokens: {reply['usage']['prompt_tokens']}, "
            f"completion tokens: {reply['usage']['completion_tokens']}"
        )
        ok = bool(choice["message"].get("tool_calls"))
    print("\nserver stopped")
    return ok


# --- media for the vision part (also used by the server tests) -------------------------------


def data_url(data: bytes, mime: str) -> str:
    """Media inline in the request, as OpenAI clients send local files."""
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def image_part(data: bytes, mime: str = "image/png") -> dict[str, Any]:
    """A chat content part holding an encoded image."""
    return {"type": "image_url", "image_url": {"url": data_url(data, mime)}}


def video_part(data: bytes, mime: str = "video/mp4") -> dict[str, Any]:
    """A chat content part holding an encoded video file."""
    return {"type": "video_url", "video_url": {"url": data_url(data, mime)}}


def image_bytes(width: int, height: int, fmt: str = "PNG") -> bytes:
    """A deterministic colour gradient encoded as PNG or JPEG."""
    import numpy as np
    from PIL import Image

    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    pixels = np.stack(np.broadcast_arrays(x, y, (x + y) / 2), axis=-1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt)
    return buffer.getvalue()


def video_bytes(num_frames: int, width: int = 64, height: int = 48, fps: int = 4) -> bytes:
    """An MPEG-4 (mp4v) clip whose frames brighten one by one, written with OpenCV.

    OpenCV is a dependency of vLLM, so any vLLM install can write it; decord cannot write video.
    """
    import cv2
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="interns1-video-") as tmp:
        path = str(Path(tmp) / "clip.mp4")
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        if not writer.isOpened():
            raise RuntimeError("OpenCV cannot write mp4v video here")
        for index in range(num_frames):
            level = 255 * (index + 1) // max(num_frames, 1)
            writer.write(np.full((height, width, 3), level, dtype=np.uint8))
        writer.release()
        return Path(path).read_bytes()


# --- vision ----------------------------------------------------------------------------------

VISION_MODEL = "tiny-interns1-mini"
VISION_FLAGS = (
    *PARSER_FLAGS,
    "--served-model-name",
    VISION_MODEL,
    # Room for the largest image (12 tiles + thumbnail: 3330 tokens) and the demo's video.
    "--max-model-len",
    "8192",
    "--limit-mm-per-prompt",
    json.dumps({"image": 1, "video": 1}),
)


def _media_request(part: dict[str, Any], question: str) -> dict[str, Any]:
    content = [part, {"type": "text", "text": question}]
    return {
        "model": VISION_MODEL,
        "messages": [{"role": "user", "content": content}],
        "temperature": 0,
        "max_tokens": 8,
    }


def _show_media_reply(
    title: str, reply: dict[str, Any], media: str, visual: int, rest: str
) -> None:
    message = reply["choices"][0]["message"]
    prompt = reply["usage"]["prompt_tokens"]
    print(f"\n=== {title} ===")
    print(media)
    print(f"prompt tokens: {prompt} = {visual} visual + {prompt - visual} {rest}")
    reasoning = message.get("reasoning") or message.get("reasoning_content")
    print(f"reply (random weights): reasoning={reasoning!r} content={message.get('content')!r}")


def _ask_image(url: str) -> bool:
    from interns1_plugin.processing.image import choose_grid, count_tiles

    width, height = 600, 300
    reply = post_json(url, _media_request(image_part(image_bytes(width, height)), "Describe it."))
    cols, rows = choose_grid(width, height)
    tiles = count_tiles(width, height)
    media = f"{width}x{height} PNG -> {cols}x{rows} grid + thumbnail = {tiles} tiles of 256 tokens"
    visual = tiles * formats.IMAGE_SEQ_LENGTH + 2  # and <img>, </img>
    _show_media_reply("image request", reply, media, visual, "for the template and question")
    return reply["usage"]["prompt_tokens"] > visual


def _ask_video(url: str, length: int = 12) -> bool:
    from interns1_plugin.processing.video import DEFAULT_NUM_FRAMES

    try:
        clip = video_bytes(length)
    except (ImportError, RuntimeError) as err:
        print(f"\n(video request skipped: {err})")
        return True
    reply = post_json(url, _media_request(video_part(clip), "What happens in the video?"))
    frames = min(length, DEFAULT_NUM_FRAMES)
    media = (
        f"{length}-frame mp4 -> {frames} frames (at most {DEFAULT_NUM_FRAMES}), "
        "each one tile of 256 tokens"
    )
    visual = frames * (formats.IMAGE_SEQ_LENGTH + 2)  # and <img>, </img> per frame
    rest = "for the template, question and FrameN labels"
    _show_media_reply("video request", reply, media, visual, rest)
    return reply["usage"]["prompt_tokens"] > visual


def run_vision(workdir: Path) -> bool:
    """An image and a video through `vllm serve` of the Intern-S1-mini-shaped tiny checkpoint."""
    from interns1_plugin.testing.tiny_interns1 import build_tiny_interns1

    checkpoint = build_tiny_interns1(workdir / "tiny-interns1-mini", "mini", dtype="float32")
    print(f"\nbuilt tiny Intern-S1-mini checkpoint (random weights): {checkpoint}")
    server = VllmServer(checkpoint, VISION_FLAGS, use_vllm_cli=True)
    print("starting:", shlex.join(server.command()))
    with server:
        print(f"server ready in {server.startup_seconds:.1f} s at {server.base_url}")
        url = f"{server.base_url}/v1/chat/completions"
        image_ok = _ask_image(url)
        video_ok = _ask_video(url)
    print("\nserver stopped")
    return image_ok and video_ok


def run(workdir: Path) -> int:
    ok = run_parsers(workdir)
    ok = run_vision(workdir) and ok
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, help="where to build the checkpoint (default: tmp)")
    args = parser.parse_args(argv)
    if args.workdir:
        return run(args.workdir)
    with tempfile.TemporaryDirectory(prefix="interns1-demo-") as tmp:
        return run(Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
