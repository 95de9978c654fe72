"""The two tool-call block formats of the Intern-S1 family and how a block's payload is decoded.

Intern-S1 / mini:  <|action_start|><|plugin|>\\n{"name": ..., "parameters": {...}}\\n<|action_end|>
                   (whitespace allowed between the markers: detokenizers may put a space there)
Intern-S1-Pro:     <tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from interns1_plugin import formats
from interns1_plugin.parsers.events import ToolCall
from interns1_plugin.parsers.markers import WHITESPACE, could_become

#: Whitespace the opening of a block may hold (after the start marker, after the header). The
#: model writes a newline or a space; a longer run means the marker was not opening a call.
MAX_OPENING_GAP = 64
#: Deepest JSON nesting a call may have. Python's decoder recurses once per level, so without a
#: bound the same text would be a call or not depending on how deep the caller's stack is.
MAX_JSON_DEPTH = 600


class Opening(Enum):
    """Verdict on the text right after a block's start marker."""

    NEED_MORE = 0
    VALID = 1
    NOT_A_CALL = 2


@dataclass(frozen=True, slots=True)
class BlockFormat:
    """Start marker, optional header token after it, end marker."""

    start: str
    end: str
    header: str | None = None

    def check_opening(self, block: str) -> tuple[Opening, int]:
        """Decide early whether `block` (starting with `start`) can be a call.

        Returns the verdict and, when valid, the offset where the JSON payload begins. Only a
        JSON object can be a call, so anything else is released as text without waiting for an
        end marker that may never come.
        """
        pos = _skip_whitespace(block, len(self.start))
        if pos is None:
            return Opening.NOT_A_CALL, 0
        if self.header is not None:
            rest = block[pos : pos + len(self.header)]
            if could_become(rest, self.header):
                return Opening.NEED_MORE, 0
            if rest != self.header:
                return Opening.NOT_A_CALL, 0
            pos = _skip_whitespace(block, pos + len(self.header))
            if pos is None:
                return Opening.NOT_A_CALL, 0
        if pos >= len(block):
            return Opening.NEED_MORE, 0
        if block[pos] != "{":
            return Opening.NOT_A_CALL, 0
        return Opening.VALID, pos

    def wrap(self, payload: str) -> str:
        """A well-formed block around `payload` (used when a stop string ate the end marker)."""
        header = self.header or ""
        return f"{self.start}{header}{payload}{self.end}"


ACTION_FORMAT = BlockFormat(formats.ACTION_START, formats.ACTION_END, formats.PLUGIN)
QWEN_FORMAT = BlockFormat(formats.TOOL_CALL_START, formats.TOOL_CALL_END)
ALL_FORMATS: tuple[BlockFormat, ...] = (ACTION_FORMAT, QWEN_FORMAT)


def _skip_whitespace(text: str, pos: int) -> int | None:
    """Position after a whitespace run, or None when the run is longer than allowed."""
    limit = pos + MAX_OPENING_GAP
    while pos < len(text) and text[pos] in WHITESPACE:
        if pos == limit:
            return None
        pos += 1
    return pos


class OpenBlock:
    """A block being received: appends are O(1) and the end-marker search reads only new text.

    Keeping the block in one growing string would copy it on every streamed token, which makes a
    long call quadratic.
    """

    def __init__(self, fmt: BlockFormat, text: str) -> None:
        self.fmt = fmt
        self._parts = [text]
        self.payload_start = 0  # set once the opening is accepted
        self._window = ""  # text not yet searched, plus a tail that may hold a split marker
        self._window_start = 0

    def append(self, text: str) -> None:
        self._parts.append(text)
        if self.payload_start:
            self._window += text

    def text(self) -> str:
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0]

    def check_opening(self) -> Opening:
        verdict, payload_start = self.fmt.check_opening(self.text())
        if verdict is Opening.VALID:
            self.payload_start = self._window_start = payload_start
            self._window = self.text()[payload_start:]
        return verdict

    def find(self, markers: tuple[str, ...]) -> tuple[int, str] | None:
        """Earliest of `markers` after the payload start, as (position in block, marker)."""
        best: tuple[int, str] | None = None
        for marker in markers:
            pos = self._window.find(marker)
            if pos >= 0 and (best is None or pos < best[0]):
                best = (pos, marker)
        if best is not None:
            return self._window_start + best[0], best[1]
        keep = max(len(m) for m in markers) - 1
        cut = max(0, len(self._window) - keep)
        self._window = self._window[cut:]
        self._window_start += cut
        return None


