"""Fuzzing the engine-free `intern-s1` parser: generated outputs, random chunkings, invariants.

Generator, chunkings and the invariant: `interns1_plugin.testing.fuzz_outputs`. Also checks the
fuzzer itself (deterministic, covers every feature, catches a sabotaged split, reads the limits of
a call as the parser does), and pins the open parser defects it found with strict xfails.
`INTERNS1_FUZZ_N` sets the number of outputs, `INTERNS1_FUZZ_SEED` the base seed; the `stress`
test runs a bigger number when selected.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import random
import re
import sys
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interns1_plugin import formats
from interns1_plugin.parsers import InternS1OutputParser, ParsedDelta, ToolCall, parse_output
from interns1_plugin.parsers.call_formats import MAX_JSON_DEPTH
from interns1_plugin.testing import fuzz_outputs as fz
from interns1_plugin.testing.parser_cases import CASES

N = fz.fuzz_count(4000)
BASE_SEED = fz.base_seed()


def calls_of(calls: list[ToolCall]) -> tuple[tuple[str, str], ...]:
    return tuple((call.name, call.arguments) for call in calls)


class CorePath:
    """`parse_output` for whole outputs, `InternS1OutputParser` fed piece by piece for streams."""

    name = "core"

    def parse(self, text: str, thinking: bool) -> fz.Split:
        result = parse_output(text, thinking=thinking)
        return fz.Split(result.reasoning or "", result.content, calls_of(result.tool_calls))

    def stream(self, pieces: list[str], thinking: bool) -> fz.Split:
        parser = InternS1OutputParser(thinking=thinking)
        total = ParsedDelta()
        for piece in pieces:
            total.extend(parser.feed(piece))
        total.extend(parser.finish())
        reasoning = total.reasoning if thinking else ""
        return fz.Split(reasoning, total.content, calls_of(total.tool_calls))


CORE = CorePath()


def test_fuzz_core() -> None:
    fz.fuzz(CORE, base_seed=BASE_SEED, count=N, streams_per_output=3).assert_clean()


@pytest.mark.stress
def test_fuzz_core_stress(stress_n: int) -> None:
    fz.fuzz(CORE, base_seed=BASE_SEED + 100, count=stress_n, streams_per_output=3).assert_clean()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(rng=st.randoms(use_true_random=False), kinds=st.lists(st.sampled_from(fz.CHUNKINGS)))
def test_fuzz_core_hypothesis(rng: random.Random, kinds: list[str]) -> None:
    """The same generator on hypothesis' randomness, so a failure shrinks to a small output."""
    output = fz.generate(0, rng=rng)
    chunkings = [(kind, fz.chunk(output.text, kind, rng)) for kind in kinds[:3]]
    problems = fz.output_problems(CORE, output, output.thinking, chunkings)
    assert not problems, (output.text, output.thinking, problems)


# -- the fuzzer itself -------------------------------------------------------------------------


def test_outputs_are_determined_by_their_seed() -> None:
    for seed in (0, 1, 12345, fz.output_seed(BASE_SEED, 77)):
        assert fz.generate(seed) == fz.generate(seed)
        text = fz.generate(seed).text
        for kind in fz.CHUNKINGS:
            assert fz.chunk(text, kind, random.Random(seed)) == fz.chunk(
                text, kind, random.Random(seed)
            )
    assert fz.generate(1).text != fz.generate(2).text


#: Features that can make a well-formed block text: clean outputs must use them too, planned as
#: text, or the expected split would never test that these blocks come through verbatim.
SPOILERS = {
    fz.OVERFLOWING_FLOAT,
    fz.LONE_SURROGATE,
    fz.DEEP_JSON_AT_LIMIT,
    fz.DEEP_JSON_NEAR_LIMIT,
    fz.TOO_DEEP_JSON,
}


