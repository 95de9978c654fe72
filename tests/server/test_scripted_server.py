"""A live `vllm serve` of the scripted checkpoint returns the script, token for token.

This is the ground the parser end-to-end tests stand on: if the raw text is the script, any
difference in parsed output is the parsers' doing.
"""

from __future__ import annotations

import importlib.util
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interns1_plugin.demo import WEATHER_TOOL
from interns1_plugin.testing.scripted_checkpoint import (
    WEATHER_TOOL_CALL_SCRIPT,
    build_scripted_qwen3,
    chatml_prompt,
)
from interns1_plugin.testing.server import VllmServer

pytestmark = [
    pytest.mark.server,
    pytest.mark.vllm,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed"),
]

SCRIPT = WEATHER_TOOL_CALL_SCRIPT
MODEL_NAME = "scripted-weather"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    root = tmp_path_factory.mktemp("scripted-server")
    model = build_scripted_qwen3(root / "model", SCRIPT)
    extra = ["--served-model-name", MODEL_NAME]
    with VllmServer(model, extra, log_path=root / "server.log") as running:
        yield running


def _post(server: VllmServer, route: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        server.base_url + route,
        data=json.dumps({"model": MODEL_NAME, **body}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        raise AssertionError(f"{route} -> {error.code}: {error.read().decode()}") from error


def test_server_binds_loopback_only(server: VllmServer) -> None:
    assert server.base_url.startswith("http://127.0.0.1:")


def test_raw_completion_is_the_script(server: VllmServer) -> None:
    reply = _post(
        server,
        "/v1/completions",
        {
            "prompt": chatml_prompt("weather in Tokyo?", SCRIPT),
            "temperature": 0,
            "max_tokens": 64,
            "skip_special_tokens": False,
        },
    )
    choice = reply["choices"][0]
    assert choice["text"] == SCRIPT.served_text
    assert choice["finish_reason"] == "stop"
    assert reply["usage"]["completion_tokens"] == len(SCRIPT.segments)


def test_chat_completion_without_parsers_returns_the_raw_script(server: VllmServer) -> None:
    config = json.loads((Path(server.model) / "tokenizer_config.json").read_text())
    if "chat_template" not in config:
        pytest.skip("checkpoint built without a chat template")
    reply = _post(
        server,
        "/v1/chat/completions",
        {
            "messages": [{"role": "user", "content": "weather in Tokyo?"}],
            # The prompt carries the tool, but without a tool parser nothing may parse the call.
            "tools": [WEATHER_TOOL],
            "tool_choice": "none",
            "temperature": 0,
            "max_tokens": 64,
            "skip_special_tokens": False,
        },
    )
    assert reply["choices"][0]["message"]["content"] == SCRIPT.served_text