def _reject_constant(name: str) -> None:
    raise ValueError(f"non-standard JSON constant {name}")


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _too_deep(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text nests deeper than `limit` (brackets inside strings do not count)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for bracket in _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > limit:
            return True
    return False


def _on_fresh_stack(function: Callable[[], object]) -> object:
    """`function()`, retried on a new thread if it ran out of recursion depth here.

    Before Python 3.12 the JSON codec's recursion counts against the interpreter's frame limit,
    so a call nested a few hundred levels would decode for a shallow caller and not for a deep
    one. A new thread starts with an empty recursion count, so the verdict depends on the text
    alone (nesting is already bounded by MAX_JSON_DEPTH). Only that rare retry costs a thread.
    """
    try:
        return function()
    except RecursionError:
        pass
    outcome: list[object] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(function())
        except BaseException as error:  # handed to the caller's thread below
            failure.append(error)

    worker = threading.Thread(target=run, name="interns1-json-decode")
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
    return outcome[0]


def _loads(text: str) -> object:
    """Strict JSON: no NaN/Infinity literals, bounded nesting; ValueError otherwise."""
    if _too_deep(text):
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return _on_fresh_stack(lambda: json.loads(text, parse_constant=_reject_constant))


def _dumps(value: object) -> str:
    """JSON text a client can decode and encode as UTF-8; ValueError otherwise.

    Numbers too large for a float (1e400) decode to infinity, and escapes of lone surrogates
    (\\ud800) decode to strings UTF-8 cannot hold: neither has a faithful JSON rendering.
    """
    text = _on_fresh_stack(lambda: json.dumps(value, ensure_ascii=False, allow_nan=False))
    assert isinstance(text, str)
    text.encode("utf-8")  # UnicodeEncodeError is a ValueError
    return text


def decode_call(payload: str) -> ToolCall | None:
    """The call a payload describes, or None when it is not a well-formed call."""
    try:
        obj = _loads(payload)
    except (ValueError, RecursionError):
        return None
    return call_from_object(obj)


def call_from_object(obj: object) -> ToolCall | None:
    """The call a decoded JSON value describes, or None when it is not a well-formed call.

    Accepts `parameters` or `arguments`; arguments given as a JSON string holding an object are
    unwrapped. Anything that would hand a client non-object or non-standard JSON (NaN, arrays,
    bare strings) is not a call, so the caller keeps the text instead.
    """
    if not isinstance(obj, dict):
        return None
    name = obj.get("name")
    if not isinstance(name, str) or not name or not _encodable(name):
        return None
    args: object = {}
    for key in formats.ARGUMENT_KEYS:
        if key in obj:
            args = obj[key]
            break
    if args is None:
        args = {}
    if isinstance(args, str):
        try:
            args = _loads(args)
        except (ValueError, RecursionError):
            return None
    if not isinstance(args, dict):
        return None
    try:
        arguments = _dumps(args)
    except (ValueError, RecursionError):
        return None
    return ToolCall(name=name, arguments=arguments)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def decode_forced_calls(text: str, function_name: str | None = None) -> list[ToolCall] | None:
    """Calls written under an engine's tool-choice grammar instead of the model's own format.

    With `tool_choice="required"` engines constrain the output to a JSON array of
    `{"name", "parameters"}` objects; with a named function, to that function's arguments
    object. None when the text is not that (truncated, say), so the caller keeps it as content.
    """
    try:
        value = _loads(text)
    except (ValueError, RecursionError):
        return None
    if function_name is not None:
        call = call_from_object({"name": function_name, "parameters": value})
        return [call] if call is not None else None
    if not isinstance(value, list) or not value:
        return None
    calls = [call_from_object(item) for item in value]
    return None if any(call is None for call in calls) else calls  # type: ignore[return-value]
