"""Seeded random model outputs, random ways to stream them, and the checks a parser split must pass.

The hand-written cases in `parser_cases` pin behaviours one at a time; this module throws at the
`intern-s1` parsers what a misbehaving model or detokenizer can produce: text in any script,
`<think>` tags balanced or not, both call formats with and without whitespace between markers,
broken and deep JSON, half markers and typos, all streamed in random pieces. An output is
reproducible from its seed alone (`generate(seed)`), so a failure report only needs the seed.

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
import math
import os
import random
import re
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from interns1_plugin import formats as f
from interns1_plugin.parsers.call_formats import MAX_JSON_DEPTH

# -- what the generator can produce -------------------------------------------------------------

#: Features a generated output may use; each output lists the ones it does.
CLEAN = "clean"
NOISY = "noisy"
TRUNCATED = "truncated"
ACTION_CALL = "action_call"
QWEN_CALL = "qwen_call"
BROKEN_JSON = "broken_json"
NOT_A_CALL = "not_a_call"
UNTERMINATED_BLOCK = "unterminated_block"
PARTIAL_MARKER = "partial_marker"
TYPO_MARKER = "typo_marker"
STRAY_MARKER = "stray_marker"
LONG_GAP = "long_gap"
INTERPRETER_BLOCK = "interpreter_block"
THINK_TAGS = "think_tags"
UNICODE_ESCAPE = "unicode_escape"
ARGUMENTS_AS_STRING = "arguments_as_string"
DEEP_JSON = "deep_json"
TOO_DEEP_JSON = "too_deep_json"
HUGE_INT = "huge_int"
NONFINITE_LITERAL = "nonfinite_literal"
DUPLICATE_KEYS = "duplicate_keys"
MARKER_IN_JSON = "marker_in_json"
#: Characters Python calls whitespace but the parsers do not (`\u3000`, `\x0b`...): kept.
UNICODE_SPACE = "unicode_space"
#: `1e400`: a finite JSON literal that Python reads as an infinite float; a call whose
#: arguments hold one has no faithful rendering, so its block stays text.
OVERFLOWING_FLOAT = "overflowing_float"
#: `"\\ud800"`: an escape for half a surrogate pair, which UTF-8 cannot encode; a call whose
#: arguments hold one stays text.
LONE_SURROGATE = "lone_surrogate"
#: Nesting of 600 to 999 levels inside the arguments: over `MAX_JSON_DEPTH` once the call and
#: arguments objects are counted, so text, whatever the caller's stack depth. (Before the bound,
#: Python's recursive decoder made these a call or not depending on that depth.)
DEEP_JSON_NEAR_LIMIT = "deep_json_near_limit"
#: Total nesting within two levels of `MAX_JSON_DEPTH` either side: a call up to the limit, text
#: past it. Pins the bound's off-by-one, for arguments given as an object and as a string.
DEEP_JSON_AT_LIMIT = "deep_json_at_limit"

FEATURES: frozenset[str] = frozenset(
    {
        CLEAN, NOISY, TRUNCATED, ACTION_CALL, QWEN_CALL, BROKEN_JSON, NOT_A_CALL,
        UNTERMINATED_BLOCK, PARTIAL_MARKER, TYPO_MARKER, STRAY_MARKER, LONG_GAP,
        INTERPRETER_BLOCK, THINK_TAGS, UNICODE_ESCAPE, ARGUMENTS_AS_STRING, DEEP_JSON,
        TOO_DEEP_JSON, HUGE_INT, NONFINITE_LITERAL, DUPLICATE_KEYS, MARKER_IN_JSON,
        UNICODE_SPACE, OVERFLOWING_FLOAT, LONE_SURROGATE, DEEP_JSON_NEAR_LIMIT,
        DEEP_JSON_AT_LIMIT,
    }
)  # fmt: skip

#: Features whose outputs break an invariant today: `generate` leaves them out by default and
#: `tests/core/test_parser_fuzz.py` pins each with a strict xfail. Remove one when it is fixed.
#: (An engine path may leave out more: see `VLLM_EXCLUDE` in the vLLM fuzz tests.)
OPEN_DEFECTS: frozenset[str] = frozenset()

WHITESPACE = " \t\r\n"
MARKERS: tuple[str, ...] = tuple(
    sorted(
        {
            f.THINK_START,
            f.THINK_END,
            f.ACTION_START,
            f.ACTION_END,
            f.PLUGIN,
            f.INTERPRETER,
            f.TOOL_CALL_START,
            f.TOOL_CALL_END,
        },
        key=len,
        reverse=True,
    )
)

_WORDS = (
    "the", "boiling", "point", "is", "100", "°C", "x", "y=2", "a+b", "(ok)", "[1]", "{k}", '"q"',
    "'s'", "\\", "|", ">", "/", "#", "...", ":", ";", ",", "{", "}", "null", "true", "naïve",
)  # fmt: skip
_CJK = ("推理", "咖啡因", "分子", "水的沸点", "中文", "日本語", "한국어")
_EMOJI = ("☕", "🧪", "🚀", "👩\u200d🔬", "🇯🇵", "👍🏽", "❤️")
_COMBINING = ("e\u0301", "a\u0308", "\u0301", "\u0327", "n\u0303\u0323")
_RTL = ("مرحبا", "שלום", "\u200f", "\u202e", "\u202d", "\u2067x\u2069")
#: Whitespace to Python's str.isspace() but not to the parsers: it must come through untouched.
_ODD_SPACE = ("\u00a0", "\u3000", "\u2028", "\x0b", "\x0c", "\x85")
_INVISIBLE = ("\u200b", "\ufeff", "\u2060", "\u00ad")
_SPACE = (" ", "\n", "\t", "\r\n", "\n\n", "  ")
_MARKERISH = ("<", "<|", "</", "|>", ">", "<|action", "<tool", "</thi", "<think", "<|plugin")
_NAMES = (
    "get_weather", "lookup", "melting_point", "fft_peak", "f", "unknown_tool", "工具",
    "tool.with.dots", "a-b", "🚀launch", "n" * 120,
)  # fmt: skip
_SHORT_ESCAPES = {"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


@dataclass(frozen=True, slots=True)
class Expected:
    """The split an output of well-formed parts must give: visible text and decoded calls."""

    reasoning: str
    content: str
    calls: tuple[tuple[str, Any], ...]


@dataclass(frozen=True, slots=True)
class FuzzOutput:
    """One generated model output; `expected` is set when every part of it is well-formed."""

    seed: int
    text: str
    thinking: bool
    features: frozenset[str]
    expected: Expected | None = None


class RandomSource(Protocol):
    """What the generator needs of its randomness: `random.Random` or hypothesis' stand-in."""

    def random(self) -> float: ...

    def randint(self, a: int, b: int) -> int: ...


