"""`vllm serve` of a tiny Intern-S1-mini checkpoint carrying the dynamic tokenizer.

The checkpoint ships `InternS1Tokenizer` files (generated at build time, no outside files), so
the engine detokenizes with vLLM's slow incremental detokenizer and structured output compiles
over this vocabulary through the plugin's xgrammar hook. With random weights the text is noise,
so the grammars here leave the model no choice but the one valid answer (one tool, enum values,
no free whitespace); what is checked is that the server answers 200 and that the constrained
output parses, streaming and not.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interns1_plugin.demo import PARSER_FLAGS
from interns1_plugin.testing.http import collect_stream, post_json, stream_events
from interns1_plugin.testing.server import VllmServer
from interns1_plugin.testing.tiny_interns1 import build_tiny_interns1, write_dynamic_tokenizer

pytestmark = [
    pytest.mark.server,
    pytest.mark.vllm,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed"),
]

MODEL_NAME = "tiny-interns1-mini-dynamic"

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "enum": ["Paris"]}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
]

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string", "enum": ["中文", "😀"]}},
    "required": ["answer"],
    "additionalProperties": False,
}


def _hook_installed() -> bool:
    """Whether the plugin's vLLM entry point installs the xgrammar hook (it must, in every
    process: the engine core builds the grammar compiler)."""
    import xgrammar as xgr

    from interns1_plugin.vllm import register, structured_output

    register.register()
    return bool(getattr(xgr.TokenizerInfo.from_huggingface, structured_output._MARK, False))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    if not _hook_installed():
        pytest.skip("interns1_plugin.vllm.register does not install structured_output yet")
    root = tmp_path_factory.mktemp("interns1-dynamic-tokenizer")
    model = build_tiny_interns1(
        root / "mini", "mini", dtype="float32", tokenizer_writer=write_dynamic_tokenizer
    )
    args = [
        *PARSER_FLAGS,
        "--served-model-name",
        MODEL_NAME,
        "--max-model-len",
        "2048",
        # No free whitespace, so the grammars below admit exactly one answer.
        "--structured-outputs-config",
        json.dumps({"backend": "xgrammar", "disable_any_whitespace": True}),
    ]
    with VllmServer(model, args, log_path=root / "server.log", use_vllm_cli=True) as running:
        yield running


def _payload(**extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL_NAME,
        "messages": [{"role": "user", "content": "Weather in Paris? 中文 😀 <SMILES>CCO</SMILES>"}],
        "max_tokens": 160,
        "temperature": 0.0,
        # Thinking off: with it on, the grammar would only apply after `</think>`.
        "chat_template_kwargs": {"enable_thinking": False},
        **extra,
    }


def _check_tool_calls(calls: list[dict[str, Any]]) -> None:
    """One call of the one tool; `calls` as the API sends them or as `collect_stream` joins them."""
    assert len(calls) == 1, calls
    function = calls[0].get("function", calls[0])
    assert function["name"] == "get_weather"
    assert json.loads(function["arguments"]) == {"city": "Paris"}


def test_checkpoint_carries_the_dynamic_tokenizer(server: VllmServer) -> None:
    config = json.loads((Path(server.model) / "tokenizer_config.json").read_text("utf-8"))
    assert config["tokenizer_class"] == "InternS1Tokenizer"


def test_tool_choice_required(server: VllmServer) -> None:
    url = f"{server.base_url}/v1/chat/completions"
    payload = _payload(tools=TOOLS, tool_choice="required", parallel_tool_calls=False)
    body = post_json(url, payload)
    message = body["choices"][0]["message"]
    _check_tool_calls(message["tool_calls"])


def test_tool_choice_required_streaming(server: VllmServer) -> None:
    url = f"{server.base_url}/v1/chat/completions"
    payload = _payload(tools=TOOLS, tool_choice="required", parallel_tool_calls=False)
    merged = collect_stream(stream_events(url, {**payload, "stream": True}))
    assert merged["finish_reason"] is not None  # the stream ran to its end with HTTP 200
    _check_tool_calls(merged["tool_calls"])


def test_json_schema_response_format(server: VllmServer) -> None:
    url = f"{server.base_url}/v1/chat/completions"
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": ANSWER_SCHEMA},
    }
    body = post_json(url, _payload(response_format=response_format))
    content = body["choices"][0]["message"]["content"]
    assert json.loads(content)["answer"] in ("中文", "😀")

    merged = collect_stream(
        stream_events(url, {**_payload(response_format=response_format), "stream": True})
    )
    assert json.loads(merged["content"]) == json.loads(content)
