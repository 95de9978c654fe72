"""Hostile inputs against `vllm serve` with the plugin: status, time and memory of each answer.

Why: a public endpoint receives corrupt uploads, decompression bombs, unreachable URLs, absurd
time series, malformed tool definitions and oddly typed template switches. Each must be answered
quickly with a client error and a message that says what is wrong (or, where the input is valid
if unusual, served at bounded cost) — never a 500, a hang or a crash — and the next normal
request must be served. One server per checkpoint answers every case in turn: the tiny
Intern-S1-mini for images, videos, tools and the prompt length, the tiny scripted Intern-S1-Pro
for time series (and the same generic cases again, since its template and video loader differ).

For every case the table gives the HTTP status (or `timeout` after `--timeout` seconds), the
wall time, the peak resident memory of the server's whole process group while the request ran
(VmRSS summed over the group, sampled at 20 Hz) and its growth over the level just before, the
start of the error message, and whether the next normal request was answered. A server that
dies is restarted for the remaining cases (and the case is marked).

vLLM's built-in Intern-S1 models need torchvision; where it is missing they cannot run and the
built-in column says so. With `INTERNS1_PLUGIN_KEEP_BUILTIN_MODEL=1` and a working torchvision,
the same cases are sent to servers of the built-in models as well.

    python benchmarks/hostile_inputs.py [--timeout 120] [--cases SUBSTRING ...]
                                        [--out benchmarks/results/hostile_inputs.png]

Writes a Markdown table to stdout, the numbers as JSON beside --out and a bar chart of times.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, markdown_table, save_figure, write_json  # noqa: E402

from interns1_plugin.demo import (  # noqa: E402
    PARSER_FLAGS,
    WEATHER_TOOL,
    data_url,
    image_bytes,
    image_part,
    video_part,
)
from interns1_plugin.testing.http import HTTPStatusError, post_json  # noqa: E402
from interns1_plugin.testing.server import VllmServer, free_port  # noqa: E402

DEFAULT_OUT = Path("benchmarks/results/hostile_inputs.png")
BUILTIN_ENV = "INTERNS1_PLUGIN_KEEP_BUILTIN_MODEL"
NOT_RUNNABLE = "not runnable here (needs torchvision/GPU)"
MODELS = {"mini": "tiny-interns1-mini", "pro": "tiny-intern-s1-pro"}
SAMPLE_HZ = 20.0
MESSAGE_CHARS = 90
QUESTION = "What is the weather in Tokyo?"

#: Server flags per checkpoint, after the CPU defaults. The tiny mini's 8,192 positions hold
#: 16 one-tile frames (32 would be 8,256 tokens), so a long video can be served, not only
#: refused as too long; the Pro's context holds a 10^6-point series (as in its server test).
SERVER_ARGS: dict[str, list[str]] = {
    "mini": [
        *PARSER_FLAGS,
        "--max-model-len",
        "8192",
        "--kv-cache-memory-bytes",
        "128M",
        "--limit-mm-per-prompt",
        json.dumps({"image": 2, "video": 1}),
        "--mm-processor-kwargs",
        json.dumps({"num_frames": 16}),
    ],
    "pro": [*PARSER_FLAGS, "--max-model-len", "4096"],
}


# --- inputs --------------------------------------------------------------------------------------


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


# --- requests ------------------------------------------------------------------------------------


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


# --- measurement ---------------------------------------------------------------------------------


def group_rss(pgid: int) -> int:
    """Resident bytes of every process in the process group `pgid` (Linux /proc)."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
            # Fields after the parenthesised command: state ppid pgrp ...
            if int(stat.rsplit(b")", 1)[1].split()[2]) != pgid:
                continue
            with open(f"/proc/{entry.name}/status", "rb") as handle:
                for line in handle:
                    if line.startswith(b"VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except (OSError, ValueError, IndexError):
            continue
    return total


class RssSampler:
    """Samples a process group's total RSS in a thread while a request runs; keeps the peak."""

    def __init__(self, pgid: int, hz: float = SAMPLE_HZ) -> None:
        self.pgid = pgid
        self.period = 1.0 / hz
        self.baseline = group_rss(pgid)
        self.peak = self.baseline
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, group_rss(self.pgid))
            self.samples += 1
            self._stop.wait(self.period)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, group_rss(self.pgid))


