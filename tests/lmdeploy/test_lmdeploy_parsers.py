"""The `intern-s1` parsers through LMDeploy 0.18's own serving path (`ChatRunner`).

Every shared case, streamed with every chunking (finished flag on the last piece, or on a trailing
empty step) and collected whole, must give the expected split; plus the LMDeploy specifics:
the thinking switch, special tokens kept for tools, the parsers LMDeploy composes by name, and
LMDeploy's own state machine driving our tool parser through its 0.18 block interface.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("lmdeploy.serve.parsers", exc_type=ImportError)

from interns1_plugin import formats  # noqa: E402
from interns1_plugin.testing.parser_cases import (  # noqa: E402
    CASES,
    CASES_BY_NAME,
    action,
    chunkings,
    qwen_call,
)

pytestmark = [
    pytest.mark.lmdeploy,
    # LMDeploy's own request handling warns about these on every request.
    pytest.mark.filterwarnings("ignore:max_tokens is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning"),
]

NAME = formats.PARSER_NAME
TOOLS = [
    {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
    for name in ("get_weather", "lookup", "melting_point", "fft_peak")
]
MARKERS = sorted(
    {
        formats.ACTION_START,
        formats.ACTION_END,
        formats.PLUGIN,
        formats.THINK_START,
        formats.THINK_END,
        formats.TOOL_CALL_START,
        formats.TOOL_CALL_END,
    },
    key=len,
    reverse=True,
)


def make_request(*, tools: bool = True, **extra: Any):
    from lmdeploy.serve.openai.protocol import ChatCompletionRequest

    if tools:
        extra.setdefault("tools", TOOLS)
    return ChatCompletionRequest(
        model="intern-s1", messages=[{"role": "user", "content": "hi"}], **extra
    )


def token_chunks(text: str) -> Iterator[str]:
    """Pieces the way a detokenizer gives them: markers whole, other text a character at a time."""
    pos = 0
    while pos < len(text):
        marker = next((m for m in MARKERS if text.startswith(m, pos)), None)
        size = len(marker) if marker else 1
        yield text[pos : pos + size]
        pos += size


@pytest.fixture
def server(lmdeploy_server):
    return lmdeploy_server(NAME, NAME)


def thinking_request(thinking: bool, **extra):
    return make_request(enable_thinking=thinking, **extra)


def assert_case(reply, case) -> None:
    assert reply.reasoning == case.reasoning
    assert reply.content == case.content
    assert reply.calls_as_data() == case.tool_calls
    assert reply.finish_reason == ("tool_calls" if case.tool_calls else "stop")


def all_chunkings(text: str) -> list[list[str]]:
    return [*chunkings(text), list(token_chunks(text))]


# -- the shared cases ------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_complete(server, case):
    reply = server.complete(thinking_request(case.thinking), [case.output])
    assert_case(reply, case)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_streaming_every_chunking_equals_complete(server, case):
    complete = server.complete(thinking_request(case.thinking), [case.output])
    for pieces in all_chunkings(case.output):
        for trailing_empty in (False, True):
            reply = server.stream(
                thinking_request(case.thinking), pieces, trailing_empty=trailing_empty
            )
            assert_case(reply, case)
            # Arguments text identical too (unicode, spacing), not just equal as JSON.
            assert reply.calls == complete.calls


@pytest.mark.parametrize(
    "name",
    [
        "space_between_markers",
        "arguments_key",
        "unknown_tool_is_still_returned",
        "call_inside_reasoning",
        "truncated_call_is_text",
        "stop_string_ate_end_marker",
        "pro_qwen_format",
        "malformed_call_is_text",
    ],
)
def test_known_lmdeploy_defects_fixed(server, name):
    """The defects of LMDeploy 0.18's built-in `intern-s1` parsers, one delta per token."""
    case = CASES_BY_NAME[name]
    assert_case(server.stream(thinking_request(True), list(token_chunks(case.output))), case)


def test_several_calls_in_one_delta(server):
    text = "\nr\n</think>\n\n" + action("lookup", {"q": 1}) + "\n" + qwen_call("fft_peak", {})
    reply = server.stream(thinking_request(True), [text[:5], text[5:]])
    assert reply.calls_as_data() == [("lookup", {"q": 1}), ("fft_peak", {})]
    assert reply.content == ""


# -- the thinking switch -------------------------------------------------------------------
ANSWER = "\nreasoning\n</think>\n\nanswer"


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"enable_thinking": None},
        {"chat_template_kwargs": {"enable_thinking": None}},
        {"chat_template_kwargs": {}},
        {"enable_thinking": True},
        # LMDeploy reads a `thinking` key too; the Intern-S1 template does not, so neither do we.
        {"chat_template_kwargs": {"thinking": False}},
    ],
    ids=["absent", "top_level_none", "kwargs_none", "kwargs_empty", "true", "thinking_key"],
)
def test_thinking_on_unless_disabled(server, extra):
    for reply in (
        server.complete(make_request(**extra), [ANSWER]),
        server.stream(make_request(**extra), list(ANSWER)),
    ):
        assert (reply.reasoning, reply.content) == ("reasoning", "answer")


@pytest.mark.parametrize(
    "extra",
    [{"enable_thinking": False}, {"chat_template_kwargs": {"enable_thinking": False}}],
    ids=["top_level", "chat_template_kwargs"],
)
def test_thinking_off_everything_is_content(server, extra):
    text = "The answer. <think>not reasoning</think>" + action("lookup", {"q": "x"})
    for reply in (
        server.complete(make_request(**extra), [text]),
        server.stream(make_request(**extra), list(text)),
    ):
        assert reply.reasoning is None
        assert reply.content == "The answer. <think>not reasoning</think>"
        assert reply.calls_as_data() == [("lookup", {"q": "x"})]


