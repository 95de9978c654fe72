"""What the parser state machines hand to the engine adapters: plain data, no engine types."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One complete tool call; `arguments` is the JSON text of an object."""

    name: str
    arguments: str


@dataclass(slots=True)
class ParsedDelta:
    """What one streamed step (or the end of the stream) adds to each channel."""

    reasoning: str = ""
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.reasoning or self.content or self.tool_calls)

    def extend(self, other: ParsedDelta) -> None:
        self.reasoning += other.reasoning
        self.content += other.content
        self.tool_calls.extend(other.tool_calls)


@dataclass(slots=True)
class ParsedOutput:
    """A whole response split into channels.

    `reasoning` is None when thinking is off (the response has no reasoning channel at all).
    """

    reasoning: str | None
    content: str
    tool_calls: list[ToolCall]
