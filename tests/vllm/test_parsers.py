"""The `intern-s1` parsers through vLLM's own composition path (`ParserManager.get_parser`)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("vllm")

from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest  # noqa: E402
from vllm.parser.parser_manager import ParserManager  # noqa: E402

from interns1_plugin import formats  # noqa: E402
from interns1_plugin.testing.parser_cases import CASES, action, chunkings  # noqa: E402
from interns1_plugin.vllm import register as plugin_register  # noqa: E402

pytestmark = pytest.mark.vllm

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_tokens([chr(i) for i in range(33, 127)])
    tok = PreTrainedTokenizerFast(tokenizer_object=backend)
    tok.add_special_tokens(
        {
            "additional_special_tokens": [
                formats.IM_START,
                formats.IM_END,
                formats.ACTION_START,
                formats.ACTION_END,
                formats.PLUGIN,
            ]
        }
    )
    tok.add_tokens([formats.THINK_START, formats.THINK_END])
    return tok


@pytest.fixture(scope="module")
def parser_cls(tokenizer):
    plugin_register.register()
    return ParserManager.get_parser(
        tool_parser_name=formats.PARSER_NAME,
        reasoning_parser_name=formats.PARSER_NAME,
        enable_auto_tools=True,
        tokenizer=tokenizer,
    )


def make_request(**extra) -> ChatCompletionRequest:
    return ChatCompletionRequest(
        model="m", messages=[{"role": "user", "content": "hi"}], tools=TOOLS, **extra
    )


def run_stream(parser, request, pieces: list[str]):
    reasoning, content, calls = "", "", {}
    for i, piece in enumerate(pieces):
        delta = parser.parse_delta(
            piece, [], request, prompt_token_ids=None, finished=i == len(pieces) - 1
        )
        if delta is None:
            continue
        reasoning += delta.reasoning or ""
        content += delta.content or ""
        for call in delta.tool_calls:
            assert call.id and call.type == "function"
            assert call.index not in calls, "each call arrives whole, once"
            calls[call.index] = (call.function.name, call.function.arguments)
    assert sorted(calls) == list(range(len(calls)))
    return reasoning, content, [calls[i] for i in sorted(calls)]


def test_register_is_idempotent_and_names_both_parsers():
    from vllm.reasoning import ReasoningParserManager
    from vllm.tool_parsers import ToolParserManager

    plugin_register.register()
    plugin_register.register()
    assert formats.PARSER_NAME in ReasoningParserManager.list_registered()
    assert formats.PARSER_NAME in ToolParserManager.list_registered()


def test_composition_uses_the_plugin_classes(parser_cls):
    from interns1_plugin.vllm.reasoning_parser import InternS1ReasoningParser
    from interns1_plugin.vllm.tool_parser import InternS1ToolParser

    assert parser_cls.reasoning_parser_cls is InternS1ReasoningParser
    assert parser_cls.tool_parser_cls is InternS1ToolParser


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_non_streaming(case, parser_cls, tokenizer):
    kwargs = {"enable_thinking": case.thinking}
    request = make_request(chat_template_kwargs=kwargs)
    parser = parser_cls(tokenizer, request.tools, chat_template_kwargs=kwargs)
    reasoning, content, calls = parser.parse(case.output, request, enable_auto_tools=True)
    assert reasoning == (case.reasoning or None)
    assert (content or "") == case.content
    got = [(c.name, json.loads(c.arguments)) for c in calls or []]
    assert got == case.tool_calls


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_streaming_matches_non_streaming_for_every_chunking(case, parser_cls, tokenizer):
    kwargs = {"enable_thinking": case.thinking}
    request = make_request(chat_template_kwargs=kwargs)
    whole = parser_cls(tokenizer, request.tools, chat_template_kwargs=kwargs)
    reasoning, content, calls = whole.parse(case.output, request, enable_auto_tools=True)
    expected_calls = [(c.name, c.arguments) for c in calls or []]
    for pieces in chunkings(case.output):
        parser = parser_cls(tokenizer, request.tools, chat_template_kwargs=kwargs)
        got = run_stream(parser, request, pieces)
        assert got == (reasoning or "", content or "", expected_calls), pieces


def test_enable_thinking_none_means_thinking_on(parser_cls, tokenizer):
    request = make_request()
    text = "\nWhy.\n</think>\n\nBecause."
    for kwargs in ({"enable_thinking": None}, {}, None):
        parser = parser_cls(tokenizer, request.tools, chat_template_kwargs=kwargs)
        reasoning, content, _ = parser.parse(text, request, enable_auto_tools=True)
        assert (reasoning, content) == ("Why.", "Because.")


def test_thinking_off_per_request_puts_everything_in_content(parser_cls, tokenizer):
    kwargs = {"enable_thinking": False}
    request = make_request(chat_template_kwargs=kwargs)
    parser = parser_cls(tokenizer, request.tools, chat_template_kwargs=kwargs)
    text = "The answer is 4." + action("log", {"v": 4})
    reasoning, content, calls = parser.parse(text, request, enable_auto_tools=True)
    assert reasoning is None and content == "The answer is 4."
    assert [c.name for c in calls] == ["log"]


def test_adjust_request_keeps_special_tokens_when_tools_are_present(parser_cls, tokenizer):
    request = make_request()
    assert request.skip_special_tokens is True
    parser = parser_cls(tokenizer, request.tools, chat_template_kwargs={})
    adjusted = parser.adjust_request(request)
    assert adjusted.skip_special_tokens is False
    assert adjusted.spaces_between_special_tokens is False


def test_reasoning_end_from_token_ids(parser_cls, tokenizer):
    think, end = tokenizer.convert_tokens_to_ids([formats.THINK_START, formats.THINK_END])
    on = parser_cls(tokenizer, TOOLS, chat_template_kwargs={}).reasoning_parser
    off = parser_cls(tokenizer, TOOLS, chat_template_kwargs={"enable_thinking": False})
    assert not on.is_reasoning_end([1, 2, think])
    assert on.is_reasoning_end([think, 5, end, 6])
    assert on.extract_content_ids([think, 5, end, 6, 7]) == [6, 7]
    assert on.count_reasoning_tokens([5, 5, end, 6]) == 2
    assert off.reasoning_parser.is_reasoning_end([1, 2, think])


# A call held in a reasoning that never closed can only come back as a call from the reasoning
# parser's end-of-stream flush; without a tool parser the non-streaming path keeps it as text.
HELD_TO_THE_END = {"call_inside_truncated_reasoning"}


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.name not in HELD_TO_THE_END], ids=lambda c: c.name
)
def test_reasoning_parser_alone_streams_like_it_parses(case, tokenizer):
    """Without --enable-auto-tool-choice only the reasoning parser runs; the split still agrees."""
    reasoning_only = ParserManager.get_parser(
        reasoning_parser_name=formats.PARSER_NAME, tokenizer=tokenizer
    )
    kwargs = {"enable_thinking": case.thinking}
    request = make_request(chat_template_kwargs=kwargs)
    whole = reasoning_only(tokenizer, request.tools, chat_template_kwargs=kwargs)
    reasoning, content, _ = whole.parse(case.output, request)
    for pieces in chunkings(case.output):
        parser = reasoning_only(tokenizer, request.tools, chat_template_kwargs=kwargs)
        got_reasoning, got_content, _ = run_stream(parser, request, pieces)
        assert (got_reasoning, got_content) == (reasoning or "", content or ""), pieces


FORCED_OUTPUTS = {
    "required": (
        '[{"name": "get_weather", "parameters": {"city": "Paris"}}, '
        '{"name": "get_weather", "parameters": {"city": "Oslo"}}]',
        [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo"})],
    ),
    "named": ('{"city": "Kyoto"}', [("get_weather", {"city": "Kyoto"})]),
}


def _forced_request(kind: str) -> ChatCompletionRequest:
    if kind == "required":
        return make_request(tool_choice="required")
    return make_request(tool_choice={"type": "function", "function": {"name": "get_weather"}})


@pytest.mark.parametrize("kind", sorted(FORCED_OUTPUTS))
def test_forced_tool_choice_is_constrained_and_parsed_streaming_or_not(kind, parser_cls, tokenizer):
    """required / named: vLLM's JSON constraint, decoded by our parser in both modes."""
    text, expected = FORCED_OUTPUTS[kind]
    kwargs = {"enable_thinking": False}
    request = _forced_request(kind)
    adjusted = parser_cls(tokenizer, request.tools, chat_template_kwargs=kwargs).adjust_request(
        request
    )
    assert adjusted.structured_outputs is not None and adjusted.structured_outputs.json
    parser = parser_cls(tokenizer, request.tools, chat_template_kwargs=kwargs)
    _, content, calls = parser.parse(text, request, enable_auto_tools=True)
    assert not content
    assert [(c.name, json.loads(c.arguments)) for c in calls] == expected
    for pieces in chunkings(text):
        parser = parser_cls(tokenizer, request.tools, chat_template_kwargs=kwargs)
        _, streamed_content, streamed = run_stream(parser, request, pieces)
        assert not streamed_content
        assert [(n, json.loads(a)) for n, a in streamed] == expected


def test_forced_output_that_is_not_the_json_stays_content(parser_cls, tokenizer):
    kwargs = {"enable_thinking": False}
    request = _forced_request("required")
    truncated = '[{"name": "get_weather", "parameters": {"ci'
    parser = parser_cls(tokenizer, request.tools, chat_template_kwargs=kwargs)
    _, content, calls = parser.parse(truncated, request, enable_auto_tools=True)
    assert not calls and content == truncated
    parser = parser_cls(tokenizer, request.tools, chat_template_kwargs=kwargs)
    assert run_stream(parser, request, list(truncated)) == ("", truncated, [])
