"""The parts of a fuzzed output: prose, call payloads (well-formed or not), blocks, garbled markers.

One `Builder` writes one output, recording each feature it uses and skipping excluded ones; it
also knows while writing which well-formed payloads cannot be calls (`spoilers`), so a clean
output's expected split needs no decoder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from interns1_plugin import formats as f
from interns1_plugin.parsers.call_formats import MAX_JSON_DEPTH
from interns1_plugin.testing.fuzz_features import (
    ACTION_CALL,
    ARGUMENTS_AS_STRING,
    BROKEN_JSON,
    DEEP_JSON,
    DEEP_JSON_AT_LIMIT,
    DEEP_JSON_NEAR_LIMIT,
    DUPLICATE_KEYS,
    HUGE_INT,
    INTERPRETER_BLOCK,
    LONE_SURROGATE,
    LONG_GAP,
    MARKER_IN_JSON,
    NONFINITE_LITERAL,
    NOT_A_CALL,
    OVERFLOWING_FLOAT,
    PARTIAL_MARKER,
    QWEN_CALL,
    STRAY_MARKER,
    THINK_TAGS,
    TOO_DEEP_JSON,
    TYPO_MARKER,
    UNICODE_ESCAPE,
    UNICODE_SPACE,
    UNTERMINATED_BLOCK,
)
from interns1_plugin.testing.fuzz_markers import MARKERS
from interns1_plugin.testing.fuzz_random import RandomSource, chance, pick

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


class Builder:
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
        if feature in self.exclude or not chance(self.rng, p):
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
            pool = pick(self.rng, pools)
            if pool is _ODD_SPACE:
                if UNICODE_SPACE in self.exclude:
                    pool = _WORDS
                else:
                    self.features.add(UNICODE_SPACE)
            out.append(pick(self.rng, pool))
            if chance(self.rng, 0.6):
                out.append(pick(self.rng, _SPACE))
        return "".join(out)

    def gap(self, *, long_ok: bool = False) -> str:
        """Whitespace a detokenizer may put between a block's markers."""
        if long_ok and self.allows(LONG_GAP, 0.05):
            return " " * self.rng.randint(65, 90)
        return pick(self.rng, ("", "", " ", "\n", " \n", "\n\n", "\t"))

    # -- JSON -----------------------------------------------------------------------------------
    def sep(self) -> str:
        return pick(self.rng, ("", "", " ", " ", "\n", "\n  ", "\t", "\r\n"))

    def string(self, body: str | None = None) -> str:
        """A JSON string literal, escaping a random share of its characters."""
        leaf = body is None
        if body is None:
            parts = [self.text(max_parts=3)]
            if not self.clean and self.allows(MARKER_IN_JSON, 0.05):
                parts.append(pick(self.rng, MARKERS))
            body = "".join(parts)
        escape_share = pick(self.rng, (0.0, 0.0, 0.3, 1.0))
        out = ['"']
        for ch in body:
            if ch in '"\\':
                out.append("\\" + ch)
            elif ord(ch) < 0x20:
                short = _SHORT_ESCAPES.get(ch)
                out.append(short if short and chance(self.rng, 0.7) else f"\\u{ord(ch):04x}")
            elif ch == "/" and chance(self.rng, 0.3):
                out.append("\\/")
            elif escape_share and chance(self.rng, escape_share):
                self.features.add(UNICODE_ESCAPE)
                out.append(_unicode_escape(ch, upper=chance(self.rng, 0.3)))
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
            return pick(rng, ("1e400", "-2.5e999", "1.8e308", "9" * 400 + ".0"))
        if self.allows(HUGE_INT, 0.02):
            # Python refuses integers over 4300 digits: a call holding one stays text.
            digits = min(int(10 ** (1.3 + 2.4 * rng.random())), 4000 if self.clean else 5000)
            return pick(rng, ("", "-")) + str(rng.randint(1, 9)) + "7" * (digits - 1)
        if self.allows(NONFINITE_LITERAL, 0 if self.clean else 0.03):
            return pick(rng, ("NaN", "Infinity", "-Infinity"))
        kind = rng.randint(0, 5)
        if kind == 0:
            return str(rng.randint(-1000, 1000))
        if kind == 1:
            return repr(rng.uniform(-1e6, 1e6))
        if kind == 2:
            return f"{rng.randint(1, 9)}.{rng.randint(0, 99)}e{rng.randint(-300, 300):+d}"
        if kind == 3:
            return pick(rng, ("-0", "0.0", "1E+2", "1e-400", "0.1000000000000000000001"))
        return str(rng.randint(-(2**70), 2**70))

    def scalar(self) -> str:
        kind = self.rng.randint(0, 5)
        if kind <= 1:
            return self.number()
        if kind <= 3:
            return self.string()
        return pick(self.rng, ("true", "false", "null"))

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
        return pick(self.rng, ("city", "q", "n", "值", "k☕", "", "a b", "name", "x"))

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
        if chance(self.rng, 0.5):
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
        entries = [('"name"', self.string(pick(self.rng, _NAMES)))]
        key = pick(self.rng, ('"parameters"', '"arguments"', '"parameters"', '"arguments"', None))
        if key is not None:
            roll = self.rng.random()
            if roll < 0.05:
                args = "null"
            elif self.allows(ARGUMENTS_AS_STRING, 0.2):
                args = self.string(self.arguments(enclosing=0))
            else:
                args = self.arguments()
            entries.append((key, args))
        if chance(self.rng, 0.1):
            entries.append(('"id"', self.string("call_1")))
        self.shuffle(entries)
        return self.obj(entries)

    def shuffle(self, items: list[Any]) -> None:
        for i in range(len(items) - 1, 0, -1):
            j = self.rng.randint(0, i)
            items[i], items[j] = items[j], items[i]

    # -- blocks ---------------------------------------------------------------------------------
    def block(self, payload: str, *, terminated: bool = True, long_gap_ok: bool = False) -> str:
        if chance(self.rng, 0.5):
            self.features.add(ACTION_CALL)
            start = f.ACTION_START + self.gap(long_ok=long_gap_ok) + f.PLUGIN
            end = f.ACTION_END
        else:
            self.features.add(QWEN_CALL)
            start, end = f.TOOL_CALL_START, f.TOOL_CALL_END
        head = start + pick(self.rng, ("\n", "\n", "", " ", "\n\n"))
        tail = pick(self.rng, ("\n", "\n", "", " ")) + end if terminated else ""
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
            return good + pick(rng, (" x", "}", " // note", ",", "{}"))
        if kind == 5:
            return "[" + good + "]"
        if kind == 6:
            return pick(rng, ('""', "42", "null", "true", '"name"'))
        if kind == 7:
            bad_name = pick(rng, ('""', "3", "null", "[]", '{"a": 1}'))
            return self.obj([('"name"', bad_name), ('"parameters"', self.arguments())])
        if kind == 8:
            bad_args = pick(rng, ("[1, 2]", "5", '"not json"', '"[1]"', '"{\\"a\\": }"', "true"))
            return self.obj([('"name"', self.string("f")), ('"arguments"', bad_args)])
        self.features.add(NONFINITE_LITERAL)
        literal = pick(rng, ("NaN", "Infinity", "-Infinity"))
        return self.obj([('"name"', self.string("f")), ('"parameters"', '{"x": ' + literal + "}")])

    def garbled_marker(self) -> str:
        rng = self.rng
        marker = pick(rng, MARKERS)
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
            return marker[:pos] + pick(rng, "x|<>/ _") + marker[pos + 1 :]
        if edit == 3:
            return marker.upper()
        return marker[:pos] + " " + marker[pos:]

    def noisy_part(self) -> str:
        """One random part of a noisy output."""
        roll = self.rng.randint(0, 19)
        if roll <= 5:
            return self.text()
        if roll == 6:
            return pick(self.rng, _SPACE)
        if roll <= 8:
            self.features.add(THINK_TAGS)
            return pick(self.rng, (f.THINK_START, f.THINK_END, f.THINK_END))
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
