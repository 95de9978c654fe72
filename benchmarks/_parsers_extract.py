"""What a parser pair extracted from a stream, and whether it is what the sample holds.

A fast parser that extracts the wrong call is no result, so every timed pair is also checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from _parsers_samples import TOOL_NAME, Sample


@dataclass
class Extracted:
    """A stream's deltas joined per channel, the way a client assembles them."""

    reasoning_parts: list[str] = field(default_factory=list)
    content_parts: list[str] = field(default_factory=list)
    calls: dict[int, list[str]] = field(default_factory=dict)  # index -> [name, arguments]

    @property
    def reasoning(self) -> str:
        return "".join(self.reasoning_parts)

    @property
    def content(self) -> str:
        return "".join(self.content_parts)

    def add(self, reasoning: str | None, content: str | None, tool_calls: Any) -> None:
        if reasoning:
            self.reasoning_parts.append(reasoning)
        if content:
            self.content_parts.append(content)
        for call in tool_calls or ():
            function = call.function
            if isinstance(function, dict):
                name, arguments = function.get("name"), function.get("arguments")
            elif function is not None:
                name, arguments = function.name, function.arguments
            else:
                name = arguments = None
            slot = self.calls.setdefault(call.index, ["", ""])
            if name and not slot[0]:
                slot[0] = name
            slot[1] += arguments or ""


def check(sample: Sample, got: Extracted) -> str:
    """'ok', or 'wrong: <first problem>' (the call first: that is what a client acts on)."""
    calls = [got.calls[i] for i in sorted(got.calls)]
    if len(calls) != 1:
        return f"wrong: {len(calls)} tool calls"
    name, arguments = calls[0]
    if name != TOOL_NAME:
        return f"wrong: tool name {name!r}"
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return f"wrong: arguments not JSON ({len(arguments)} chars)"
    if parsed != sample.arguments:
        return "wrong: arguments differ"
    if got.reasoning.strip() != sample.reasoning.strip():
        return "wrong: reasoning differs"
    content = got.content.strip()
    if content != sample.answer.strip():
        return f"wrong: content {content[:40]!r}"
    return "ok"
