"""vLLM `--tool-call-parser intern-s1`: the core `ToolCallExtractor` behind vLLM's interface.

Reads both the Intern-S1 action format and Pro's `<tool_call>` format. Engine-based streaming:
vLLM hands over deltas and calls `finish_streaming()` at the end, which is where a truncated call
comes back as text and a call whose end tag was eaten by a stop string is still returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from vllm.entrypoints.generate.base.protocol import (
    DeltaMessage,
    ExtractedToolCallInformation,
)
from vllm.tool_parsers.abstract_tool_parser import ToolParser

from interns1_plugin.parsers.events import ParsedDelta
from interns1_plugin.parsers.tool_calls import ToolCallExtractor, extract_tool_calls
from interns1_plugin.vllm.tool_calls import to_delta_tool_calls, to_tool_calls

if TYPE_CHECKING:
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
    from vllm.entrypoints.openai.responses.protocol import ResponsesRequest
    from vllm.tokenizers import TokenizerLike
    from vllm.tool_parsers.abstract_tool_parser import Tool


class InternS1ToolParser(ToolParser):
    engine_based_streaming = True

    def __init__(self, tokenizer: TokenizerLike, tools: list[Tool] | None = None) -> None:
        super().__init__(tokenizer, tools)
        self._extractor = ToolCallExtractor()
        self._calls_allowed = True

    def adjust_request(
        self, request: ChatCompletionRequest | ResponsesRequest
    ) -> ChatCompletionRequest | ResponsesRequest:
        """The action markers are special tokens: keep them in the text the parser reads."""
        request = super().adjust_request(request)
        if request.tools and hasattr(request, "skip_special_tokens"):
            request.skip_special_tokens = False
            request.spaces_between_special_tokens = False
        return request

    def extract_tool_calls(
        self, model_output: str, request: ChatCompletionRequest
    ) -> ExtractedToolCallInformation:
        content, calls = extract_tool_calls(model_output)
        return ExtractedToolCallInformation(
            tools_called=bool(calls), tool_calls=to_tool_calls(calls), content=content or None
        )

    def extract_tool_calls_streaming(
        self,
        previous_text: str,
        current_text: str,
        delta_text: str,
        previous_token_ids: Sequence[int],
        current_token_ids: Sequence[int],
        delta_token_ids: Sequence[int],
        request: ChatCompletionRequest,
    ) -> DeltaMessage | None:
        # vLLM strips calls from streamed deltas under tool_choice "none", but not from the
        # end-of-stream flush: remember the choice for `finish_streaming`.
        self._calls_allowed = getattr(request, "tool_choice", None) != "none"
        return self._to_delta(self._extractor.feed(delta_text))

    def finish_streaming(self) -> DeltaMessage | None:
        step = self._extractor.finish()
        if not self._calls_allowed:
            step.tool_calls = []
        return self._to_delta(step)

    def _to_delta(self, step: ParsedDelta) -> DeltaMessage | None:
        if not step.content and not step.tool_calls:
            return None
        first_index = len(self.prev_tool_call_arr)
        for call in step.tool_calls:
            # Kept so vLLM's "remaining arguments" bookkeeping sees every argument as streamed.
            self.prev_tool_call_arr.append({"name": call.name, "arguments": call.arguments})
            self.streamed_args_for_tool.append(call.arguments)
        self.current_tool_id = len(self.prev_tool_call_arr) - 1
        return DeltaMessage(
            content=step.content or None,
            tool_calls=to_delta_tool_calls(step.tool_calls, first_index=first_index),
        )
