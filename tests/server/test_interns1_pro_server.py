"""`vllm serve` of a tiny Intern-S1-Pro with the plugin: images, a 10^6-point time series, parsers.

The checkpoint is Pro-shaped (FoPE, grouped routing, Qwen3-VL vision tower, time-series encoder)
and scripted: greedy decoding answers with reasoning, a sentence and a Qwen `<tool_call>` block,
so every request also proves the `intern-s1` parsers on Pro's tool format. The server is started
with the literal user command and no `--trust-remote-code`; the checkpoint's `auto_map` points at
files that do not exist, so any attempt at remote code would fail the start.

Token counts are checked exactly: a media part ends up as start + N placeholder tokens + end, so a
request with the part has N + 2 more prompt tokens than the same request without it.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from interns1_plugin.demo import WEATHER_TOOL
from interns1_plugin.formats import VISION_START
from interns1_plugin.processing.pro_video import (
    preprocess_video,
    sample_video_frames,
    video_prompt,
)
from interns1_plugin.processing.pro_vision import (
    DEFAULT_PRO_VISION,
    ProVisionConfig,
    count_image_tokens,
)
from interns1_plugin.processing.time_series import num_time_series_tokens
from interns1_plugin.testing.foreign_template import (
    TEMPLATE_CASES,
    assert_served_with_plugin_template,
    use_foreign_template,
)
from interns1_plugin.testing.http import HTTPStatusError, collect_stream, post_json, stream_events
from interns1_plugin.testing.scripted_checkpoint import PRO_TOOL_CALL_SCRIPT
from interns1_plugin.testing.server import VllmServer
from interns1_plugin.testing.tiny_interns1_pro import (
    TINY_PRO,
    build_tiny_interns1_pro,
    preprocessor_config,
    video_preprocessor_config,
)

pytestmark = [
    pytest.mark.server,
    pytest.mark.vllm,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed"),
]

MODEL = "tiny-intern-s1-pro"
ONE_MILLION = 1_000_000
PARSER_ARGS = [
    "--enable-auto-tool-choice",
    "--reasoning-parser",
    "intern-s1",
    "--tool-call-parser",
    "intern-s1",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    root = tmp_path_factory.mktemp("pro-server")
    model = build_tiny_interns1_pro(root / "model", script=PRO_TOOL_CALL_SCRIPT, with_auto_map=True)
    # As a published checkpoint does, it carries a template of its own; the plugin's must win.
    use_foreign_template(model)
    extra = [*PARSER_ARGS, "--served-model-name", MODEL, "--max-model-len", "4096"]
    with VllmServer(model, extra, log_path=root / "server.log", use_vllm_cli=True) as running:
        yield running


def _chat(server: VllmServer, parts: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": parts}],
        "tools": [WEATHER_TOOL],
        "temperature": 0,
        "max_tokens": 32,
        **extra,
    }
    return post_json(server.base_url + "/v1/chat/completions", body, timeout=600)


def _text(text: str = "What does this show?") -> dict[str, Any]:
    return {"type": "text", "text": text}


def _npy_url(values: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, values.astype(np.float32))
    return "data:application/x-npy;base64," + base64.b64encode(buffer.getvalue()).decode()


def _series(values: Any, **fields: Any) -> dict[str, Any]:
    return {"type": "time_series", "time_series": {"values": values, **fields}}


def _assert_scripted_reply(reply: dict[str, Any]) -> None:
    message = reply["choices"][0]["message"]
    assert message["reasoning"] == "I need the weather."
    assert message["content"] == "Let me check."
    (call,) = message["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert call["function"]["arguments"] == '{"city": "Tokyo"}'
    assert reply["choices"][0]["finish_reason"] == "tool_calls"


@pytest.fixture(scope="module")
def text_only_tokens(server: VllmServer) -> int:
    reply = _chat(server, [_text()])
    _assert_scripted_reply(reply)
    return int(reply["usage"]["prompt_tokens"])


@pytest.fixture(scope="module")
def tokenizer(server: VllmServer) -> Any:
    """The checkpoint's tokenizer, loaded once for the module."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(server.model)


@pytest.mark.parametrize("case", sorted(TEMPLATE_CASES))
def test_prompts_come_from_the_plugins_template_not_the_checkpoints(
    server: VllmServer, tokenizer: Any, case: str
) -> None:
    assert_served_with_plugin_template(server.base_url, MODEL, tokenizer, "interns1_pro", case)


def test_image_request_is_answered_with_a_parsed_tool_call(
    server: VllmServer, text_only_tokens: int
) -> None:
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 300, 3), np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    reply = _chat(server, [{"type": "image_url", "image_url": {"url": url}}, _text()])
    _assert_scripted_reply(reply)
    config = ProVisionConfig.from_preprocessor_config(preprocessor_config(TINY_PRO))
    expected = count_image_tokens(200, 300, config)
    assert reply["usage"]["prompt_tokens"] - text_only_tokens == expected + 2


def _video_url(tmp_path: Path, frames: int = 20, fps: int = 10) -> str:
    """An MJPG video (OpenCV) as a data URL: frame i is a grey level rising with i."""
    cv2 = pytest.importorskip("cv2")
    levels = np.linspace(0, 255, frames).round().astype(np.uint8)
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (96, 64))
    for level in levels:
        writer.write(np.full((64, 96, 3), level, np.uint8))
    writer.release()
    return "data:video/x-msvideo;base64," + base64.b64encode(path.read_bytes()).decode()


