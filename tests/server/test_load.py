"""64 concurrent streaming tool-call requests on one `vllm serve`: none lost, every call parsed.

The scripted Qwen3 answers every request with the same reasoning, sentence and action-format
`get_weather` call, so under load each stream must still come apart exactly: the parsers keep
per-request state, and a state shared or lost between concurrent requests shows up here as a
wrong reply. The server admits all 64 at once (`--max-num-seqs 64`); every request has a client
timeout and the wave a deadline, so the test ends on its own. Throughput, latency and the
parsers' CPU share under sustained load are measured by `benchmarks/load.py`.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from interns1_plugin.demo import PARSER_FLAGS, WEATHER_TOOL
from interns1_plugin.testing.http import HTTPStatusError, collect_stream, stream_events
from interns1_plugin.testing.scripted_checkpoint import (
    WEATHER_TOOL_CALL_SCRIPT,
    build_scripted_qwen3,
)
from interns1_plugin.testing.server import VllmServer

pytestmark = [
    pytest.mark.server,
    pytest.mark.vllm,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed"),
]

MODEL = "scripted-weather-load"
CONCURRENCY = 64
#: Seconds one request may take, and the whole wave (the CPU is shared and may be busy).
REQUEST_TIMEOUT = 60.0
WAVE_DEADLINE = REQUEST_TIMEOUT + 15.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    root = tmp_path_factory.mktemp("load")
    model = build_scripted_qwen3(root / "model", WEATHER_TOOL_CALL_SCRIPT)
    args = [
        *PARSER_FLAGS,
        "--served-model-name",
        MODEL,
        "--max-num-seqs",
        str(CONCURRENCY),
        "--kv-cache-memory-bytes",
        "256M",
    ]
    with VllmServer(model, args, log_path=root / "server.log", use_vllm_cli=True) as running:
        yield running


def _request(index: int) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": f"What is the weather in Tokyo? (#{index})"}],
        "tools": [WEATHER_TOOL],
        "temperature": 0,
        "max_tokens": 64,
        "chat_template_kwargs": {"enable_thinking": True},
    }


def _stream(url: str, index: int) -> dict[str, Any]:
    """The merged stream of one request, or {"error": ...}."""
    try:
        return collect_stream(stream_events(url, _request(index), timeout=REQUEST_TIMEOUT))
    except HTTPStatusError as err:
        return {"error": f"HTTP {err.status}: {err.body[:200]}"}
    except (OSError, ValueError) as err:
        return {"error": f"{type(err).__name__}: {err}"}


def _wave(url: str, size: int) -> list[dict[str, Any] | None]:
    """`size` requests released together from as many threads; joined by the wave deadline."""
    results: list[dict[str, Any] | None] = [None] * size
    barrier = threading.Barrier(size)

    def run(slot: int) -> None:
        barrier.wait()
        results[slot] = _stream(url, slot)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(size)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + WAVE_DEADLINE
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return results


def test_64_concurrent_streams_each_get_their_parsed_tool_call(server: VllmServer) -> None:
    started = time.monotonic()
    results = _wave(server.base_url + "/v1/chat/completions", CONCURRENCY)
    elapsed = time.monotonic() - started
    unfinished = [i for i, r in enumerate(results) if r is None]
    assert not unfinished, f"{len(unfinished)} requests still open after {WAVE_DEADLINE:.0f} s"
    errors = [r["error"] for r in results if r and "error" in r]
    assert not errors, f"{len(errors)} of {CONCURRENCY} failed, e.g. {errors[0]}"
    for index, reply in enumerate(results):
        assert reply is not None
        assert reply["reasoning"] == "I need the weather.", index
        assert reply["content"] == "Let me check.", index
        (call,) = reply["tool_calls"]
        assert call["name"] == "get_weather", index
        assert json.loads(call["arguments"]) == {"city": "Tokyo"}, index
        assert call["id"], index
        assert reply["finish_reason"] == "tool_calls", index
    assert len({r["tool_calls"][0]["id"] for r in results if r}) == CONCURRENCY
    assert elapsed < WAVE_DEADLINE
