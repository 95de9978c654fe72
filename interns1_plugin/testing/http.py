"""Minimal OpenAI-protocol client over the standard library, for tests, the demo and benchmarks.

No third-party client, so the demo runs with nothing beyond the engine installed.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any


class HTTPStatusError(RuntimeError):
    """A non-2xx answer; keeps the status and body so tests can assert on the error message."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


def _request(url: str, payload: dict[str, Any], timeout: float):
    data = json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        raise HTTPStatusError(err.code, err.read().decode(errors="replace")) from None


def post_json(url: str, payload: dict[str, Any], *, timeout: float = 120.0) -> dict[str, Any]:
    with _request(url, payload, timeout) as response:
        return json.loads(response.read())


def stream_events(
    url: str, payload: dict[str, Any], *, timeout: float = 120.0
) -> Iterator[dict[str, Any]]:
    """Server-sent events of a streaming request, decoded, until `[DONE]`."""
    with _request(url, {**payload, "stream": True}, timeout) as response:
        for raw in response:
            line = raw.decode().strip()
            if not line.startswith("data:"):
                continue
            data = line[len("data:") :].strip()
            if data == "[DONE]":
                return
            yield json.loads(data)


def collect_stream(events: Iterator[dict[str, Any]]) -> dict[str, Any]:
    """Join a chat stream into one message: reasoning, content and tool calls by index."""
    reasoning, content, calls, finish = "", "", {}, None
    for event in events:
        for choice in event.get("choices", []):
            delta = choice.get("delta", {})
            reasoning += delta.get("reasoning") or delta.get("reasoning_content") or ""
            content += delta.get("content") or ""
            for call in delta.get("tool_calls") or []:
                slot = calls.setdefault(call["index"], {"name": "", "arguments": "", "id": None})
                function = call.get("function") or {}
                slot["name"] += function.get("name") or ""
                slot["arguments"] += function.get("arguments") or ""
                slot["id"] = slot["id"] or call.get("id")
            finish = choice.get("finish_reason") or finish
    return {
        "reasoning": reasoning,
        "content": content,
        "tool_calls": [calls[i] for i in sorted(calls)],
        "finish_reason": finish,
    }
