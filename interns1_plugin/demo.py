"""`make demo`: serve a tiny checkpoint with the plugin through `vllm serve` and show the replies.

The checkpoint is a scripted tiny Qwen3 (see `interns1_plugin.testing.scripted_checkpoint`): under
greedy decoding it answers like Intern-S1 does — reasoning, `</think>`, a thought and an action-
format tool call — so what is printed is the plugin's parsers at work on a live server.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

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


def run(workdir: Path) -> int:
    checkpoint = build_scripted_qwen3(workdir / "scripted-weather", WEATHER_TOOL_CALL_SCRIPT)
    print(f"built tiny checkpoint: {checkpoint}")
    server = VllmServer(checkpoint, PARSER_FLAGS, use_vllm_cli=True)
    print("starting:", " ".join(server.command()))
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
