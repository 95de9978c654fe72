"""`vllm serve` with `--reasoning-parser intern-s1 --tool-call-parser intern-s1`, end to end.

The scripted checkpoints answer like Intern-S1 (action format) and Intern-S1-Pro (`<tool_call>`)
do, so each reply checks the plugin's parsers inside vLLM's real serving path.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator

import pytest

from interns1_plugin import formats
from interns1_plugin.demo import PARSER_FLAGS, WEATHER_TOOL
from interns1_plugin.testing.http import collect_stream, post_json, stream_events
from interns1_plugin.testing.scripted_checkpoint import (
    PRO_TOOL_CALL_SCRIPT,
    WEATHER_TOOL_CALL_SCRIPT,
    Script,
    build_scripted_qwen3,
)
from interns1_plugin.testing.server import VllmServer

pytestmark = [
    pytest.mark.server,
    pytest.mark.vllm,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed"),
]


def _serve(tmp_path_factory: pytest.TempPathFactory, script: Script) -> Iterator[VllmServer]:
    root = tmp_path_factory.mktemp(script.name)
    model = build_scripted_qwen3(root / "model", script)
    args = [*PARSER_FLAGS, "--served-model-name", script.name]
    with VllmServer(model, args, log_path=root / "server.log") as running:
        yield running


@pytest.fixture(
    scope="module", params=[WEATHER_TOOL_CALL_SCRIPT, PRO_TOOL_CALL_SCRIPT], ids=lambda s: s.name
)
def served(request, tmp_path_factory) -> Iterator[tuple[VllmServer, Script]]:
    for server in _serve(tmp_path_factory, request.param):
        yield server, request.param


def _chat(script: Script, **extra) -> dict:
    return {
        "model": script.name,
        "messages": [{"role": "user", "content": "What is the weather in Tokyo?"}],
        "tools": [WEATHER_TOOL],
        "temperature": 0,
        "max_tokens": 64,
        **extra,
    }


def test_non_streaming_reply_is_split(served):
    server, script = served
    reply = post_json(f"{server.base_url}/v1/chat/completions", _chat(script))
    choice = reply["choices"][0]
    message = choice["message"]
    assert message["reasoning"] == "I need the weather."
    assert message["content"] == "Let me check."
    [call] = message["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Tokyo"}
    assert call["id"] and call["type"] == "function"
    assert choice["finish_reason"] == "tool_calls"


def test_streaming_reply_equals_non_streaming(served):
    server, script = served
    url = f"{server.base_url}/v1/chat/completions"
    whole = post_json(url, _chat(script))["choices"][0]["message"]
    streamed = collect_stream(stream_events(url, _chat(script)))
    assert streamed["reasoning"] == whole["reasoning"]
    assert streamed["content"] == whole["content"]
    assert [(c["name"], c["arguments"]) for c in streamed["tool_calls"]] == [
        (c["function"]["name"], c["function"]["arguments"]) for c in whole["tool_calls"]
    ]
    assert streamed["finish_reason"] == "tool_calls"


def test_enable_thinking_none_is_thinking_on(served):
    server, script = served
    kwargs = {"chat_template_kwargs": {"enable_thinking": None}}
    reply = post_json(f"{server.base_url}/v1/chat/completions", _chat(script, **kwargs))
    message = reply["choices"][0]["message"]
    assert message["reasoning"] == "I need the weather."
    assert [c["function"]["name"] for c in message["tool_calls"]] == ["get_weather"]


def test_markers_never_reach_the_client(served):
    server, script = served
    reply = post_json(f"{server.base_url}/v1/chat/completions", _chat(script))
    text = json.dumps(reply["choices"][0]["message"])
    for marker in (
        formats.ACTION_START,
        formats.PLUGIN,
        formats.TOOL_CALL_START,
        formats.THINK_END,
    ):
        assert marker not in text
