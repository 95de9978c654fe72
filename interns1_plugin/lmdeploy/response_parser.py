"""LMDeploy's per-request response parser, with intern-s1 output parsed by the plugin's core.

LMDeploy 0.18's `api_server` always builds the response parser registered as `default` and
hands it every engine step (`stream_chunk`) or the whole output (`parse_complete`). Its state
machine knows one tool open tag and can only turn a tool block into tool-call deltas, so it
cannot read both Intern-S1 call formats, markers with a space between them, or give back a broken
block as text. This subclass is registered as `default`: it behaves exactly like LMDeploy's own
parser unless the configured parsers are intern-s1's, and then runs `InternS1OutputParser`
instead, the same state machine for streaming and complete responses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import shortuuid
from lmdeploy.serve.openai.protocol import DeltaFunctionCall, DeltaMessage, DeltaToolCall
from lmdeploy.serve.parsers.response_parser import BaseResponseParser

from interns1_plugin import formats
from interns1_plugin.lmdeploy.reasoning_parser import InternS1ReasoningParser
from interns1_plugin.lmdeploy.tool_parser import InternS1ToolParser
from interns1_plugin.parsers import InternS1OutputParser, ParsedDelta, ToolCall

if TYPE_CHECKING:
    from lmdeploy.serve.openai.protocol import ChatCompletionRequest

StreamDeltas = list[tuple[DeltaMessage, bool]]
THINK_TAGS = (formats.THINK_START, formats.THINK_END)


def to_delta_tool_calls(calls: Iterable[ToolCall], *, first_index: int) -> list[DeltaToolCall]:
    """Each call whole in one delta: id, name and complete arguments together."""
    return [
        DeltaToolCall(
            id=f"chatcmpl-tool-{shortuuid.random()}",
            index=first_index + offset,
            type="function",
            function=DeltaFunctionCall(name=call.name, arguments=call.arguments),
        )
        for offset, call in enumerate(calls)
    ]


class InternS1ResponseParser(BaseResponseParser):
    """LMDeploy's default response parser, routing intern-s1 responses through the core."""

    def __init__(self, request: ChatCompletionRequest) -> None:
        # LMDeploy's setup stays: request adjustment, tool_choice checks, reasoning-token usage.
        super().__init__(request)
        self._core_options = self._core_options_for_request()
        self._core = self._new_core()
        self._calls_emitted = 0

    def _core_options_for_request(self) -> tuple[bool, bool] | None:
        """(thinking, parse_tools) when the core parses this response, else None.

        The core is used when the tool parser is ours (or absent) and the reasoning parser is
        ours, absent, or LMDeploy's generic one with the same `<think>` tags.
        """
        tool_ours = isinstance(self.tool_parser, InternS1ToolParser)
        reasoning_ours = isinstance(self.reasoning_parser, InternS1ReasoningParser)
        if self.tool_parser is not None and not tool_ours:
            return None
        tags = (self._reasoning_open_tag, self._reasoning_close_tag)
        if self.reasoning_parser is not None and not reasoning_ours and tags != THINK_TAGS:
            return None
        if not (tool_ours or reasoning_ours):
            return None
        parse_tools = tool_ours and self.request.tool_choice != "none"
        # Ours follows the plugin's rule (`enable_thinking` only, None = on), as the prompt does.
        thinking = self.reasoning_parser.thinking if reasoning_ours else self.reasoning_enabled
        return thinking, parse_tools

    def _new_core(self) -> InternS1OutputParser | None:
        if self._core_options is None:
            return None
        thinking, parse_tools = self._core_options
        return InternS1OutputParser(thinking=thinking, parse_tools=parse_tools)

    def stream_chunk(
        self, delta_text: str, delta_token_ids: list[int], **kwargs: Any
    ) -> StreamDeltas:
        if self._core is None:
            return super().stream_chunk(delta_text, delta_token_ids, **kwargs)
        self._update_reasoning_tokens(delta_token_ids)
        if not delta_text and not delta_token_ids and not self._received_any_text:
            # LMDeploy's contract: a leading empty engine step is a visible empty delta.
            return [(DeltaMessage(role="assistant", content=""), False)]
        if delta_text:
            self._received_any_text = True
        step = self._core.feed(delta_text)
        if kwargs.get("final", False):
            step.extend(self._core.finish())
        return self._to_stream_deltas(step)

    def parse_complete(
        self, text: str, token_ids: list[int] | None = None, **kwargs: Any
    ) -> tuple[str | None, list | None, str | None]:
        """LMDeploy's own implementation (one final `stream_chunk`), on a fresh core."""
        self._core = self._new_core()
        self._calls_emitted = 0
        return super().parse_complete(text, token_ids, **kwargs)

    def _to_stream_deltas(self, step: ParsedDelta) -> StreamDeltas:
        out: StreamDeltas = []
        if step.reasoning:
            out.append((DeltaMessage(role="assistant", reasoning_content=step.reasoning), False))
        if step.content:
            out.append((DeltaMessage(role="assistant", content=step.content), False))
        if step.tool_calls:
            calls = to_delta_tool_calls(step.tool_calls, first_index=self._calls_emitted)
            self._calls_emitted += len(calls)
            out.append((DeltaMessage(role="assistant", tool_calls=calls), True))
        return out
