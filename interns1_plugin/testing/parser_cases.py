"""Model outputs and the split the `intern-s1` parsers must give, shared by every engine's tests.

Each case names one behaviour (or one known defect of an engine's built-in parsers). Expected
reasoning/content are exact strings; arguments are compared as parsed JSON and as text.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from interns1_plugin import formats as f

A_START, A_END, PLUGIN = f.ACTION_START, f.ACTION_END, f.PLUGIN
T_START, T_END = f.TOOL_CALL_START, f.TOOL_CALL_END


def action(name: str, args: Any, *, key: str = "parameters", sep: str = "") -> str:
    """An action-format call as the model writes it (`sep` goes between the two markers)."""
    payload = json.dumps({"name": name, key: args}, ensure_ascii=False)
    return f"{A_START}{sep}{PLUGIN}\n{payload}\n{A_END}"


def qwen_call(name: str, args: Any) -> str:
    payload = json.dumps({"name": name, "arguments": args}, ensure_ascii=False)
    return f"{T_START}\n{payload}\n{T_END}"


@dataclass(frozen=True)
class ParserCase:
    name: str
    output: str
    thinking: bool
    reasoning: str | None
    content: str
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


WEATHER = {"city": "Tokyo", "unit": "celsius"}
UNICODE_ARGS = {"molecule": "咖啡因 — caffeine ☕", "note": 'naïve "quoted" \\ slash', "n": 1.5}
NESTED_ARGS = {"query": {"filters": [{"k": "mp", "range": [100, 200]}], "limit": 3}, "z": None}

CASES: list[ParserCase] = [
    ParserCase(
        "answer_after_reasoning",
        "\nThe user asks for a boiling point.\n</think>\n\nWater boils at 100 °C at sea level.",
        True,
        "The user asks for a boiling point.",
        "Water boils at 100 °C at sea level.",
    ),
    ParserCase(
        "explicit_think_tag", "<think>\nLet me see.\n</think>\n\nYes.", True, "Let me see.", "Yes."
    ),
    ParserCase(
        "only_one_newline_trimmed",
        "\n\nTwo blank lines.\n\n</think>\n\nOk.",
        True,
        "\nTwo blank lines.\n",
        "Ok.",
    ),
    ParserCase("thinking_off", "Caffeine is C8H10N4O2.", False, None, "Caffeine is C8H10N4O2."),
    ParserCase(
        "thinking_off_keeps_think_tags",
        "<think>not reasoning</think> plain",
        False,
        None,
        "<think>not reasoning</think> plain",
    ),
    ParserCase("truncated_reasoning", "\nStill thinking about", True, "Still thinking about", ""),
    ParserCase(
        "one_call_with_thought",
        "\nI need the structure.\n</think>\n\nLooking it up."
        + action("lookup", {"name": "aspirin"}),
        True,
        "I need the structure.",
        "Looking it up.",
        [("lookup", {"name": "aspirin"})],
    ),
    ParserCase(
        "two_calls",
        "\nCompare both.\n</think>\n\n"
        + action("melting_point", {"compound": "NaCl"})
        + "\n"
        + action("melting_point", {"compound": "KCl"}),
        True,
        "Compare both.",
        "",
        [("melting_point", {"compound": "NaCl"}), ("melting_point", {"compound": "KCl"})],
    ),
    ParserCase(
        "three_calls_with_text_between",
        "\nPlan.\n</think>\n\nFirst."
        + action("a", {"x": 1})
        + "\nThen."
        + action("b", {})
        + "Last."
        + action("c", {"y": [1, 2]})
        + "\nDone.",
        True,
        "Plan.",
        "First.\nThen.Last.\nDone.",
        [("a", {"x": 1}), ("b", {}), ("c", {"y": [1, 2]})],
    ),
    ParserCase(
        "space_between_markers",
        "\nr\n</think>\n\n" + action("get_weather", WEATHER, sep=" "),
        True,
        "r",
        "",
        [("get_weather", WEATHER)],
    ),
    ParserCase(
        "arguments_key",
        "\nr\n</think>\n\n" + action("get_weather", WEATHER, key="arguments"),
        True,
        "r",
        "",
        [("get_weather", WEATHER)],
    ),
    ParserCase(
        "arguments_as_json_string",
        "\nr\n</think>\n\n"
        + f'{A_START}{PLUGIN}\n{{"name": "f", "parameters": "{{\\"a\\": 1}}"}}\n{A_END}',
        True,
        "r",
        "",
        [("f", {"a": 1})],
    ),
    ParserCase(
        "empty_arguments_kept",
        "\nr\n</think>\n\n" + action("now", {}),
        True,
        "r",
        "",
        [("now", {})],
    ),
    ParserCase(
        "missing_arguments_is_empty_object",
        "\nr\n</think>\n\n" + f'{A_START}{PLUGIN}\n{{"name": "now"}}\n{A_END}',
        True,
        "r",
        "",
        [("now", {})],
    ),
    ParserCase(
        "unicode_and_nesting",
        "\nr\n</think>\n\n" + action("search", UNICODE_ARGS) + action("query", NESTED_ARGS),
        True,
        "r",
        "",
        [("search", UNICODE_ARGS), ("query", NESTED_ARGS)],
    ),
    ParserCase(
        "unknown_tool_is_still_returned",
        "\nr\n</think>\n\n" + action("not_in_request", {"q": 1}),
        True,
        "r",
        "",
        [("not_in_request", {"q": 1})],
    ),
    ParserCase(
        "call_inside_reasoning",
        "\nI will look it up first.\n"
        + action("lookup", {"name": "caffeine"})
        + "\nGot it.\n</think>\n\nCaffeine.",
        True,
        "I will look it up first.\n\nGot it.",
        "Caffeine.",
        [("lookup", {"name": "caffeine"})],
    ),
    ParserCase(
        "calls_inside_and_after_reasoning",
        "\nA\n" + action("one", {}) + "\n</think>\n\nB" + action("two", {"k": "v"}),
        True,
        "A\n",
        "B",
        [("one", {}), ("two", {"k": "v"})],
    ),
    ParserCase(
        "call_inside_reasoning_then_no_content",
        "\nLook it up. " + action("lookup", {"q": "y"}) + "\n</think>\n\n",
        True,
        "Look it up. ",
        "",
        [("lookup", {"q": "y"})],
    ),
    ParserCase(
        "call_inside_truncated_reasoning",
        "\nThinking " + action("lookup", {"q": "x"}),
        True,
        "Thinking ",
        "",
        [("lookup", {"q": "x"})],
    ),
    ParserCase(
        "truncated_call_is_text",
        "\nTry.\n</think>\n\nCalling now."
        + f'{A_START}{PLUGIN}\n{{"name": "lookup", "parameters": {{"name": ',
        True,
        "Try.",
        f'Calling now.{A_START}{PLUGIN}\n{{"name": "lookup", "parameters": {{"name":',
    ),
    ParserCase(
        "malformed_call_is_text",
        "\nr\n</think>\n\nX" + f"{A_START}{PLUGIN}\n{{name: lookup}}\n{A_END}" + "Y",
        True,
        "r",
        f"X{A_START}{PLUGIN}\n{{name: lookup}}\n{A_END}Y",
    ),
    ParserCase(
        "stop_string_ate_end_marker",
        "\nr\n</think>\n\nok" + f'{A_START}{PLUGIN}\n{{"name": "f", "parameters": {{"a": 1}}}}\n',
        True,
        "r",
        "ok",
        [("f", {"a": 1})],
    ),
    ParserCase(
        "interpreter_block_is_text",
        "\nr\n</think>\n\n" + f"{A_START}<|interpreter|>\nprint(1)\n{A_END}",
        True,
        "r",
        f"{A_START}<|interpreter|>\nprint(1)\n{A_END}",
    ),
    ParserCase(
        "pro_qwen_format",
        "\nUse the tool.\n</think>\n\n" + qwen_call("fft_peak", {"window": 1024}),
        True,
        "Use the tool.",
        "",
        [("fft_peak", {"window": 1024})],
    ),
    ParserCase(
        "pro_two_calls_and_text",
        "\nr\n</think>\n\nChecking."
        + qwen_call("a", {"x": "é"})
        + "\n"
        + qwen_call("b", {"y": True}),
        True,
        "r",
        "Checking.",
        [("a", {"x": "é"}), ("b", {"y": True})],
    ),
    ParserCase(
        "tool_call_tag_in_prose_is_text",
        "\nr\n</think>\n\nUse the <tool_call> tag to call tools.",
        True,
        "r",
        "Use the <tool_call> tag to call tools.",
    ),
    ParserCase(
        "thinking_off_with_call",
        "Let me check." + action("get_weather", WEATHER),
        False,
        None,
        "Let me check.",
        [("get_weather", WEATHER)],
    ),
    ParserCase(
        "nan_arguments_are_not_a_call",
        "\nr\n</think>\n\n"
        + f'{A_START}{PLUGIN}\n{{"name": "f", "parameters": {{"x": NaN}}}}\n{A_END}',
        True,
        "r",
        f'{A_START}{PLUGIN}\n{{"name": "f", "parameters": {{"x": NaN}}}}\n{A_END}',
    ),
    ParserCase(
        "partial_marker_at_end_is_text",
        "\nr\n</think>\n\nanswer <|action_st",
        True,
        "r",
        "answer <|action_st",
    ),
]

CASES_BY_NAME = {case.name: case for case in CASES}


def chunkings(text: str, *, seed: int = 0, random_rounds: int = 5) -> Iterator[list[str]]:
    """Whole text in one delta, one character per delta, then random groupings."""
    yield [text]
    yield list(text)
    rng = random.Random(seed)
    for _ in range(random_rounds):
        pieces, pos = [], 0
        while pos < len(text):
            size = rng.randint(1, 12)
            pieces.append(text[pos : pos + size])
            pos += size
        yield pieces