def _pick(rng: RandomSource, items: Sequence[Any]) -> Any:
    return items[rng.randint(0, len(items) - 1)]


def _chance(rng: RandomSource, p: float) -> bool:
    return rng.random() < p


class _Builder:
    """One output's construction; records the features it uses and skips excluded ones."""

    def __init__(self, rng: RandomSource, exclude: frozenset[str], *, clean: bool) -> None:
        self.rng = rng
        self.exclude = exclude
        self.clean = clean
        self.features: set[str] = set()
        #: Features of the last `payload()` that make it text rather than a call. Known while
        #: writing, so a clean output plans such a block as text without asking a decoder.
        self.spoilers: set[str] = set()

    def spoil(self, feature: str) -> None:
        """Record that the payload being written cannot be a call, because of `feature`."""
        self.spoilers.add(feature)

    def allows(self, feature: str, p: float) -> bool:
        """Whether to use `feature` this time (probability `p`), and record it if so."""
        if feature in self.exclude or not _chance(self.rng, p):
            return False
        self.features.add(feature)
        return True

    # -- text -----------------------------------------------------------------------------------
    def text(self, *, max_parts: int = 6) -> str:
        """Prose in mixed scripts; outside clean outputs it may hold marker fragments."""
        pools: list[Sequence[str]] = [
            *(_WORDS, _WORDS, _CJK, _EMOJI, _COMBINING, _RTL, _INVISIBLE, _ODD_SPACE)
        ]
        if not self.clean:
            pools.append(_MARKERISH)
        out = []
        for _ in range(self.rng.randint(1, max_parts)):
            pool = _pick(self.rng, pools)
            if pool is _ODD_SPACE:
                if UNICODE_SPACE in self.exclude:
                    pool = _WORDS
                else:
                    self.features.add(UNICODE_SPACE)
            out.append(_pick(self.rng, pool))
            if _chance(self.rng, 0.6):
                out.append(_pick(self.rng, _SPACE))
        return "".join(out)

    def gap(self, *, long_ok: bool = False) -> str:
        """Whitespace a detokenizer may put between a block's markers."""
        if long_ok and self.allows(LONG_GAP, 0.05):
            return " " * self.rng.randint(65, 90)
        return _pick(self.rng, ("", "", " ", "\n", " \n", "\n\n", "\t"))

    # -- JSON -----------------------------------------------------------------------------------
    def sep(self) -> str:
        return _pick(self.rng, ("", "", " ", " ", "\n", "\n  ", "\t", "\r\n"))

    def string(self, body: str | None = None) -> str:
        """A JSON string literal, escaping a random share of its characters."""
        leaf = body is None
        if body is None:
            parts = [self.text(max_parts=3)]
            if not self.clean and self.allows(MARKER_IN_JSON, 0.05):
                parts.append(_pick(self.rng, MARKERS))
            body = "".join(parts)
        escape_share = _pick(self.rng, (0.0, 0.0, 0.3, 1.0))
        out = ['"']
        for ch in body:
            if ch in '"\\':
                out.append("\\" + ch)
            elif ord(ch) < 0x20:
                short = _SHORT_ESCAPES.get(ch)
                out.append(short if short and _chance(self.rng, 0.7) else f"\\u{ord(ch):04x}")
            elif ch == "/" and _chance(self.rng, 0.3):
                out.append("\\/")
            elif escape_share and _chance(self.rng, escape_share):
                self.features.add(UNICODE_ESCAPE)
                out.append(_unicode_escape(ch, upper=_chance(self.rng, 0.3)))
            else:
                out.append(ch)
        if leaf and self.allows(LONE_SURROGATE, 0.02):
            # Leaves are values inside the arguments, and every other surrogate escape here
            # comes as a whole pair, so this one stays alone: UTF-8 cannot encode the string.
            self.spoil(LONE_SURROGATE)
            half = self.rng.randint(0xD800, 0xDFFF)
            out.insert(self.rng.randint(1, len(out)), f"\\u{half:04x}")
        out.append('"')
        return "".join(out)

    def number(self) -> str:
        rng = self.rng
        if self.allows(OVERFLOWING_FLOAT, 0.02):
            self.spoil(OVERFLOWING_FLOAT)  # numbers are only written inside the arguments
            return _pick(rng, ("1e400", "-2.5e999", "1.8e308", "9" * 400 + ".0"))
        if self.allows(HUGE_INT, 0.02):
            # Python refuses integers over 4300 digits: a call holding one stays text.
            digits = min(int(10 ** (1.3 + 2.4 * rng.random())), 4000 if self.clean else 5000)
            return _pick(rng, ("", "-")) + str(rng.randint(1, 9)) + "7" * (digits - 1)
        if self.allows(NONFINITE_LITERAL, 0 if self.clean else 0.03):
            return _pick(rng, ("NaN", "Infinity", "-Infinity"))
        kind = rng.randint(0, 5)
        if kind == 0:
            return str(rng.randint(-1000, 1000))
        if kind == 1:
            return repr(rng.uniform(-1e6, 1e6))
        if kind == 2:
            return f"{rng.randint(1, 9)}.{rng.randint(0, 99)}e{rng.randint(-300, 300):+d}"
        if kind == 3:
            return _pick(rng, ("-0", "0.0", "1E+2", "1e-400", "0.1000000000000000000001"))
        return str(rng.randint(-(2**70), 2**70))

    def scalar(self) -> str:
        kind = self.rng.randint(0, 5)
        if kind <= 1:
            return self.number()
        if kind <= 3:
            return self.string()
        return _pick(self.rng, ("true", "false", "null"))

    def value(self, depth: int) -> str:
        roll = self.rng.random()
        if depth <= 0 or roll < 0.5:
            return self.scalar()
        if roll < 0.75:
            items = [self.value(depth - 1) for _ in range(self.rng.randint(0, 4))]
            return "[" + self.sep() + ("," + self.sep()).join(items) + self.sep() + "]"
        return self.members(self.rng.randint(0, 4), lambda: depth - 1)

    def members(
        self, count: int, depth: Callable[[], int], extra: Sequence[tuple[str, str]] = ()
    ) -> str:
        """An object of `count` random members (each value `depth()` levels at most), `extra`'s.

        Keys repeat at random and JSON keeps the last value of a key, so a value's spoilers go
        with it when a later duplicate hides it; nesting does not, as it is measured on the text.
        """
        pairs: list[tuple[str, str]] = []
        shown: dict[str, set[str]] = {}  # decoded key -> spoilers of the value JSON keeps
        outer = self.spoilers
        for _ in range(count):
            name = self.key_name()
            key = self.string(name)
            self.spoilers = set()
            pairs.append((key, self.value(depth())))
            outer |= shown.get(name, set()) & {TOO_DEEP_JSON}
            shown[name] = self.spoilers
        self.spoilers = outer.union(*shown.values())
        return self.obj([*pairs, *extra])

    def key_name(self) -> str:
        return _pick(self.rng, ("city", "q", "n", "值", "k☕", "", "a b", "name", "x"))

    def obj(self, entries: list[tuple[str, str]]) -> str:
        """A JSON object from (key literal, value text) pairs, spaced at random."""
        body = ("," + self.sep()).join(f"{k}{self.sep()}:{self.sep()}{v}" for k, v in entries)
        return "{" + self.sep() + body + self.sep() + "}"

    def deep(self, enclosing: int) -> str:
        """Nesting of 500 levels and more, as an array or an object chain.

        `enclosing` is how many levels hold the arguments object in the JSON text it is decoded
        from (1, the call object; 0 for arguments given as a string): the parser counts them, so
        the total is `enclosing` + 1 (the arguments object) + this value's depth.
        """
        room = MAX_JSON_DEPTH - enclosing - 1  # the deepest value a call may still hold here
        if self.allows(DEEP_JSON_AT_LIMIT, 0.15):
            depth = self.rng.randint(room - 2, room + 2)
        elif self.allows(DEEP_JSON_NEAR_LIMIT, 0.2):
            depth = self.rng.randint(600, 999)
        elif self.allows(TOO_DEEP_JSON, 0.2):
            depth = self.rng.randint(1000, 3000)
        else:
            self.features.add(DEEP_JSON)
            depth = self.rng.randint(500, 560)
        if depth > room:
            self.spoil(TOO_DEEP_JSON)  # the one label for "past the bound", whatever the range
        inner = self.scalar()
        if _chance(self.rng, 0.5):
            return "[" * depth + inner + "]" * depth
        return '{"d":' * depth + inner + "}" * depth

    def arguments(self, enclosing: int = 1) -> str:
        """The JSON text of a call's arguments object, `enclosing` levels deep (see `deep`)."""
        if self.allows(DEEP_JSON, 0.03):
            return self.obj([('"deep"', self.deep(enclosing))])
        count = self.rng.randint(0, 4)
        extra: list[tuple[str, str]] = []
        if not self.clean and self.allows(DUPLICATE_KEYS, 0.05):
            extra = [('"dup"', "1"), ('"dup"', "2")]
        return self.members(count, lambda: self.rng.randint(0, 3), extra)

    def payload(self) -> str:
        """A well-formed call object: `name`, and `parameters`, `arguments` or neither.

        Well-formed JSON need not be a call: `spoilers` says afterwards what keeps it text.
        """
        self.spoilers = set()
        entries = [('"name"', self.string(_pick(self.rng, _NAMES)))]
        key = _pick(self.rng, ('"parameters"', '"arguments"', '"parameters"', '"arguments"', None))
        if key is not None:
            roll = self.rng.random()
            if roll < 0.05:
                args = "null"
            elif self.allows(ARGUMENTS_AS_STRING, 0.2):
                args = self.string(self.arguments(enclosing=0))
            else:
                args = self.arguments()
            entries.append((key, args))
        if _chance(self.rng, 0.1):
            entries.append(('"id"', self.string("call_1")))
        self.shuffle(entries)
        return self.obj(entries)

    def shuffle(self, items: list[Any]) -> None:
        for i in range(len(items) - 1, 0, -1):
            j = self.rng.randint(0, i)
            items[i], items[j] = items[j], items[i]

    # -- blocks ---------------------------------------------------------------------------------
    def block(self, payload: str, *, terminated: bool = True, long_gap_ok: bool = False) -> str:
        if _chance(self.rng, 0.5):
            self.features.add(ACTION_CALL)
            start = f.ACTION_START + self.gap(long_ok=long_gap_ok) + f.PLUGIN
            end = f.ACTION_END
        else:
            self.features.add(QWEN_CALL)
            start, end = f.TOOL_CALL_START, f.TOOL_CALL_END
        head = start + _pick(self.rng, ("\n", "\n", "", " ", "\n\n"))
        tail = _pick(self.rng, ("\n", "\n", "", " ")) + end if terminated else ""
        return head + payload + tail

    def broken_payload(self) -> str:
        """A payload that is not a call: broken JSON, or JSON that is not a call object."""
        rng = self.rng
        good = self.payload()
        kind = rng.randint(0, 9)
        if kind <= 4:
            self.features.add(BROKEN_JSON)
        else:
            self.features.add(NOT_A_CALL)
        if kind == 0:
            return good[: rng.randint(1, max(1, len(good) - 1))]
        if kind == 1:
            return good[:-1] + ",}"
        if kind == 2:
            return good.replace('"', "'")
        if kind == 3:
            return good.replace('"name"', "name", 1)
        if kind == 4:
            return good + _pick(rng, (" x", "}", " // note", ",", "{}"))
        if kind == 5:
            return "[" + good + "]"
        if kind == 6:
            return _pick(rng, ('""', "42", "null", "true", '"name"'))
        if kind == 7:
            bad_name = _pick(rng, ('""', "3", "null", "[]", '{"a": 1}'))
            return self.obj([('"name"', bad_name), ('"parameters"', self.arguments())])
        if kind == 8:
            bad_args = _pick(rng, ("[1, 2]", "5", '"not json"', '"[1]"', '"{\\"a\\": }"', "true"))
            return self.obj([('"name"', self.string("f")), ('"arguments"', bad_args)])
        self.features.add(NONFINITE_LITERAL)
        literal = _pick(rng, ("NaN", "Infinity", "-Infinity"))
        return self.obj([('"name"', self.string("f")), ('"parameters"', '{"x": ' + literal + "}")])

    def garbled_marker(self) -> str:
        rng = self.rng
        marker = _pick(rng, MARKERS)
        roll = rng.randint(0, 2)
        if roll == 0:
            self.features.add(PARTIAL_MARKER)
            return marker[: rng.randint(1, len(marker) - 1)]
        if roll == 1:
            self.features.add(STRAY_MARKER)
            return marker
        self.features.add(TYPO_MARKER)
        pos = rng.randint(0, len(marker) - 1)
        edit = rng.randint(0, 4)
        if edit == 0:
            return marker[:pos] + marker[pos + 1 :]
        if edit == 1:
            return marker[:pos] + marker[pos] + marker[pos:]
        if edit == 2:
            return marker[:pos] + _pick(rng, "x|<>/ _") + marker[pos + 1 :]
        if edit == 3:
            return marker.upper()
        return marker[:pos] + " " + marker[pos:]

    def noisy_part(self) -> str:
        """One random part of a noisy output."""
        roll = self.rng.randint(0, 19)
        if roll <= 5:
            return self.text()
        if roll == 6:
            return _pick(self.rng, _SPACE)
        if roll <= 8:
            self.features.add(THINK_TAGS)
            return _pick(self.rng, (f.THINK_START, f.THINK_END, f.THINK_END))
        if roll <= 11:
            return self.block(self.payload(), long_gap_ok=True)
        if roll <= 13:
            return self.block(self.broken_payload(), long_gap_ok=True)
        if roll <= 16:
            return self.garbled_marker()
        if roll == 17:
            self.features.add(UNTERMINATED_BLOCK)
            return self.block(self.payload(), terminated=False)
        if roll == 18:
            self.features.add(INTERPRETER_BLOCK)
            return f"{f.ACTION_START}{f.INTERPRETER}\nprint('x')\n{f.ACTION_END}"
        self.features.add(PARTIAL_MARKER)
        return self.block(self.payload())[: self.rng.randint(1, 30)]