@dataclass
class Outcome:
    """What one hostile request got back, and whether the server then still served."""

    case: str
    server: str
    expect: tuple[int, ...]
    status: int | str = ""
    wall_s: float = 0.0
    message: str = ""
    rss_baseline_mb: float = 0.0
    rss_peak_mb: float = 0.0
    rss_samples: int = 0
    next_ok: bool = False
    next_detail: str = ""
    server_restarted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in self.expect and bool(self.message) and self.next_ok

    @property
    def rss_delta_mb(self) -> float:
        return self.rss_peak_mb - self.rss_baseline_mb


def error_message(body: str) -> str:
    """The `error.message` of a vLLM error body (the raw body when it is not that JSON)."""
    try:
        error = json.loads(body).get("error", {})
        return str(error.get("message") or body) if isinstance(error, dict) else body
    except (ValueError, AttributeError):
        return body


def reply_summary(reply: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A one-line account of a successful reply, and the fields kept in the JSON."""
    choice = reply["choices"][0]
    message = choice.get("message") or {}
    calls = [c["function"]["name"] for c in message.get("tool_calls") or []]
    fields = {
        "prompt_tokens": reply.get("usage", {}).get("prompt_tokens"),
        "reasoning": message.get("reasoning") or message.get("reasoning_content"),
        "content": message.get("content"),
        "tool_calls": calls,
        "finish_reason": choice.get("finish_reason"),
    }
    text = f"served: {fields['prompt_tokens']} prompt tokens, finish {fields['finish_reason']}"
    # The random-weight mini answers with arbitrary bytes; only the scripted text is worth showing.
    if fields["reasoning"] is not None and fields["reasoning"].isprintable():
        text += f", reasoning {fields['reasoning']!r}"
    if calls:
        text += f", calls {calls}"
    return text, fields


def send(url: str, body: dict[str, Any], timeout: float) -> tuple[int | str, str, dict[str, Any]]:
    """POST one chat request: (status or "timeout"/"error", message, reply fields)."""
    try:
        reply = post_json(url, body, timeout=timeout)
    except HTTPStatusError as err:
        return err.status, error_message(err.body), {}
    except TimeoutError:
        return "timeout", f"no answer within {timeout:.0f} s", {}
    except OSError as err:  # connection reset / refused: the server went away
        return "error", f"{type(err).__name__}: {err}", {}
    text, fields = reply_summary(reply)
    return 200, text, fields


def liveness_body(kind: str, model: str) -> dict[str, Any]:
    """The normal request sent after each case: a small image (mini) or the scripted chat (Pro)."""
    if kind == "mini":
        return chat_body(model, [image_part(image_bytes(64, 64)), text_part()], max_tokens=4)
    return chat_body(model, QUESTION, max_tokens=32)


def check_liveness(kind: str, server: VllmServer, model: str, timeout: float) -> tuple[bool, str]:
    status, message, fields = send(
        server.base_url + "/v1/chat/completions", liveness_body(kind, model), timeout
    )
    if status != 200:
        return False, f"{status}: {message[:200]}"
    if kind == "pro" and fields.get("tool_calls") != ["get_weather"]:
        return False, f"no scripted tool call: {message}"
    return True, message


class ServerPool:
    """One running server per checkpoint, restarted when a case kills it."""

    def __init__(self, checkpoints: dict[str, Path], workdir: Path, env: dict[str, str]) -> None:
        self.checkpoints = checkpoints
        self.workdir = workdir
        self.env = env
        self.servers: dict[str, VllmServer] = {}
        self.startup_s: dict[str, list[float]] = {}
        self.logs: dict[str, list[str]] = {}

    def get(self, kind: str) -> VllmServer:
        server = self.servers.get(kind)
        if server is not None and _alive(server):
            return server
        if server is not None:
            server.stop()
        runs = self.logs.setdefault(kind, [])
        log = self.workdir / f"{kind}-{len(runs)}.log"
        args = [*SERVER_ARGS[kind], "--served-model-name", MODELS[kind]]
        server = VllmServer(
            self.checkpoints[kind], args, log_path=log, env=self.env, use_vllm_cli=True
        )
        server.start()
        runs.append(str(log))
        self.startup_s.setdefault(kind, []).append(round(server.startup_seconds or 0.0, 1))
        self.servers[kind] = server
        return server

    def stop(self, kind: str | None = None) -> None:
        for name in [kind] if kind else list(self.servers):
            server = self.servers.pop(name, None)
            if server is not None:
                server.stop()


def _alive(server: VllmServer) -> bool:
    """Whether the server's leader process still runs (a zombie counts as dead; not reaped)."""
    try:
        stat = Path(f"/proc/{server.pid}/stat").read_bytes()
    except (OSError, TypeError):
        return False
    return stat.rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")


def run_case(pool: ServerPool, case: Case, kind: str, timeout: float) -> Outcome:
    server = pool.get(kind)
    model = MODELS[kind]
    body = case.build(model)
    outcome = Outcome(case.name, kind, case.expect)
    assert server.pid is not None
    with RssSampler(server.pid) as sampler:
        started = time.perf_counter()
        status, message, fields = send(server.base_url + "/v1/chat/completions", body, timeout)
        outcome.wall_s = time.perf_counter() - started
    outcome.status, outcome.message, outcome.extra = status, message, fields
    outcome.rss_baseline_mb = sampler.baseline / 2**20
    outcome.rss_peak_mb = sampler.peak / 2**20
    outcome.rss_samples = sampler.samples
    if not _alive(server):
        outcome.server_restarted = True
        outcome.next_detail = "server process died: " + server.log_tail(5).replace("\n", " | ")
        pool.get(kind)  # restart for the remaining cases
        return outcome
    outcome.next_ok, outcome.next_detail = check_liveness(kind, server, model, timeout)
    return outcome


# --- built-in ------------------------------------------------------------------------------------


def builtin_availability() -> tuple[bool, str]:
    """Whether vLLM's built-in Intern-S1 models are to be measured, and why not if not."""
    if os.environ.get(BUILTIN_ENV, "").strip().lower() not in {"1", "true", "yes", "on"}:
        return False, f"{NOT_RUNNABLE}; set {BUILTIN_ENV}=1 where it can run"
    from serving import builtin_importable

    importable, reason = builtin_importable()
    return importable, reason if importable else f"{NOT_RUNNABLE}: {reason}"


# --- report --------------------------------------------------------------------------------------


def _excerpt(text: str) -> str:
    text = " ".join(text.split()).replace("|", "/")
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 3] + "..."


