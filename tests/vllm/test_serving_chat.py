"""The `intern-s1` parsers behind vLLM's real `/v1/chat/completions` handler.

`tests/vllm/test_parsers.py` drives the parser pair directly; this drives `OpenAIServingChat`
itself (request rendering, `adjust_request`, the per-request parser, the full and the streaming
generators, SSE chunking, finish reasons) over a scripted engine, so a regression anywhere
between the parsers and the HTTP response shows up here.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

pytest.importorskip("vllm")

from vllm.entrypoints.openai.chat_completion.protocol import (  # noqa: E402
    ChatCompletionRequest,
    ChatCompletionResponse,
)
from vllm.entrypoints.serve.engine.protocol import ErrorResponse  # noqa: E402
from vllm.sampling_params import RequestOutputKind  # noqa: E402

from interns1_plugin import formats  # noqa: E402
from interns1_plugin.testing.parser_cases import (  # noqa: E402
    CASES,
    CASES_BY_NAME,
    ParserCase,
    chunkings,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import Served

pytestmark = [
    pytest.mark.vllm,
    # vLLM's handler itself reads the deprecated `max_tokens` field on every request.
    pytest.mark.filterwarnings("ignore:max_tokens is deprecated:DeprecationWarning"),
]

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
            },
        },
    }
]

#: `chunkings()` yields whole, one character per delta, then random groupings; keep three random.
CHUNKINGS = ("whole", "chars", "random1", "random2", "random3")
CASES_WITH_CALLS = [case for case in CASES if case.tool_calls]


def tool_choice_none_params() -> list[Any]:
    return [pytest.param(case, id=case.name) for case in CASES_WITH_CALLS]


@dataclass
class Reply:
    """One choice of a response, non-streamed or re-assembled from its SSE chunks."""

    reasoning: str | None
    content: str | None
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    finish_reason: str | None = None

    def calls_as_data(self) -> list[tuple[str, Any]]:
        return [(name, json.loads(arguments)) for name, arguments in self.tool_calls]


@pytest.fixture(scope="module")
def served(make_serving: Callable[..., Served]) -> Served:
    return make_serving()


def pieces_for(text: str, chunking: str) -> list[str]:
    return list(chunkings(text, random_rounds=3))[CHUNKINGS.index(chunking)]


def make_request(
    model: str, *, stream: bool, thinking: bool | None = True, **extra: Any
) -> ChatCompletionRequest:
    fields: dict[str, Any] = {"chat_template_kwargs": {"enable_thinking": thinking}, **extra}
    return ChatCompletionRequest(
        model=model,
        messages=[{"role": "user", "content": "What is the weather in Tokyo?"}],
        tools=TOOLS,
        stream=stream,
        **fields,
    )


def complete(served: Served, output: str, **fields: Any) -> Reply:
    """A non-streaming request whose engine produces `output`."""
    served.engine.script = [output]
    request = make_request(served.model_name, stream=False, **fields)
    response = asyncio.run(served.serving.create_chat_completion(request))
    assert isinstance(response, ChatCompletionResponse), response
    (choice,) = response.choices
    message = choice.message
    for call in message.tool_calls:
        assert call.id and call.type == "function"
    return Reply(
        reasoning=message.reasoning,
        content=message.content,
        tool_calls=[(c.function.name, c.function.arguments) for c in message.tool_calls],
        finish_reason=choice.finish_reason,
    )


def stream(served: Served, pieces: list[str], **fields: Any) -> Reply:
    """A streaming request whose engine emits `pieces`; the SSE chunks joined as a client would.

    Also checks the stream's shape: role first, `[DONE]` last, one finish reason on the last
    choice chunk, and every tool call opened once (id, type, name) before its arguments.
    """
    served.engine.script = pieces
    request = make_request(served.model_name, stream=True, **fields)

    async def collect() -> list[str]:
        generator = await served.serving.create_chat_completion(request)
        assert not isinstance(generator, ChatCompletionResponse | ErrorResponse), generator
        return [event async for event in generator]

    events = asyncio.run(collect())
    assert events[-1] == "data: [DONE]\n\n"
    chunks = []
    for event in events[:-1]:
        assert event.startswith("data: ") and event.endswith("\n\n"), event
        chunk = json.loads(event.removeprefix("data: "))
        assert "error" not in chunk, chunk
        chunks.append(chunk)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    reasoning, content = "", ""
    calls: dict[int, dict[str, str]] = {}
    finish_reasons = []
    for chunk in chunks:
        (choice,) = chunk["choices"]
        delta = choice["delta"]
        reasoning += delta.get("reasoning") or ""
        content += delta.get("content") or ""
        for call in delta.get("tool_calls") or []:
            index = call["index"]
            function = call.get("function") or {}
            if index not in calls:
                assert call["id"] and call["type"] == "function" and function["name"]
                calls[index] = {"name": function["name"], "arguments": ""}
            else:
                assert not call.get("id") and not function.get("name"), "call opened twice"
            calls[index]["arguments"] += function.get("arguments") or ""
        if choice.get("finish_reason") is not None:
            finish_reasons.append(choice["finish_reason"])
    assert len(finish_reasons) == 1 and chunks[-1]["choices"][0]["finish_reason"]
    assert sorted(calls) == list(range(len(calls)))
    return Reply(
        reasoning=reasoning or None,
        content=content or None,
        tool_calls=[(calls[i]["name"], calls[i]["arguments"]) for i in sorted(calls)],
        finish_reason=finish_reasons[0],
    )


def assert_matches_case(reply: Reply, case: ParserCase) -> None:
    """Expected "" content may come back as None (no content) or ""."""
    assert reply.reasoning == (case.reasoning or None)
    assert (reply.content or "") == case.content
    assert reply.calls_as_data() == case.tool_calls
    assert reply.finish_reason == ("tool_calls" if case.tool_calls else "stop")


# -- every case, non-streaming and streamed ----------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_non_streaming_response(case: ParserCase, served: Served) -> None:
    reply = complete(served, case.output, thinking=case.thinking)
    assert_matches_case(reply, case)


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_stream_reassembles_to_the_non_streaming_response(
    case: ParserCase, chunking: str, served: Served
) -> None:
    whole = complete(served, case.output, thinking=case.thinking)
    streamed = stream(served, pieces_for(case.output, chunking), thinking=case.thinking)
    # Arguments compared as text: a client must see the very same JSON either way.
    assert streamed == whole
    assert_matches_case(streamed, case)


# -- request options ---------------------------------------------------------------------------


@pytest.mark.parametrize("thinking", [None, True, False])
def test_engine_gets_the_prompt_and_sampling_the_parsers_expect(
    thinking: bool | None, served: Served
) -> None:
    """Thinking on (None included) opens `<think>` in the prompt and keeps markers in the text."""
    engine = served.engine
    case = CASES_BY_NAME["one_call_with_thought"]
    complete(served, case.output, thinking=thinking)
    stream(served, [case.output], thinking=thinking)
    thinking_on = thinking is not False
    for call, kind in zip(
        engine.calls[-2:], (RequestOutputKind.FINAL_ONLY, RequestOutputKind.DELTA), strict=True
    ):
        assert call.sampling_params.output_kind == kind
        assert call.prompt["prompt"].endswith(formats.THINK_START) == thinking_on
        # The action markers are special tokens: detokenizing must keep them for the parser.
        assert call.sampling_params.skip_special_tokens is False
        assert call.kwargs["reasoning_ended"] is (not thinking_on)


@pytest.mark.parametrize("streamed", [False, True], ids=["full", "stream"])
def test_enable_thinking_none_means_thinking_on(streamed: bool, served: Served) -> None:
    case = CASES_BY_NAME["one_call_with_thought"]
    if streamed:
        reply = stream(served, list(case.output), thinking=None)
    else:
        reply = complete(served, case.output, thinking=None)
    assert_matches_case(reply, case)


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("case", CASES_WITH_CALLS, ids=lambda c: c.name)
def test_include_reasoning_false_hides_reasoning_but_keeps_calls(
    case: ParserCase, chunking: str, served: Served
) -> None:
    fields = {"thinking": case.thinking, "include_reasoning": False}
    whole = complete(served, case.output, **fields)
    streamed = stream(served, pieces_for(case.output, chunking), **fields)
    for reply in (whole, streamed):
        assert reply.reasoning is None
        assert (reply.content or "") == case.content
        assert reply.calls_as_data() == case.tool_calls
        assert reply.finish_reason == "tool_calls"
    assert streamed.tool_calls == whole.tool_calls


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("case", tool_choice_none_params())
def test_tool_choice_none_returns_no_tool_calls(
    case: ParserCase, chunking: str, served: Served
) -> None:
    fields = {"thinking": case.thinking, "tool_choice": "none"}
    whole = complete(served, case.output, **fields)
    streamed = stream(served, pieces_for(case.output, chunking), **fields)
    for reply in (whole, streamed):
        assert reply.tool_calls == []
        assert reply.finish_reason == "stop"
        assert reply.reasoning == (case.reasoning or None)
        # The calls are dropped, not turned into text: the same content as with tools on.
        assert (reply.content or "") == case.content
    assert streamed == whole