def _unicode_escape(ch: str, *, upper: bool) -> str:
    code = ord(ch)
    if code > 0xFFFF:
        code -= 0x10000
        units = (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF))
    else:
        units = (code,)
    text = "".join(f"\\u{unit:04x}" for unit in units)
    return text.upper().replace("\\U", "\\u") if upper else text


def _decoded_call(payload: str) -> tuple[str, Any] | None:
    """What a call payload means by the format's rules, read with the stdlib's strict JSON.

    Written apart from the parsers on purpose: `parameters` wins over `arguments`, null or
    missing arguments are `{}`, arguments given as a JSON string are read once more (and their
    depth measured alone), and a call must have a faithful rendering: nesting within
    `MAX_JSON_DEPTH`, no infinite number, no lone surrogate in its name or arguments.
    """
    obj = _strict_json(payload)
    if not isinstance(obj, dict):
        return None
    name = obj.get("name")
    if not isinstance(name, str) or not name or _SURROGATE.search(name):
        return None
    args = next((obj[key] for key in f.ARGUMENT_KEYS if key in obj), None)
    if args is None:
        args = {}
    if isinstance(args, str):
        args = _strict_json(args)
    if not isinstance(args, dict) or not _representable(args):
        return None
    return name, args


class _NotJson:
    """What `_strict_json` returns for text that is not a call's JSON (None is JSON's null)."""