def test_generator_covers_every_feature_and_honours_exclusions() -> None:
    used: set[str] = set()
    in_clean: set[str] = set()
    blocks_as_text = 0
    for output in fz.generate_many(BASE_SEED, 3000):
        assert not output.features & fz.OPEN_DEFECTS, output.seed
        used |= output.features
        if output.expected is not None:
            in_clean |= output.features
            prose = output.expected.reasoning + output.expected.content
            blocks_as_text += formats.TOOL_CALL_START in prose or formats.ACTION_START in prose
    assert used == fz.FEATURES - fz.OPEN_DEFECTS
    assert SPOILERS <= in_clean
    assert blocks_as_text >= 20
    with_defects: set[str] = set()
    for output in fz.generate_many(BASE_SEED, 3000, exclude=frozenset()):
        with_defects |= output.features
    assert with_defects == fz.FEATURES


def test_chunkings_rebuild_the_text_and_cut_where_they_say() -> None:
    rng = random.Random(0)
    for output in fz.generate_many(BASE_SEED, 200):
        text = output.text
        spans = [m.span() for m in MARKER_PATTERN.finditer(text)]
        for kind in fz.CHUNKINGS:
            pieces = fz.chunk(text, kind, rng)
            assert "".join(pieces) == text, kind
            bounds = set(itertools.accumulate(map(len, pieces), initial=0))
            if kind == "chars":
                assert all(len(p) == 1 for p in pieces) or text == ""
            if kind == "markers":
                assert all(a in bounds and b in bounds for a, b in spans)
            if kind == "straddle":
                assert all(any(a < cut < b for cut in bounds) for a, b in spans)
            if kind in ("tokens", "markers"):
                assert not any(a < cut < b for a, b in spans for cut in bounds)


MARKER_PATTERN = re.compile("|".join(map(re.escape, sorted(fz.MARKERS, key=len, reverse=True))))


def _drop_last_visible(text: str) -> str:
    body = text.rstrip(fz.WHITESPACE)
    return body[:-1] + text[len(body) :] if body else text


SABOTAGE: dict[str, Callable[[fz.Split], fz.Split]] = {
    "a content character dropped": lambda s: dataclasses.replace(
        s, content=_drop_last_visible(s.content)
    ),
    "a reasoning character dropped": lambda s: dataclasses.replace(
        s, reasoning=_drop_last_visible(s.reasoning)
    ),
    "content repeated": lambda s: dataclasses.replace(s, content=s.content * 2),
    "content reversed": lambda s: dataclasses.replace(s, content=s.content[::-1]),
    "reasoning moved to content": lambda s: dataclasses.replace(
        s, reasoning="", content=s.reasoning + s.content
    ),
    "last call dropped": lambda s: dataclasses.replace(s, calls=s.calls[:-1]),
    "calls reordered": lambda s: dataclasses.replace(s, calls=s.calls[::-1]),
    "an argument changed": lambda s: dataclasses.replace(
        s, calls=tuple((n, a.replace("1", "2")) for n, a in s.calls)
    ),
    "end tag left in content": lambda s: dataclasses.replace(
        s, content=formats.THINK_END + s.content
    ),
    "whitespace added": lambda s: dataclasses.replace(s, content=s.content + "\t" * 50),
}


def _visible_parts(split: fz.Split) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    return fz.visible(split.reasoning), fz.visible(split.content), split.calls


@pytest.mark.parametrize("sabotage", sorted(SABOTAGE))
def test_the_invariant_catches_a_sabotaged_split(sabotage: str) -> None:
    """Guards the checker: each way of losing, inventing or moving text must be reported."""
    applicable = 0
    for output in fz.generate_many(BASE_SEED + 7, 300):
        split = CORE.parse(output.text, output.thinking)
        broken = SABOTAGE[sabotage](split)
        if _visible_parts(broken) == _visible_parts(split) and sabotage != "whitespace added":
            continue  # nothing visible changed (e.g. whitespace-only reasoning moved)
        applicable += 1
        assert fz.split_problems(output, output.thinking, broken), (sabotage, output.seed)
    assert applicable > 50


def test_the_invariant_accepts_the_documented_splits() -> None:
    for case in CASES:
        calls = tuple(
            (name, json.dumps(args, ensure_ascii=False)) for name, args in case.tool_calls
        )
        split = fz.Split(case.reasoning or "", case.content, calls)
        assert fz.split_problems(case.output, case.thinking, split) == [], case.name


# -- defects the fuzzer found, fixed: unrepresentable JSON is text, the same at any depth --------

