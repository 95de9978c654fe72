"""The checks a parser split must pass: valid calls, each from its own block, nothing lost.

The invariant (`split_problems`), for an output O parsed into reasoning R, content C and calls K,
counting every character except the four whitespace characters the parsers may trim (" \\t\\r\\n"):

* every call has a non-empty name and arguments that are one strict JSON object (no NaN or
  Infinity, no number too large for a float, nested at most `MAX_JSON_DEPTH` levels) and
  encodable as UTF-8, both valid on the wire;
* each call k_i has a source block b_i in O, the b_i disjoint and in O's order: a start marker
  (with the `<|plugin|>` header for the action format), then a payload that decodes, by the
  stdlib's strict JSON, to k_i's name and arguments, then the format's end marker, or nothing
  when the payload runs to `</think>` or to the end of O. A payload is a call only if its JSON
  nests at most `MAX_JSON_DEPTH` levels (the call object and the arguments object count;
  arguments given as a JSON string are measured alone once unwrapped), and its name and
  arguments have a faithful JSON rendering: no number that overflows a float (`1e400`), no
  string with a lone surrogate (`"\\ud800"`). Any other block is text, kept verbatim;
* nothing is lost, invented or reordered: with thinking on and a `</think>` in O, R accounts for
  exactly the characters before the first `</think>`, C for exactly those after it, call blocks
  removed, and the only other characters consumed are that `</think>` and a leading `<think>`
  (when O starts with one); with no `</think>`, C is empty and R accounts for all of O; with
  thinking off, R is empty and C accounts for all of O. "Accounts for" means the same characters
  in the same order (a difference is reported as the characters lost and added);
* whitespace is only ever dropped, never added;
* outputs built only of well-formed parts also carry the expected split (`Expected`), and must
  give exactly those calls and that reasoning and content text.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from interns1_plugin import formats as f
from interns1_plugin.parsers.call_formats import MAX_JSON_DEPTH
from interns1_plugin.testing.fuzz_call_json import (
    decoded_call,
    nesting,
    reject_constant,
    representable,
)
from interns1_plugin.testing.fuzz_generate import FuzzOutput
from interns1_plugin.testing.fuzz_markers import WHITESPACE, visible


@dataclass(frozen=True, slots=True)
class Split:
    """What a client gets: reasoning and content text ("" when absent), calls as sent."""

    reasoning: str
    content: str
    calls: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class _Source:
    """A region of the output that reads as a call block, and the call it holds."""

    start: int
    end: int
    call: tuple[str, Any]
    #: Ends where a `</think>` starts, with no end marker: valid only for the reasoning's own end.
    cut_by_think_end: bool = False


_FORMATS = ((f.ACTION_START, f.PLUGIN, f.ACTION_END), (f.TOOL_CALL_START, None, f.TOOL_CALL_END))


def _sources(text: str) -> list[_Source]:
    """Every region of `text` that reads as a call block, with the call it holds."""
    found: list[_Source] = []
    for start_marker, header, end_marker in _FORMATS:
        start = text.find(start_marker)
        while start >= 0:
            pos = _skip(text, start + len(start_marker))
            if header is None or text.startswith(header, pos):
                payload_start = pos if header is None else pos + len(header)
                ends = {(len(text), len(text), False)}
                end = text.find(end_marker, payload_start)
                if end >= 0:
                    ends.add((end, end + len(end_marker), False))
                think_end = text.find(f.THINK_END, payload_start)
                if think_end >= 0:
                    ends.add((think_end, think_end, True))
                for payload_end, region_end, cut in sorted(ends):
                    call = decoded_call(text[payload_start:payload_end])
                    if call is not None:
                        found.append(_Source(start, region_end, call, cut))
            start = text.find(start_marker, start + 1)
    found.sort(key=lambda s: (s.start, s.end))
    return found


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in WHITESPACE:
        pos += 1
    return pos


def _call_problems(calls: Sequence[tuple[str, str]]) -> tuple[list[str], list[tuple[str, Any]]]:
    problems, decoded = [], []
    for name, arguments in calls:
        try:
            name.encode("utf-8")
            arguments.encode("utf-8")
        except UnicodeEncodeError as exc:
            problems.append(f"invalid-call: not encodable as UTF-8 ({exc}): {name!a} {arguments!a}")
            continue
        if nesting(arguments) > MAX_JSON_DEPTH:
            problems.append(f"invalid-call: arguments nest over {MAX_JSON_DEPTH}: {arguments!a}")
            continue
        try:
            args = json.loads(arguments, parse_constant=reject_constant)
        except (ValueError, RecursionError) as exc:
            problems.append(f"invalid-call: arguments are not strict JSON ({exc}): {arguments!a}")
            continue
        if not representable(args):
            problems.append(
                f"invalid-call: arguments hold an infinite number or a lone surrogate: "
                f"{arguments!a}"
            )
            continue
        if not name or not isinstance(args, dict):
            problems.append(f"invalid-call: {name!a} with {arguments!a}")
            continue
        decoded.append((name, args))
    return problems, decoded


def _account(text: str, thinking: bool, split: Split, sources: Sequence[_Source]) -> str | None:
    """None when the characters of `text` outside `sources` are exactly R's and C's."""
    think_end = text.find(f.THINK_END) if thinking else -1
    if think_end >= 0 and any(
        s.start < think_end + len(f.THINK_END) and s.end > think_end for s in sources
    ):
        return "a call block spans the end of the reasoning"
    if any(s.cut_by_think_end and s.end != think_end for s in sources):
        return "a call block ends at a </think> that does not end the reasoning"
    kept, pos = [], 0
    for source in sources:
        kept.append((pos, source.start))
        pos = source.end
    kept.append((pos, len(text)))

    def outside_blocks(lo: int, hi: int) -> str:
        return "".join(text[max(a, lo) : min(b, hi)] for a, b in kept if min(b, hi) > max(a, lo))

    if not thinking:
        reasoning_side, content_side = "", outside_blocks(0, len(text))
    elif think_end < 0:
        reasoning_side, content_side = outside_blocks(0, len(text)), ""
    else:
        reasoning_side = outside_blocks(0, think_end)
        content_side = outside_blocks(think_end + len(f.THINK_END), len(text))
    if thinking and text.lstrip(WHITESPACE).startswith(f.THINK_START):
        reasoning_side = reasoning_side.replace(f.THINK_START, "", 1)
    for channel, got, side in (
        ("reasoning", split.reasoning, reasoning_side),
        ("content", split.content, content_side),
    ):
        want, have = visible(side), visible(got)
        if have == want:
            continue
        lost, extra = Counter(want) - Counter(have), Counter(have) - Counter(want)
        if lost or extra:
            lost_text, extra_text = "".join(lost.elements()), "".join(extra.elements())
            return f"{channel}: lost {lost_text!a}, extra {extra_text!a}"
        return f"{channel}: characters reordered: {have!a} from {want!a}"
    spaces = Counter(ch for ch in split.reasoning + split.content if ch in WHITESPACE)
    if spaces - Counter(ch for ch in reasoning_side + content_side if ch in WHITESPACE):
        return "whitespace added"
    return None


def _assignments(
    calls: Sequence[tuple[str, Any]], sources: Sequence[_Source], budget: list[int]
) -> Iterator[list[_Source]]:
    """Disjoint, ordered choices of one source block per call (bounded search)."""

    def walk(index: int, after: int, chosen: list[_Source]) -> Iterator[list[_Source]]:
        if index == len(calls):
            yield list(chosen)
            return
        for source in sources:
            if budget[0] <= 0:
                return
            if source.start >= after and source.call == calls[index]:
                budget[0] -= 1
                chosen.append(source)
                yield from walk(index + 1, source.end, chosen)
                chosen.pop()

    yield from walk(0, 0, [])


def split_problems(output: FuzzOutput | str, thinking: bool, split: Split) -> list[str]:
    """What is wrong with `split` as the parse of `output` (see the module docstring)."""
    text = output if isinstance(output, str) else output.text
    expected = None if isinstance(output, str) else output.expected
    problems, calls = _call_problems(split.calls)
    if problems:
        return problems
    if not thinking and split.reasoning:
        return ["channels: reasoning with thinking off"]
    if expected is not None:
        if visible(split.reasoning) != expected.reasoning:
            problems.append(f"expected: reasoning {split.reasoning!a}, want {expected.reasoning!a}")
        if visible(split.content) != expected.content:
            problems.append(f"expected: content {split.content!a}, want {expected.content!a}")
        if tuple(calls) != expected.calls:
            problems.append(f"expected: calls {split.calls!a}, want {expected.calls!a}")
    sources = _sources(text)
    first_reason = "a call has no source block"
    for chosen in _assignments(calls, sources, [20_000]):
        reason = _account(text, thinking, split, chosen)
        if reason is None:
            return problems
        first_reason = reason
    return [*problems, f"lost: {first_reason}"]