_NOT_JSON = _NotJson()
#: The characters a scan for nesting must look at: brackets, and what opens, escapes or closes
#: a string literal (brackets inside one do not nest).
_JSON_STRUCTURE = re.compile(r'[\[\]{}"\\]')
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _strict_json(text: str) -> object:
    """The value of `text` as strict JSON within `MAX_JSON_DEPTH`, else `_NOT_JSON`.

    Depth is measured before decoding: the decoder recurses once per level, so decoding first
    would make the verdict on deep text depend on the checker's own stack depth.
    """
    if _nesting(text) > MAX_JSON_DEPTH:
        return _NOT_JSON
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return _NOT_JSON
    except RecursionError as exc:  # within the bound: the checker's own stack is too deep
        raise RuntimeError("the checker cannot decode JSON within MAX_JSON_DEPTH here") from exc


def _nesting(text: str) -> int:
    """The deepest bracket nesting of JSON `text`, brackets inside string literals not counted.

    For text that is not JSON the number is only an upper bound on how deep a decoder gets
    before it fails, which is all the verdict needs.
    """
    depth = deepest = 0
    in_string = False
    skip = -1  # the position of a character escaped by a backslash
    for match in _JSON_STRUCTURE.finditer(text):
        pos, ch = match.start(), match.group()
        if pos == skip:
            continue
        if in_string:
            if ch == "\\":
                skip = pos + 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _representable(value: object) -> bool:
    """Whether a decoded value renders as JSON faithfully: finite numbers, UTF-8-encodable text.

    Walks with its own stack, not recursion, for the same reason `_strict_json` measures first.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return False
        if isinstance(item, str) and _SURROGATE.search(item):
            return False
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True


def _reject_constant(name: str) -> None:
    raise ValueError(f"not JSON: {name}")


def generate(
    seed: int, *, exclude: frozenset[str] = OPEN_DEFECTS, rng: RandomSource | None = None
) -> FuzzOutput:
    """The output for `seed` (or drawn from `rng`, e.g. hypothesis' `st.randoms()`)."""
    rng = rng if rng is not None else random.Random(seed)
    roll = rng.random()
    if roll < 0.3:
        return _clean_output(seed, rng, exclude)
    if roll < 0.4:
        whole = _clean_output(seed, rng, exclude)
        cut = rng.randint(0, len(whole.text))
        features = whole.features | {TRUNCATED}
        return FuzzOutput(seed, whole.text[:cut], whole.thinking, features - {CLEAN})
    builder = _Builder(rng, exclude, clean=False)
    builder.features.add(NOISY)
    thinking = _chance(rng, 0.75)
    head = _pick(rng, ("", "\n", "<think>\n", "  <think>", "\n<think>", "<think><think>"))
    parts = [head] + [builder.noisy_part() for _ in range(rng.randint(1, 14))]
    return FuzzOutput(seed, "".join(parts), thinking, frozenset(builder.features))


def _clean_output(seed: int, rng: RandomSource, exclude: frozenset[str]) -> FuzzOutput:
    """Text and well-formed blocks, reasoning (maybe unfinished) first: the split is known.

    A well-formed block whose call has no faithful rendering (too deep, `1e400`, a lone
    surrogate) is planned as text, so these outputs also pin that such blocks come through
    verbatim.
    """
    builder = _Builder(rng, exclude, clean=True)
    builder.features.add(CLEAN)
    thinking = _chance(rng, 0.75)
    calls: list[tuple[str, Any]] = []

    def channel(count: int, *, last: bool) -> tuple[str, str]:
        """(raw text, the part of it that stays text) of one channel's random parts."""
        raw, prose = [], []
        for index in range(count):
            if _chance(rng, 0.4):
                payload = builder.payload()
                decoded = _decoded_call(payload)
                # What the generator meant and what the checker reads must agree, or one of the
                # two is wrong about the rules.
                if (decoded is None) != bool(builder.spoilers):
                    raise RuntimeError(
                        f"generator and checker disagree (spoilers {sorted(builder.spoilers)}, "
                        f"decoded {decoded is not None}): {payload!a}"
                    )
                # A stop string may eat the last call's end marker.
                eaten = last and index == count - 1 and _chance(rng, 0.3)
                block = builder.block(payload, terminated=not eaten)
                raw.append(block)
                if decoded is None:
                    prose.append(block)  # unrepresentable or too deep: the block is text
                else:
                    calls.append(decoded)
            else:
                text = builder.text()
                raw.append(text)
                prose.append(text)
        return "".join(raw), "".join(prose)

    if not thinking:
        raw, content = channel(rng.randint(1, 6), last=True)
        expected = Expected("", visible(content), tuple(calls))
        return FuzzOutput(seed, raw, thinking, frozenset(builder.features), expected)
    closed = _chance(rng, 0.85)
    opening = _pick(rng, ("", "", "<think>", "<think>\n", "\n"))
    raw, reasoning = channel(rng.randint(0, 5), last=not closed)
    text, content = opening + raw, ""
    if closed:
        text += _pick(rng, ("", "\n")) + f.THINK_END + _pick(rng, ("", "\n\n", " "))
        raw, content = channel(rng.randint(0, 5), last=True)
        text += raw
    expected = Expected(visible(reasoning), visible(content), tuple(calls))
    return FuzzOutput(seed, text, thinking, frozenset(builder.features), expected)


def generate_many(base_seed: int, count: int, **kwargs: Any) -> Iterator[FuzzOutput]:
    """`count` outputs whose seeds follow from `base_seed`, so any one can be rebuilt alone."""
    for index in range(count):
        yield generate(output_seed(base_seed, index), **kwargs)


def output_seed(base_seed: int, index: int) -> int:
    return base_seed * 1_000_003 + index


# -- chunkings -----------------------------------------------------------------------------------

CHUNKINGS: tuple[str, ...] = ("whole", "chars", "random", "markers", "straddle", "tokens")


_MARKER_PATTERN = re.compile("|".join(re.escape(m) for m in MARKERS))


def _marker_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _MARKER_PATTERN.finditer(text)]