OVERFLOW = '<tool_call>{"name": "f", "arguments": {"x": 1e400}}</tool_call>'
LONE_SURROGATE = '<tool_call>{"name": "f", "arguments": {"x": "\\ud800"}}</tool_call>'


@pytest.mark.parametrize("text", [OVERFLOW, LONE_SURROGATE], ids=["overflow", "lone-surrogate"])
def test_unrepresentable_arguments_stay_text(text: str) -> None:
    """`1e400` would come out as Infinity and `\\ud800` as unencodable: the block stays text."""
    split = CORE.parse(text, False)
    assert fz.split_problems(text, False, split) == []
    assert not split.calls and split.content == text


def _at_depth(frames: int, action: Callable[[], fz.Split]) -> fz.Split:
    return action() if frames == 0 else _at_depth(frames - 1, action)


def _deep_call(depth: int) -> str:
    arguments = '{"a": ' + "[" * depth + "]" * depth + "}"
    return f'<tool_call>{{"name": "f", "arguments": {arguments}}}</tool_call>'


@pytest.mark.parametrize("depth", [500, 598, 800])
def test_deep_arguments_decode_the_same_at_any_stack_depth(depth: int) -> None:
    text = _deep_call(depth)
    shallow = CORE.parse(text, False)
    assert shallow == _at_depth(300, lambda: CORE.parse(text, False))
    assert bool(shallow.calls) is (depth + 2 <= MAX_JSON_DEPTH)  # + arguments + the call


def _qwen(payload: str) -> str:
    return f"{formats.TOOL_CALL_START}{payload}{formats.TOOL_CALL_END}"


def _nested(depth: int, *, chain: bool = False) -> str:
    return '{"d":' * depth + "0" + "}" * depth if chain else "[" * depth + "]" * depth


def _call(arguments: str, *, key: str = "arguments", extra: str = "") -> str:
    """A call payload around the JSON text of its arguments (and `extra` members first)."""
    return f'{{"name": "f", {extra}"{key}": {arguments}}}'


def _in_object(value: str) -> str:
    return f'{{"a": {value}}}'


#: Levels left for a value inside the arguments: the call and arguments objects count too.
ROOM = MAX_JSON_DEPTH - 2
BOUNDS: dict[str, tuple[str, bool]] = {
    "object at the limit": (_call(_in_object(_nested(ROOM))), True),
    "object past the limit": (_call(_in_object(_nested(ROOM + 1))), False),
    "chain at the limit": (_call(_in_object(_nested(ROOM, chain=True)), key="parameters"), True),
    "chain past the limit": (
        _call(_in_object(_nested(ROOM + 1, chain=True)), key="parameters"),
        False,
    ),
    # Unwrapped, string arguments are measured alone: one level more room.
    "string at the limit": (_call(json.dumps(_in_object(_nested(ROOM + 1)))), True),
    "string past the limit": (_call(json.dumps(_in_object(_nested(ROOM + 2)))), False),
    # The whole payload is measured too: 1 (the call) + MAX_JSON_DEPTH levels in `id`.
    "deep outside the arguments": (_call("{}", extra=f'"id": {_nested(MAX_JSON_DEPTH)}, '), False),
    "brackets in strings": (_call(_in_object('"' + "[{" * 700 + '"')), True),
    "largest float": (_call('{"x": 1.7976931348623157e308}'), True),
    "float past the largest": (_call('{"x": 1.8e308}'), False),
    "underflow": (_call('{"x": 1e-400}'), True),
    "overflow outside the arguments": (_call("{}", extra='"id": 1e400, '), True),
    "overflow in string arguments": (_call(json.dumps('{"x": -1e400}')), False),
    "lone surrogate in the name": ('{"name": "f\\udc00", "arguments": {}}', False),
    "lone surrogate in a key": (_call('{"\\ud800": 1}'), False),
    "surrogate pair": (_call('{"x": "\\ud83d\\ude80"}'), True),
    "reversed pair": (_call('{"x": "\\ude80\\ud83d"}'), False),
    "lone surrogate outside": (_call("{}", extra='"id": "\\ud800", '), True),
}