def _count_tokens(server: VllmServer, text: str) -> int:
    body = {"model": MODEL, "prompt": text, "add_special_tokens": False}
    return int(post_json(server.base_url + "/tokenize", body)["count"])


def test_video_request_uses_qwen3_vl_frame_layout(
    server: VllmServer, text_only_tokens: int, tmp_path: Path
) -> None:
    url = _video_url(tmp_path, frames=45, fps=10)
    parts = [{"type": "video_url", "video_url": {"url": url}}, _text()]
    reply = _chat(server, parts, return_token_ids=True)
    _assert_scripted_reply(reply)
    # 4.5 s at the model's 2 fps -> 9 frames from the loader; this checkpoint allows 8, so they
    # are thinned evenly -> 4 temporal groups, each with its `<t seconds>` label (timed from the
    # source's own fps) and its vision block.
    config = ProVisionConfig.from_preprocessor_config(
        preprocessor_config(TINY_PRO), video_preprocessor_config(TINY_PRO)
    )
    loaded = sample_video_frames(45, 10.0, DEFAULT_PRO_VISION)
    assert len(loaded) == 9 and config.max_frames == 8
    indices = loaded[np.linspace(0, 8, 8).round().astype(int)]
    frames = np.zeros((len(indices), 64, 96, 3), np.uint8)
    video = preprocess_video(frames, config, video_fps=10.0, frame_indices=indices)
    prompt = video_prompt(video.video_grid_thw[0], video.timestamps)
    assert prompt.count(VISION_START) == 4 and prompt.startswith("<0.3 seconds>")
    assert reply["usage"]["prompt_tokens"] - text_only_tokens == _count_tokens(server, prompt)
    config_ids = json.loads((Path(server.model) / "config.json").read_text())
    assert reply["prompt_token_ids"].count(config_ids["vision_start_token_id"]) == 4


def test_a_million_point_time_series_is_served_whole(
    server: VllmServer, text_only_tokens: int
) -> None:
    rng = np.random.default_rng(1)
    values = np.sin(np.arange(ONE_MILLION) / 300.0) + 0.1 * rng.standard_normal(ONE_MILLION)
    part = {"type": "time_series", "time_series": {"url": _npy_url(values)}}
    reply = _chat(server, [part, _text()])
    _assert_scripted_reply(reply)
    expected = num_time_series_tokens(ONE_MILLION)  # default sampling rate: len / 4
    assert expected > 1000
    assert reply["usage"]["prompt_tokens"] - text_only_tokens == expected + 2


def test_multichannel_series_with_sampling_rate_streams_a_tool_call(
    server: VllmServer, text_only_tokens: int
) -> None:
    values = np.stack([np.sin(np.arange(4000) / 9.0), np.cos(np.arange(4000) / 5.0)], axis=1)
    part = _series(values.tolist(), sampling_rate=50.0)
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": [part, _text()]}],
        "tools": [WEATHER_TOOL],
        "temperature": 0,
        "max_tokens": 32,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    events = list(stream_events(server.base_url + "/v1/chat/completions", body, timeout=600))
    merged = collect_stream(iter(events))
    assert merged["reasoning"] == "I need the weather."
    assert merged["content"] == "Let me check."
    (call,) = merged["tool_calls"]
    assert (call["name"], call["arguments"]) == ("get_weather", '{"city": "Tokyo"}')
    assert merged["finish_reason"] == "tool_calls"
    usage = next(event["usage"] for event in reversed(events) if event.get("usage"))
    expected = num_time_series_tokens(4000, 50.0)
    assert usage["prompt_tokens"] - text_only_tokens == expected + 2


@pytest.mark.parametrize(
    ("part", "message"),
    [
        (_series([1.0, float("nan"), 2.0] * 100), "finite"),
        (_series([[1.0, 2.0], [3.0]] * 100), "same number of channels"),
        (_series([]), "empty"),
        (_series(list(range(1000)), sampling_rate=-5), "sampling_rate must be a positive"),
        ({"type": "time_series", "time_series": {"values": [1.0], "url": "data:,"}}, "exactly one"),
        ({"type": "time_series", "time_series": {"url": "http://127.0.0.1:9/x.npy"}}, "data: URL"),
        ({"type": "time_series", "time_series": {"url": "data:application/x-npy;base64,AAAA"}}, ""),
        ({"type": "time_series"}, "'time_series' object"),
    ],
    ids=["nan", "ragged", "empty", "bad-rate", "both-fields", "http-url", "corrupt-npy", "no-body"],
)
def test_bad_time_series_get_400_and_the_server_keeps_serving(
    server: VllmServer, part: dict[str, Any], message: str
) -> None:
    with pytest.raises(HTTPStatusError) as error:
        _chat(server, [part, _text()])
    assert error.value.status == 400
    assert message.lower() in str(error.value).lower()
    _assert_scripted_reply(_chat(server, [_text("still there?")]))


def test_points_over_the_bound_are_refused_not_truncated(server: VllmServer) -> None:
    values = np.zeros(ONE_MILLION + 1, dtype=np.float32)
    with pytest.raises(HTTPStatusError) as error:
        _chat(server, [{"type": "time_series", "time_series": {"url": _npy_url(values)}}])
    assert error.value.status == 400
    assert "max_points=1000000" in str(error.value)
    assert "not truncated" in str(error.value)