def _status_cell(outcome: Outcome) -> str:
    cell = str(outcome.status)
    wanted = " or ".join(str(status) for status in outcome.expect)
    return cell if outcome.status in outcome.expect else f"**{cell}** (want {wanted})"


def table(
    outcomes: Sequence[Outcome], builtin: dict[tuple[str, str], Outcome] | None, builtin_note: str
) -> str:
    header = [
        "input",
        "ckpt",
        "status",
        "time",
        "peak RSS (growth)",
        "message excerpt",
        "next request",
        "built-in",
    ]
    rows = []
    for outcome in outcomes:
        other = (builtin or {}).get((outcome.case, outcome.server))
        if other is not None:
            builtin_cell = f"{other.status}, {other.wall_s:.2f} s"
        else:
            builtin_cell = NOT_RUNNABLE if not builtin else "not measured"
        rows.append(
            [
                outcome.case,
                outcome.server,
                _status_cell(outcome),
                f"{outcome.wall_s:.2f} s",
                f"{outcome.rss_peak_mb:,.0f} MB (+{max(outcome.rss_delta_mb, 0):,.0f})",
                _excerpt(outcome.message),
                "ok" if outcome.next_ok else "**FAILED**",
                builtin_cell,
            ]
        )
    note = f"\nbuilt-in models: {builtin_note}" if builtin_note else ""
    return markdown_table(header, rows) + note


