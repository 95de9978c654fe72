"""The two tool-call block formats of the Intern-S1 family and how a block's payload is decoded.

Intern-S1 / mini:  <|action_start|><|plugin|>\\n{"name": ..., "parameters": {...}}\\n<|action_end|>
                   (whitespace allowed between the markers: detokenizers may put a space there)
Intern-S1-Pro:     <tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

from interns1_plugin import formats
from interns1_plugin.parsers.events import ToolCall
from interns1_plugin.parsers.markers import WHITESPACE, could_become


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
        if self.header is not None:
            rest = block[pos:]
            if could_become(rest, self.header):
                return Opening.NEED_MORE, 0
            if not rest.startswith(self.header):
                return Opening.NOT_A_CALL, 0
            pos = _skip_whitespace(block, pos + len(self.header))
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
FORMAT_BY_START = {f.start: f for f in ALL_FORMATS}


def _skip_whitespace(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in WHITESPACE:
        pos += 1
    return pos


def _reject_constant(name: str) -> None:
    raise ValueError(f"non-standard JSON constant {name}")


def decode_call(payload: str) -> ToolCall | None:
    """The call a payload describes, or None when it is not a well-formed call.

    Accepts `parameters` or `arguments`; arguments given as a JSON string holding an object are
    unwrapped. Anything that would hand a client non-object or non-standard JSON (NaN, arrays,
    bare strings) is not a call, so the caller keeps the text instead.
    """
    try:
        obj = json.loads(payload, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    name = obj.get("name")
    if not isinstance(name, str) or not name:
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
            args = json.loads(args, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            return None
    if not isinstance(args, dict):
        return None
    try:
        arguments = json.dumps(args, ensure_ascii=False)
    except (ValueError, RecursionError):
        return None
    return ToolCall(name=name, arguments=arguments)
