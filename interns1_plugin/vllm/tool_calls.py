"""Core `ToolCall` events to vLLM's OpenAI tool-call types."""

from __future__ import annotations

from collections.abc import Iterable

from vllm.entrypoints.generate.base.protocol import (
    DeltaFunctionCall,
    DeltaToolCall,
    FunctionCall,
    ToolCall,
)
from vllm.renderers.chat_utils import make_tool_call_id

from interns1_plugin.parsers.events import ToolCall as CoreToolCall


def to_delta_tool_calls(calls: Iterable[CoreToolCall], *, first_index: int) -> list[DeltaToolCall]:
    """Each call whole in one delta: id, name and the complete arguments together."""
    return [
        DeltaToolCall(
            index=first_index + offset,
            id=make_tool_call_id(),
            type="function",
            function=DeltaFunctionCall(name=call.name, arguments=call.arguments),
        )
        for offset, call in enumerate(calls)
    ]


def to_tool_calls(calls: Iterable[CoreToolCall]) -> list[ToolCall]:
    return [
        ToolCall(function=FunctionCall(name=call.name, arguments=call.arguments)) for call in calls
    ]
