"""The whole `intern-s1` output grammar: reasoning, content and tool calls, streaming or not.

Engines that drive one parser per response (LMDeploy) use this directly; vLLM composes the two
halves (`ReasoningSplitter`, `ToolCallExtractor`) itself, and its adapters wrap them separately.
Both routes run the same state machines, so every engine gives the same split.
"""

from __future__ import annotations

from interns1_plugin.parsers.events import ParsedDelta, ParsedOutput
from interns1_plugin.parsers.reasoning import ReasoningSplitter
from interns1_plugin.parsers.tool_calls import ToolCallExtractor


class InternS1OutputParser:
    """One response's incremental parser. `parse_tools=False` leaves call blocks as content."""

    def __init__(self, *, thinking: bool = True, parse_tools: bool = True) -> None:
        self.thinking = thinking
        self._splitter = ReasoningSplitter(thinking=thinking, extract_calls=parse_tools)
        self._extractor = ToolCallExtractor() if parse_tools else None

    @property
    def reasoning_ended(self) -> bool:
        return self._splitter.reasoning_ended

    def feed(self, text: str) -> ParsedDelta:
        split = self._splitter.feed(text)
        out = self._route_content(split.content)
        out.reasoning = split.reasoning
        return out

    def finish(self) -> ParsedDelta:
        split = self._splitter.finish()
        out = self._route_content(split.content)
        out.reasoning = split.reasoning
        out.tool_calls.extend(split.tool_calls)
        if self._extractor is not None:
            out.extend(self._extractor.finish())
        return out

    def _route_content(self, content: str) -> ParsedDelta:
        if self._extractor is None:
            return ParsedDelta(content=content)
        return self._extractor.feed(content)


def parse_output(text: str, *, thinking: bool = True, parse_tools: bool = True) -> ParsedOutput:
    """Split a complete response."""
    parser = InternS1OutputParser(thinking=thinking, parse_tools=parse_tools)
    result = parser.feed(text)
    result.extend(parser.finish())
    return ParsedOutput(
        reasoning=result.reasoning if thinking else None,
        content=result.content,
        tool_calls=result.tool_calls,
    )
