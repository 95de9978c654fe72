"""The engine-agnostic `intern-s1` parser core: every case, every chunking, and a fuzz."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interns1_plugin import formats
from interns1_plugin.parsers import (
    InternS1OutputParser,
    ParsedDelta,
    ReasoningSplitter,
    ToolCallExtractor,
    decode_call,
    parse_output,
)
from interns1_plugin.testing.parser_cases import CASES, CASES_BY_NAME, action, chunkings


def stream(text_pieces: list[str], *, thinking: bool, parse_tools: bool = True) -> ParsedDelta:
    parser = InternS1OutputParser(thinking=thinking, parse_tools=parse_tools)
    total = ParsedDelta()
    for piece in text_pieces:
        total.extend(parser.feed(piece))
    total.extend(parser.finish())
    return total


def calls_as_data(calls) -> list[tuple[str, dict]]:
    return [(call.name, json.loads(call.arguments)) for call in calls]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_non_streaming_split(case):
    result = parse_output(case.output, thinking=case.thinking)
    assert result.reasoning == case.reasoning
    assert result.content == case.content
    assert calls_as_data(result.tool_calls) == case.tool_calls


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_streaming_equals_non_streaming_for_every_chunking(case):
    whole = parse_output(case.output, thinking=case.thinking)
    for pieces in chunkings(case.output):
        got = stream(pieces, thinking=case.thinking)
        assert (got.reasoning if case.thinking else None) == whole.reasoning
        assert got.content == whole.content
        # Same text, byte for byte, including unicode and key order.
        assert got.tool_calls == whole.tool_calls


def test_arguments_keep_key_order_and_unicode():
    args = {"z": 1, "a": "é☕", "m": {"y": [], "b": {}}}
    result = parse_output("\nr\n</think>\n\n" + action("f", args), thinking=True)
    assert result.tool_calls[0].arguments == json.dumps(args, ensure_ascii=False)


def test_several_calls_in_one_delta_come_out_in_order():
    text = "".join(action(f"t{i}", {"i": i}) for i in range(5))
    parser = InternS1OutputParser(thinking=False)
    step = parser.feed(text)
    assert [c.name for c in step.tool_calls] == [f"t{i}" for i in range(5)]


def test_call_is_emitted_when_its_end_marker_arrives():
    parser = InternS1OutputParser(thinking=False)
    first = parser.feed("Checking." + action("f", {"a": 1})[:-3])
    assert first.tool_calls == [] and first.content == "Checking."
    second = parser.feed(formats.ACTION_END[-3:])
    assert [c.name for c in second.tool_calls] == ["f"]


def test_reasoning_streams_before_the_end_tag():
    parser = InternS1OutputParser(thinking=True)
    assert parser.feed("\nstep one, ").reasoning == "step one, "
    assert parser.feed("step two").reasoning == "step two"
    assert not parser.reasoning_ended
    step = parser.feed("</think>\n\nanswer")
    assert parser.reasoning_ended and step.content == "answer"


def test_parse_tools_off_leaves_blocks_as_text():
    case = CASES_BY_NAME["call_inside_reasoning"]
    result = parse_output(case.output, thinking=True, parse_tools=False)
    assert result.tool_calls == []
    assert formats.ACTION_START in result.reasoning


def test_splitter_can_hand_held_calls_on_as_content():
    case = CASES_BY_NAME["call_inside_truncated_reasoning"]
    splitter = ReasoningSplitter(thinking=True)
    splitter.feed(case.output)
    tail = splitter.finish(held_calls_as_content=True)
    content, calls = ToolCallExtractor().feed(tail.content), None
    assert [c.name for c in content.tool_calls] == ["lookup"]
    assert calls is None


@pytest.mark.parametrize(
    "payload",
    ['{"name": ""}', '{"name": 3}', "[1]", '{"name": "f", "parameters": [1]}', '{"name": "f"', ""],
)
def test_decode_call_rejects_what_is_not_a_call(payload):
    assert decode_call(payload) is None


def test_deep_json_does_not_raise():
    deep = "[" * 100_000 + "]" * 100_000
    text = f'{formats.ACTION_START}{formats.PLUGIN}{{"name": "f", "parameters": {deep}}}'
    result = parse_output(text + formats.ACTION_END, thinking=False)
    assert result.tool_calls == [] and deep in result.content


def test_core_imports_no_engine():
    code = (
        "import sys, interns1_plugin.parsers, interns1_plugin.formats, interns1_plugin.thinking;"
        "bad=[m for m in ('vllm','lmdeploy','torch') if m in sys.modules]; print(bad); "
        "sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


# -- fuzz: random mixtures of text, markers and JSON never raise and lose nothing -----------------

_FRAGMENTS = st.sampled_from(
    [
        formats.THINK_START,
        formats.THINK_END,
        formats.ACTION_START,
        formats.ACTION_END,
        formats.PLUGIN,
        " ",
        "\n",
        formats.TOOL_CALL_START,
        formats.TOOL_CALL_END,
        '{"name": "f", "parameters": {"a": 1}}',
        '{"name": "g", "arguments": {}}',
        '{"name": "h", "parameters": {"x": [1, {"y": "☕"}]',
        "{",
        "}",
        '"',
        "<",
        "<|",
        "</",
        "text",
    ]
)
_PIECES = st.lists(st.one_of(_FRAGMENTS, st.text(max_size=8)), max_size=30)


_CALL_PAYLOADS = {
    ("f", '{"a": 1}'): '{"name": "f", "parameters": {"a": 1}}',
    ("g", "{}"): '{"name": "g", "arguments": {}}',
}
_MARKERS = (
    formats.THINK_START,
    formats.THINK_END,
    formats.ACTION_START,
    formats.ACTION_END,
    formats.PLUGIN,
    formats.TOOL_CALL_START,
    formats.TOOL_CALL_END,
)


def _visible(text: str) -> Counter:
    for marker in _MARKERS:
        text = text.replace(marker, "")
    return Counter(ch for ch in text if not ch.isspace())


def _assert_nothing_lost(output: str, result) -> None:
    """Non-whitespace characters of the output (markers aside) all land in some channel."""
    landed = _visible((result.reasoning or "") + result.content)
    for call in result.tool_calls:
        payload = _CALL_PAYLOADS.get((call.name, call.arguments))
        if payload is None:  # a call hypothesis assembled from random text: count its parts
            payload = call.name + call.arguments
        landed += _visible(payload)
    expected = _visible(output)
    if all((call.name, call.arguments) in _CALL_PAYLOADS for call in result.tool_calls):
        assert landed == expected
    else:
        # A re-serialised call may differ in JSON punctuation and its key names only.
        allowed = set('{}[]":,') | set("name" + "".join(formats.ARGUMENT_KEYS))
        assert set(expected - landed) <= allowed


@settings(max_examples=400, deadline=None)
@given(pieces=_PIECES, thinking=st.booleans(), seed=st.integers(0, 10_000))
def test_fuzz_never_raises_and_is_chunking_invariant(pieces, thinking, seed):
    output = "".join(pieces)
    whole = parse_output(output, thinking=thinking)
    _assert_nothing_lost(output, whole)
    for chunks in chunkings(output, seed=seed, random_rounds=2):
        got = stream(chunks, thinking=thinking)
        assert got.content == whole.content
        assert got.tool_calls == whole.tool_calls
        assert (got.reasoning if thinking else None) == whole.reasoning


def test_decode_forced_calls_reads_the_engines_tool_choice_json():
    from interns1_plugin.parsers.call_formats import decode_forced_calls

    listed = decode_forced_calls('[{"name": "f", "parameters": {"a": 1}}, {"name": "g"}]')
    assert [(c.name, c.arguments) for c in listed] == [("f", '{"a": 1}'), ("g", "{}")]
    assert decode_forced_calls('{"x": "é"}', "h")[0].arguments == '{"x": "é"}'
    for bad in ("[]", "[1]", '[{"name": "f"', '{"name": "f"}', "NaN"):
        assert decode_forced_calls(bad) is None
    assert decode_forced_calls("[1]", "h") is None
