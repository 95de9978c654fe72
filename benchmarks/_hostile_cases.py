"""The catalogue of hostile requests: what each sends, to which checkpoint, and what it must get.

Most must be refused with a 400 and a message; a few are valid if unusual and may be served.
Bodies are built lazily (`Case.build`), so a selection never pays for the payloads it skips.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from _hostile_payloads import (
    QUESTION,
    corrupt_png,
    hour_long_video,
    mjpg_video,
    npy_header_claiming,
    npy_url,
    png_bomb,
    png_header_only,
    random_bytes,
    series_part,
    sine,
    text_part,
    url_image,
    video_claiming_frames,
)

from interns1_plugin.demo import WEATHER_TOOL, data_url, image_bytes, image_part, video_part
from interns1_plugin.testing.server import free_port


def chat_body(model: str, parts: list[dict[str, Any]] | str, **extra: Any) -> dict[str, Any]:
    """A greedy chat request with the weather tool; `extra` overrides any field."""
    return {
        "model": model,
        "messages": [{"role": "user", "content": parts}],
        "tools": [WEATHER_TOOL],
        "temperature": 0,
        "max_tokens": 16,
        **extra,
    }


def _tool(**function: Any) -> dict[str, Any]:
    return {"type": "function", "function": function}


BodyBuilder = Callable[[str], dict[str, Any]]


@dataclass(frozen=True)
class Case:
    """One hostile request: which checkpoints get it, how to build it, the statuses accepted."""

    name: str
    servers: tuple[str, ...]
    build: BodyBuilder
    expect: tuple[int, ...] = (400,)
    what: str = ""
    #: Where the engine, not the plugin, decides the answer (the report lists these).
    engine_cause: str = ""


def _media(*parts: dict[str, Any]) -> BodyBuilder:
    return lambda model: chat_body(model, [*parts, text_part()])


def _lazy_media(make: Callable[[], dict[str, Any]]) -> BodyBuilder:
    return lambda model: chat_body(model, [make(), text_part()])


def _with(**extra: Any) -> BodyBuilder:
    return lambda model: chat_body(model, QUESTION, **extra)


def _unreachable() -> dict[str, Any]:
    return url_image(f"http://127.0.0.1:{free_port()}/x.png")


MINI, PRO, BOTH = ("mini",), ("pro",), ("mini", "pro")

CASES: tuple[Case, ...] = (
    # images
    Case(
        "image: corrupt PNG data",
        BOTH,
        _lazy_media(lambda: image_part(corrupt_png())),
        what="valid header, pixel stream overwritten: PIL's decoder fails on it",
        engine_cause=(
            "vLLM 0.32 loads the image before the plugin sees it; its normalize_image swallows "
            "the decode error raised inside exif_transpose, and the second load() returns the "
            "partly decoded picture"
        ),
    ),
    Case(
        "image: truncated PNG",
        MINI,
        _lazy_media(lambda: image_part(image_bytes(600, 300)[:300])),
    ),
    Case("image: zero bytes", BOTH, _media(image_part(b""))),
    Case(
        "image: 30000x30000 header only",
        BOTH,
        _lazy_media(lambda: image_part(png_header_only(30000, 30000))),
        what="60-byte PNG whose header declares 2.7 GB of RGB",
    ),
    Case(
        "image: 30000x30000 1-bit bomb",
        BOTH,
        _lazy_media(lambda: image_part(png_bomb(30000, 30000))),
        what="complete valid PNG, ~110 kB",
    ),
    Case(
        "image: unreachable URL",
        BOTH,
        _lazy_media(_unreachable),
        expect=(400, 500),
        engine_cause=(
            "vLLM's media fetcher treats a failed connection as transient, by design: it "
            "retries for ~5 s and then answers 500 naming the host"
        ),
        what="http://127.0.0.1:<closed port>/x.png (connection refused)",
    ),
    Case(
        "image: text/plain data URL",
        BOTH,
        _media(url_image(data_url(b"just some text, not pixels", "text/plain"))),
    ),
    Case(
        "image: random bytes as image/png",
        BOTH,
        _lazy_media(lambda: image_part(random_bytes(4096))),
    ),
    # videos
    Case("video: zero bytes", BOTH, _media(video_part(b""))),
    Case(
        "video: corrupt (random bytes)",
        BOTH,
        _lazy_media(lambda: video_part(random_bytes(8192, seed=1), "video/x-msvideo")),
    ),
    Case(
        "video: one hour at 0.25 fps",
        BOTH,
        _lazy_media(lambda: video_part(hour_long_video(), "video/x-msvideo")),
        expect=(200, 400),
        what="900 frames of 32x32 MJPG, ~220 kB; served (sampled) or refused as too long",
    ),
    Case(
        "video: valid 48x48 MJPG",
        BOTH,
        _lazy_media(lambda: video_part(mjpg_video(8, 4.0, side=48), "video/x-msvideo")),
        expect=(200,),
        what="8 ordinary frames; OpenCV decodes it",
    ),
    Case(
        "video: header claims 10^9 frames",
        BOTH,
        _lazy_media(lambda: video_part(video_claiming_frames(), "video/x-msvideo")),
        expect=(200, 400),
        what="8 real frames; avih/strh/dmlh frame counts patched to 10^9",
    ),
    # time series
    Case("series: NaN", PRO, _media(series_part(values=[1.0, float("nan"), 2.0] * 100))),
    Case(
        "series: inf (npy)",
        PRO,
        _lazy_media(lambda: series_part(url=npy_url([1.0, float("inf"), 2.0] * 100))),
    ),
    Case(
        "series: 10^7 points (npy, 40 MB)",
        PRO,
        _lazy_media(lambda: series_part(url=npy_url(sine(10**7)))),
    ),
    Case(
        "series: npy header claims 10^9 points",
        PRO,
        _lazy_media(lambda: series_part(url=npy_header_claiming(10**9))),
        what="header declares 4 GB, file holds 16 bytes",
    ),
    Case(
        "series: 3-D values",
        PRO,
        _media(series_part(values=[[[1.0, 2.0], [3.0, 4.0]]] * 50)),
    ),
    Case(
        "series: 3-D npy",
        PRO,
        _lazy_media(lambda: series_part(url=npy_url(sine(600).reshape(10, 20, 3)))),
    ),
    Case("series: ragged rows", PRO, _media(series_part(values=[[1.0, 2.0], [3.0]] * 100))),
    # tools
    Case(
        "tools: function without name",
        BOTH,
        _with(tools=[_tool(parameters={"type": "object", "properties": {}})]),
    ),
    Case(
        "tools: parameters not an object",
        BOTH,
        _with(tools=[_tool(name="get_weather", parameters="city: string")]),
    ),
    Case(
        "tools: properties not an object",
        BOTH,
        _with(tools=[_tool(name="get_weather", parameters={"type": "object", "properties": [1]})]),
        expect=(200, 400),
        what="schema-invalid but a JSON object: rendered as given or refused",
    ),
    Case("tools: not a list", BOTH, _with(tools=WEATHER_TOOL)),
    Case("tools: list of strings", BOTH, _with(tools=["get_weather"])),
    # chat template switches and length
    Case(
        'enable_thinking: "yes"',
        BOTH,
        _with(chat_template_kwargs={"enable_thinking": "yes"}),
        expect=(200, 400),
        what="wrong type (string); the template reads any truthy value as on",
    ),
    Case(
        'enable_thinking: "false"',
        BOTH,
        _with(chat_template_kwargs={"enable_thinking": "false"}),
        expect=(200, 400),
        what="a non-empty string is truthy: thinking stays ON",
    ),
    Case(
        "enable_thinking: [1]",
        BOTH,
        _with(chat_template_kwargs={"enable_thinking": [1]}),
        expect=(200, 400),
        what="wrong type (list)",
    ),
    Case(
        "prompt over max length",
        BOTH,
        lambda model: chat_body(model, "weather? " * 4000),
        what="~36,000 byte tokens against an 8,192 / 4,096-token context",
    ),
)


def select_cases(patterns: Sequence[str]) -> list[Case]:
    if not patterns:
        return list(CASES)
    return [c for c in CASES if any(p.lower() in c.name.lower() for p in patterns)]