def plot(outcomes: Sequence[Outcome], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{o.case} [{o.server}]" for o in outcomes]
    colours = [
        "tab:red" if not o.ok else "tab:green" if o.status == 200 else "tab:blue" for o in outcomes
    ]
    fig, ax = plt.subplots(figsize=(10, 0.28 * len(outcomes) + 1.5))
    ax.barh(range(len(outcomes)), [o.wall_s for o in outcomes], color=colours)
    ax.set_yticks(range(len(outcomes)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("wall time of the request (s, log scale)")
    ax.set_title("Hostile inputs: blue = clear 4xx, green = served, red = unexpected")
    save_figure(fig, out)


# --- main ----------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=120.0, help="client timeout per request")
    parser.add_argument("--cases", nargs="*", default=[], help="run only cases containing these")
    parser.add_argument("--servers", nargs="*", default=["mini", "pro"], choices=["mini", "pro"])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


def select_cases(patterns: Sequence[str]) -> list[Case]:
    if not patterns:
        return list(CASES)
    return [c for c in CASES if any(p.lower() in c.name.lower() for p in patterns)]


def run_all(
    cases: Sequence[Case],
    kinds: Sequence[str],
    checkpoints: dict[str, Path],
    workdir: Path,
    env: dict[str, str],
    timeout: float,
) -> tuple[list[Outcome], dict[str, Any]]:
    """Every case on every selected server, one server at a time (they share the CPU)."""
    outcomes: list[Outcome] = []
    pool = ServerPool(checkpoints, workdir, env)
    try:
        for kind in kinds:
            for case in cases:
                if kind in case.servers:
                    outcome = run_case(pool, case, kind, timeout)
                    print(
                        f"  [{kind}] {case.name}: {outcome.status} in {outcome.wall_s:.2f} s, "
                        f"next {'ok' if outcome.next_ok else 'FAILED'}",
                        file=sys.stderr,
                    )
                    outcomes.append(outcome)
            pool.stop(kind)
    finally:
        pool.stop()
    return outcomes, {"startup_s": pool.startup_s}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from interns1_plugin.testing.scripted_checkpoint import PRO_TOOL_CALL_SCRIPT
    from interns1_plugin.testing.tiny_interns1 import build_tiny_interns1
    from interns1_plugin.testing.tiny_interns1_pro import build_tiny_interns1_pro

    started = time.perf_counter()
    cases = select_cases(args.cases)
    builtin_runnable, builtin_note = builtin_availability()
    with tempfile.TemporaryDirectory(prefix="interns1-hostile-") as scratch:
        workdir = Path(scratch)
        checkpoints = {}
        if "mini" in args.servers:
            checkpoints["mini"] = build_tiny_interns1(workdir / "mini", "mini", dtype="float32")
        if "pro" in args.servers:
            checkpoints["pro"] = build_tiny_interns1_pro(
                workdir / "pro", script=PRO_TOOL_CALL_SCRIPT
            )
        print("plugin servers:", file=sys.stderr)
        outcomes, plugin_info = run_all(cases, args.servers, checkpoints, workdir, {}, args.timeout)
        builtin: dict[tuple[str, str], Outcome] | None = None
        if builtin_runnable:
            print("built-in servers:", file=sys.stderr)
            try:
                others, _ = run_all(
                    cases, args.servers, checkpoints, workdir, {BUILTIN_ENV: "1"}, args.timeout
                )
                builtin = {(o.case, o.server): o for o in others}
            except Exception as err:  # noqa: BLE001 - the comparison is optional
                builtin_note = f"failed to run: {str(err).splitlines()[0]}"

    report: dict[str, Any] = {
        "machine": machine_info(),
        "settings": {
            "timeout_s": args.timeout,
            "rss_sample_hz": SAMPLE_HZ,
            "server_args": SERVER_ARGS,
        },
        "servers": plugin_info,
        "builtin": builtin_note,
        "all_ok": all(o.ok for o in outcomes),
        "cases": [
            {
                "input": o.case,
                "checkpoint": o.server,
                "what": next(c.what for c in CASES if c.name == o.case),
                "expected": list(o.expect),
                "status": o.status,
                "ok": o.ok,
                "wall_s": round(o.wall_s, 3),
                "rss_baseline_mb": round(o.rss_baseline_mb, 1),
                "rss_peak_mb": round(o.rss_peak_mb, 1),
                "rss_growth_mb": round(o.rss_delta_mb, 1),
                "rss_samples": o.rss_samples,
                "message": o.message,
                "reply": o.extra,
                "next_request_ok": o.next_ok,
                "next_request": o.next_detail,
                "server_restarted": o.server_restarted,
                "builtin": (
                    {"status": b.status, "wall_s": round(b.wall_s, 3), "message": b.message}
                    if builtin and (b := builtin.get((o.case, o.server)))
                    else NOT_RUNNABLE
                    if not builtin_runnable
                    else None
                ),
            }
            for o in outcomes
        ],
    }
    report["table"] = table(outcomes, builtin, builtin_note)
    report["wall_s"] = round(time.perf_counter() - started, 1)
    print(report["table"])
    bad = [o for o in outcomes if not o.ok]
    for outcome in bad:
        print(
            f"UNEXPECTED: [{outcome.server}] {outcome.case}: {outcome.status} "
            f"{outcome.message[:300]} / next: {outcome.next_detail[:300]}",
            file=sys.stderr,
        )
    plot(outcomes, args.out)
    write_json(args.out.with_suffix(".json"), report)
    print(f"\nwrote {args.out} and {args.out.with_suffix('.json')}", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