# -- request handling ----------------------------------------------------------------------
def test_special_tokens_kept_when_tools_are_on(server):
    gen_config = server.runner(make_request()).gen_config
    assert gen_config.skip_special_tokens is False
    assert gen_config.spaces_between_special_tokens is False


@pytest.mark.parametrize(
    "extra", [{"tools": False}, {"tool_choice": "none"}], ids=["no_tools", "tool_choice_none"]
)
def test_special_tokens_left_alone_without_tools(server, extra):
    gen_config = server.runner(make_request(**extra)).gen_config
    assert gen_config.skip_special_tokens is True


def test_tool_choice_none_leaves_blocks_as_content(server):
    block = action("lookup", {"q": 1})
    reply = server.complete(make_request(tool_choice="none"), ["\nr\n</think>\n\nx" + block])
    assert reply.content == "x" + block
    assert reply.calls == []


def test_tool_choice_required_gets_lmdeploy_grammar(server):
    pytest.importorskip("xgrammar")
    runner = server.runner(make_request(tool_choice="required"))
    assert runner.gen_config.response_format["type"] == "structural_tag"


def test_reasoning_tokens_still_counted(server):
    pieces = ["\n", "a", " b", "\n", formats.THINK_END, "\n\n", "ok"]
    think_end_id = server.engine.tokenizer.model.model.get_vocab()[formats.THINK_END]
    ids = [[5], [6], [7], [5], [think_end_id], [5], [8]]
    reply = server.stream(make_request(), pieces, token_ids=ids)
    assert (reply.reasoning, reply.content, reply.reasoning_tokens) == ("a b", "ok", 4)


def test_leading_empty_step_is_an_empty_content_delta(server):
    parser = server.parser_cls(make_request())
    assert [(m.content, emitted) for m, emitted in parser.stream_chunk("", [])] == [("", False)]


# -- composition by name -------------------------------------------------------------------
def test_api_server_builds_ours(server):
    from interns1_plugin.lmdeploy.reasoning_parser import InternS1ReasoningParser
    from interns1_plugin.lmdeploy.response_parser import InternS1ResponseParser
    from interns1_plugin.lmdeploy.tool_parser import InternS1ToolParser

    parser = server.parser_cls(make_request())
    assert isinstance(parser, InternS1ResponseParser)
    assert isinstance(parser.reasoning_parser, InternS1ReasoningParser)
    assert isinstance(parser.tool_parser, InternS1ToolParser)


def test_reasoning_parser_alone_keeps_blocks_in_channels(lmdeploy_server):
    server = lmdeploy_server(NAME, None)
    block = action("lookup", {"q": 1})
    reply = server.complete(make_request(tools=False), ["\nr " + block + "\n</think>\n\nx" + block])
    assert (reply.reasoning, reply.content, reply.calls) == ("r " + block, "x" + block, [])


def test_tool_parser_beside_lmdeploy_default_reasoning(lmdeploy_server):
    """`--reasoning-parser default` has the same tags: the core still parses everything."""
    server = lmdeploy_server("default", NAME)
    case = CASES_BY_NAME["call_inside_reasoning"]
    assert_case(server.stream(thinking_request(True), list(case.output)), case)


def test_other_parsers_behave_as_lmdeploy(lmdeploy_server):
    """Our `default` response parser must not change other models' parsing."""
    from lmdeploy.serve.parsers.response_parser import BaseResponseParser

    text = "\nr\n</think>\n\nx" + qwen_call("fft_peak", {"window": 2}) + "\n"
    server = lmdeploy_server("default", "qwen3")
    ours = server.stream(make_request(), list(token_chunks(text)), whole_calls=False)

    class Stock(BaseResponseParser):
        pass

    Stock.set_parsers("default", "qwen3")
    stock = Stock(make_request())
    messages = []
    chunks = list(token_chunks(text))
    for i, piece in enumerate(chunks):
        messages += stock.stream_chunk(piece, [], final=i == len(chunks) - 1)
    reasoning = "".join(m.reasoning_content or "" for m, _ in messages)
    content = "".join(m.content or "" for m, _ in messages)
    assert (ours.reasoning, ours.content) == (reasoning, content)
    assert ours.calls_as_data() == [("fft_peak", {"window": 2})]


# -- LMDeploy's own state machine driving our tool parser (its 0.18 block interface) ---------
@pytest.fixture
def stock_parser_cls():
    from lmdeploy.serve.parsers.response_parser import BaseResponseParser

    from interns1_plugin.lmdeploy.register import register

    register()

    class Stock(BaseResponseParser):
        pass

    Stock.set_parsers(NAME, NAME)
    return Stock


def stock_calls(parser_cls, text: str) -> list[tuple[str, str]]:
    """Tool calls from LMDeploy's `BaseResponseParser`, one delta per token."""
    parser = parser_cls(make_request())
    chunks = list(token_chunks(text))
    deltas = []
    for i, piece in enumerate(chunks):
        for message, _ in parser.stream_chunk(piece, [], final=i == len(chunks) - 1):
            deltas += message.tool_calls or []
    return [
        (c.function.name, c.function.arguments) for c in parser.tool_parser.build_tool_calls(deltas)
    ]


@pytest.mark.parametrize(
    "name",
    [
        "one_call_with_thought",
        "two_calls",
        "space_between_markers",
        "arguments_key",
        "unknown_tool_is_still_returned",
        "stop_string_ate_end_marker",
        "empty_arguments_kept",
        "unicode_and_nesting",
    ],
)
def test_block_interface_under_lmdeploy_state_machine(stock_parser_cls, name):
    case = CASES_BY_NAME[name]
    calls = stock_calls(stock_parser_cls, case.output)
    assert [(name, json.loads(arguments)) for name, arguments in calls] == case.tool_calls