def _cut(text: str, points: Iterable[int]) -> list[str]:
    bounds = sorted({0, len(text), *(p for p in points if 0 < p < len(text))})
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)] or [text]


def chunk(text: str, kind: str, rng: RandomSource) -> list[str]:
    """Pieces of `text` as one kind of stream would deliver them.

    whole: one delta; chars: one character each; random: 1-20 characters, now and then an empty
    delta; markers: cut exactly at every marker's two ends; straddle: every marker cut in two;
    tokens: markers whole and other text 1-4 characters, as a detokenizer delivers.
    """
    if kind == "whole":
        return [text]
    if kind == "chars":
        return list(text) or [text]
    if kind == "random":
        pieces, pos = [], 0
        while pos < len(text):
            size = rng.randint(1, 20)
            pieces.append(text[pos : pos + size])
            if _chance(rng, 0.05):
                pieces.append("")
            pos += size
        return pieces or [text]
    spans = _marker_spans(text)
    if kind == "markers":
        return _cut(text, [p for span in spans for p in span])
    if kind == "straddle":
        return _cut(text, [rng.randint(a + 1, b - 1) for a, b in spans])
    if kind == "tokens":
        points: list[int] = []
        pos = 0
        for a, b in [*spans, (len(text), len(text))]:
            while pos < a:
                points.append(pos)
                pos += rng.randint(1, 4)
            points += [a, b]
            pos = b
        return _cut(text, points)
    raise ValueError(f"unknown chunking {kind!r}")