@pytest.mark.parametrize("case", sorted(BOUNDS))
def test_the_checker_draws_the_lines_where_the_parser_does(case: str) -> None:
    """The checker's own reading of a call's limits, against the parser's, case by case.

    A checker that took a block for a call the parser keeps as text would pass a noisy output
    all the same (nothing is lost), so its verdict is checked directly as well.
    """
    payload, is_call = BOUNDS[case]
    assert (fz._decoded_call(payload) is not None) is is_call
    text = _qwen(payload)
    problems = fz.output_problems(CORE, text, False, fz.all_chunkings(text))
    assert problems == []
    split = CORE.parse(text, False)
    assert bool(split.calls) is is_call
    if not is_call:
        assert split.content == text
        # A parser without the limits would have made it a call: the checker must object.
        lenient = fz.Split("", "", (_lenient_call(payload),))
        assert fz.split_problems(text, False, lenient), case


def _lenient_call(payload: str) -> tuple[str, str]:
    """The call a decoder with no depth bound, no overflow and no UTF-8 check would emit."""
    obj = json.loads(payload)
    args = obj.get("parameters", obj.get("arguments", {}))
    args = json.loads(args) if isinstance(args, str) else args
    return obj["name"], json.dumps(args, ensure_ascii=False)


DEEP = {fz.DEEP_JSON, fz.DEEP_JSON_AT_LIMIT, fz.DEEP_JSON_NEAR_LIMIT, fz.TOO_DEEP_JSON}


def test_deep_outputs_split_the_same_deeper_in_the_stack() -> None:
    """Generated deep outputs, whole and streamed 250 frames down: the same split as up here.

    250 frames is more than any engine path puts between a request and the parser (under 60
    measured for vLLM and LMDeploy), so the verdict on deep JSON must not move.
    """
    checked = 0
    for output in fz.generate_many(BASE_SEED + 300, 1500):
        if not output.features & DEEP:
            continue
        checked += 1
        text, thinking = output.text, output.thinking
        pieces = fz.chunk(text, "random", random.Random(output.seed))
        whole = CORE.parse(text, thinking)
        assert _at_depth(250, functools.partial(CORE.parse, text, thinking)) == whole, output.seed
        streamed = _at_depth(250, functools.partial(CORE.stream, pieces, thinking))
        assert streamed == whole, output.seed
    assert checked >= 20


def _headroom_frames(room: int) -> int:
    """Frames to add so that only `room` levels of recursion are left for the parser."""
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    return sys.getrecursionlimit() - depth - room


def test_a_call_at_the_depth_limit_decodes_with_little_stack_left() -> None:
    """Before Python 3.12 the JSON codec's recursion shares the frame limit with the caller;
    a deep caller must still get the call (the codec is retried on a fresh thread)."""
    text = _deep_call(MAX_JSON_DEPTH - 2)
    assert CORE.parse(text, False).calls
    frames = _headroom_frames(MAX_JSON_DEPTH // 2)
    assert _at_depth(frames, lambda: CORE.parse(text, False)).calls


#: One strict xfail per open defect; with none open, one skip that says so.
OPEN_DEFECT_PARAMS = [
    pytest.param(
        feature,
        marks=pytest.mark.xfail(strict=True, reason=f"open parser defect: {feature}"),
    )
    for feature in sorted(fz.OPEN_DEFECTS)
] or [
    pytest.param(
        "none",
        marks=pytest.mark.skip(reason="no open parser defect: every fuzz run uses every feature"),
    )
]


@pytest.mark.parametrize("feature", OPEN_DEFECT_PARAMS)
def test_fuzz_core_with_an_open_defect(feature: str) -> None:
    """The generator's feature for each open defect, back in: fails until the defect is fixed.

    When one starts passing, remove its feature from `fz.OPEN_DEFECTS` so every fuzz run uses
    it. (Stack depth has no such run: the checker decodes at its own depth; see the tests above.)
    """
    run = fz.fuzz(
        CORE,
        base_seed=BASE_SEED + 200,
        count=1000,
        exclude=fz.OPEN_DEFECTS - {feature},
        max_failures=1,
        minimize_first=False,
    )
    run.assert_clean()