# -- the split and its checks -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Split:
    """What a client gets: reasoning and content text ("" when absent), calls as sent."""

    reasoning: str
    content: str
    calls: tuple[tuple[str, str], ...]


def visible(text: str) -> str:
    """`text` without the whitespace the parsers are allowed to trim."""
    return "".join(ch for ch in text if ch not in WHITESPACE)


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
                    call = _decoded_call(text[payload_start:payload_end])
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
        if _nesting(arguments) > MAX_JSON_DEPTH:
            problems.append(f"invalid-call: arguments nest over {MAX_JSON_DEPTH}: {arguments!a}")
            continue
        try:
            args = json.loads(arguments, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            problems.append(f"invalid-call: arguments are not strict JSON ({exc}): {arguments!a}")
            continue
        if not _representable(args):
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


# -- running an engine path over many outputs --------------------------------------------------

#: Outputs per fuzz test, base seed, and outputs per stress test (see `stress_count`).
COUNT_ENV = "INTERNS1_FUZZ_N"
SEED_ENV = "INTERNS1_FUZZ_SEED"
STRESS_COUNT_ENV = "INTERNS1_FUZZ_STRESS_N"
DEFAULT_SEED = 20251
DEFAULT_STRESS_COUNT = 100_000


def fuzz_count(default: int) -> int:
    """Outputs per fuzz test: `INTERNS1_FUZZ_N`, else the test file's default."""
    return int(os.environ.get(COUNT_ENV, default))


def base_seed() -> int:
    """`INTERNS1_FUZZ_SEED`, so a run with other outputs needs no code change."""
    return int(os.environ.get(SEED_ENV, DEFAULT_SEED))


def stress_count(markexpr: str) -> int | None:
    """Outputs for a stress test, or None when the run did not ask for stress.

    Stress tests take minutes, so they run only when selected by marker (`-m stress`) or
    sized through `INTERNS1_FUZZ_STRESS_N`, never as part of a plain `pytest`.
    """
    sized = os.environ.get(STRESS_COUNT_ENV)
    selected = "stress" in markexpr and "not stress" not in markexpr
    if sized is None and not selected:
        return None
    return int(sized) if sized is not None else DEFAULT_STRESS_COUNT


class EnginePath(Protocol):
    """One engine's way from model output to client-visible split, whole and streamed."""

    name: str

    def parse(self, text: str, thinking: bool) -> Split: ...

    def stream(self, pieces: list[str], thinking: bool) -> Split: ...


def output_problems(
    path: EnginePath,
    output: FuzzOutput | str,
    thinking: bool,
    chunkings: Iterable[tuple[str, list[str]]],
    reference: EnginePath | None = None,
) -> list[str]:
    """Every invariant for one output: no exception, stream == whole, nothing lost.

    With `reference` (the core parser, for an engine path), the engine's split must also be the
    reference's: an adapter may not change what the core decided.
    """
    text = output if isinstance(output, str) else output.text
    try:
        whole = path.parse(text, thinking)
    except Exception:  # noqa: BLE001 - any exception is the finding
        return [f"exception: non-streaming\n{_short_traceback()}"]
    problems = split_problems(output, thinking, whole)
    if reference is not None:
        expected = reference.parse(text, thinking)
        if whole != expected:
            problems.append(f"engine-vs-core:\n  engine: {whole!a}\n  core:   {expected!a}")
    for kind, pieces in chunkings:
        try:
            streamed = path.stream(pieces, thinking)
        except Exception:  # noqa: BLE001
            problems.append(f"exception: streaming ({kind})\n{_short_traceback()}")
            continue
        if streamed != whole:
            problems.append(
                f"stream-mismatch: {kind}\n  whole:    {whole!a}\n  streamed: {streamed!a}"
            )
    return problems


def _short_traceback() -> str:
    return "".join(traceback.format_exc(limit=-6))


def all_chunkings(text: str, seed: int = 0) -> list[tuple[str, list[str]]]:
    """Every kind of chunking once (random ones from `seed`): for re-checking one output."""
    rng = random.Random(seed)
    return [(kind, chunk(text, kind, rng)) for kind in CHUNKINGS]


def _atoms(text: str) -> list[str]:
    atoms, pos = [], 0
    for start, end in _marker_spans(text):
        atoms.extend(text[pos:start])
        atoms.append(text[start:end])
        pos = end
    atoms.extend(text[pos:])
    return atoms


def minimize(
    text: str, fails: Callable[[str], bool], *, budget: int = 2000, seconds: float = 60.0
) -> str:
    """A smaller text that still fails: delta debugging over markers and single characters.

    Stops after `budget` tries or `seconds`, whichever comes first, with the smallest so far.
    """
    atoms = _atoms(text)
    parts = 2
    deadline = time.monotonic() + seconds
    while len(atoms) >= 2 and budget > 0 and time.monotonic() < deadline:
        size = -(-len(atoms) // parts)
        for start in range(0, len(atoms), size):
            candidate = atoms[:start] + atoms[start + size :]
            budget -= 1
            if fails("".join(candidate)):
                atoms = candidate
                parts = max(parts - 1, 2)
                break
            if budget <= 0 or time.monotonic() >= deadline:
                break
        else:
            if parts >= len(atoms):
                break
            parts = min(parts * 2, len(atoms))
    return "".join(atoms)


@dataclass
class Failure:
    """One failing output, what it broke, and (for the first) a minimized text that still does."""

    output: FuzzOutput
    problems: list[str]
    minimal: str | None = None


@dataclass
class FuzzRun:
    """The outcome of `fuzz`: how much was checked and what failed."""

    path: str
    base_seed: int
    exclude: frozenset[str]
    outputs: int = 0
    streams: int = 0
    failures: list[Failure] = field(default_factory=list)

    def report(self, *, limit: int = 5) -> str:
        lines = [
            f"{self.path}: {len(self.failures)} of {self.outputs} outputs failed (base seed "
            f"{self.base_seed}); rebuild one with interns1_plugin.testing.fuzz_outputs."
            f"generate(seed, exclude=frozenset({sorted(self.exclude)})), its chunkings with "
            "chunk(text, kind, random.Random(seed)) after shuffling CHUNKINGS with that Random"
        ]
        for failure in self.failures[:limit]:
            out = failure.output
            lines.append(
                f"- seed {out.seed}, thinking={out.thinking}, features={sorted(out.features)}"
            )
            shown = out.text if len(out.text) <= 1500 else out.text[:1500] + "..."
            lines.append(f"  output ({len(out.text)} characters): {shown!a}")
            if failure.minimal is not None:
                lines.append(f"  minimal failing output: {failure.minimal!a}")
            lines.extend("  " + p.replace("\n", "\n  ") for p in failure.problems[:3])
        return "\n".join(lines)


def fuzz(
    path: EnginePath,
    *,
    base_seed: int,
    count: int,
    streams_per_output: int = 2,
    exclude: frozenset[str] = OPEN_DEFECTS,
    max_failures: int = 20,
    reference: EnginePath | None = None,
    minimize_first: bool = True,
) -> FuzzRun:
    """Check `count` generated outputs through `path`; the first failure is also minimized."""
    run = FuzzRun(path.name, base_seed, exclude)
    for output in generate_many(base_seed, count, exclude=exclude):
        rng = random.Random(output.seed)
        kinds = list(CHUNKINGS)
        rng.shuffle(kinds)
        chunkings = [(k, chunk(output.text, k, rng)) for k in kinds[:streams_per_output]]
        problems = output_problems(path, output, output.thinking, chunkings, reference)
        run.outputs += 1
        run.streams += len(chunkings)
        if problems:
            run.failures.append(Failure(output, problems))
            if len(run.failures) >= max_failures:
                break
    if run.failures and minimize_first:
        first = run.failures[0]
        category = first.problems[0].split(":", 1)[0]
        thinking = first.output.thinking

        def still_fails(text: str) -> bool:
            found = output_problems(path, text, thinking, all_chunkings(text), reference)
            return any(p.split(":", 1)[0] == category for p in found)

        first.minimal = minimize(first.output.text, still_fails)
    return run
