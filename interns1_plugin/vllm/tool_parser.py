"""vLLM `--tool-call-parser intern-s1`: the core `ToolCallExtractor` behind vLLM's interface.

Reads both the Intern-S1 action format and Pro's `<tool_call>` format. Engine-based streaming:
vLLM hands over deltas and calls `finish_streaming()` at the end, which is where a truncated call
comes back as text and a call whose end tag was eaten by a stop string is still returned.

`tool_choice="required"` and named functions: vLLM constrains the output to its tool-choice JSON
and, for parsers that declare support, parses it itself; its streaming version of that reads the
accumulated text, which vLLM never keeps for engine-based parsers (every call would be lost). So
this parser declares no support, applies the same JSON-schema constraint in `adjust_request`, and
decodes the constrained output itself, streaming and not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vllm.entrypoints.generate.base.protocol import (
    DeltaMessage,
    ExtractedToolCallInformation,
)
from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
from vllm.sampling_params import StructuredOutputsParams
from vllm.tool_parsers.abstract_tool_parser import ToolParser
from vllm.tool_parsers.utils import get_json_schema_from_tools

from interns1_plugin.parsers.call_formats import decode_forced_calls
from interns1_plugin.parsers.events import ParsedDelta
from interns1_plugin.parsers.events import ToolCall as CoreToolCall
from interns1_plugin.parsers.tool_calls import ToolCallExtractor, extract_tool_calls
from interns1_plugin.vllm.tool_calls import to_delta_tool_calls, to_tool_calls

if TYPE_CHECKING:
    from vllm.entrypoints.openai.responses.protocol import ResponsesRequest
    from vllm.tokenizers import TokenizerLike
    from vllm.tool_parsers.abstract_tool_parser import Tool

#: How a request's tool choice is read: the model's own format, or vLLM's forced JSON.
_OWN_FORMAT = ("own",)


def forced_choice(request: Any) -> tuple[str, ...]:
    """`("own",)` for auto/none; `("required",)`; or `("named", function_name)`."""
    choice = getattr(request, "tool_choice", None)
    if choice == "required":
        return ("required",)
    function = getattr(choice, "function", None)
    name = getattr(function, "name", None) or getattr(choice, "name", None)
    if isinstance(name, str) and not isinstance(choice, str):
        return ("named", name)
    return _OWN_FORMAT


class InternS1ToolParser(ToolParser):
    engine_based_streaming = True
    supports_required_and_named = False

    def __init__(self, tokenizer: TokenizerLike, tools: list[Tool] | None = None) -> None:
        super().__init__(tokenizer, tools)
        self._extractor = ToolCallExtractor()
        self._calls_allowed = True
        self._choice: tuple[str, ...] = _OWN_FORMAT
        self._forced_parts: list[str] = []

    def adjust_request(
        self, request: ChatCompletionRequest | ResponsesRequest
    ) -> ChatCompletionRequest | ResponsesRequest:
        """Keep the action markers in the text; constrain required / named choices to JSON."""
        request = super().adjust_request(request)
        if not request.tools:
            return request
        if hasattr(request, "skip_special_tokens"):
            request.skip_special_tokens = False
            request.spaces_between_special_tokens = False
        if not isinstance(request, ChatCompletionRequest):
            return request
        existing = request.structured_outputs
        if forced_choice(request) != _OWN_FORMAT and (
            existing is None or not existing.structural_tag
        ):
            schema = get_json_schema_from_tools(
                request.tool_choice, request.tools, request.parallel_tool_calls
            )
            if schema is not None:
                request.structured_outputs = StructuredOutputsParams(json=schema)
                request.response_format = None
        return request

    def extract_tool_calls(
        self, model_output: str, request: ChatCompletionRequest
    ) -> ExtractedToolCallInformation:
        choice = forced_choice(request)
        if choice != _OWN_FORMAT:
            forced = self._decode_forced(model_output, choice)
            if forced is None:
                return ExtractedToolCallInformation(
                    tools_called=False, tool_calls=[], content=model_output or None
                )
            return ExtractedToolCallInformation(
                tools_called=True, tool_calls=to_tool_calls(forced), content=None
            )
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
        self._choice = forced_choice(request)
        if self._choice != _OWN_FORMAT:
            # Forced JSON is one value: it is decoded whole when the stream ends.
            self._forced_parts.append(delta_text)
            return None
        return self._to_delta(self._extractor.feed(delta_text))

    def finish_streaming(self) -> DeltaMessage | None:
        if self._choice != _OWN_FORMAT:
            text = "".join(self._forced_parts)
            self._forced_parts = []
            forced = self._decode_forced(text, self._choice)
            step = ParsedDelta(content=text) if forced is None else ParsedDelta(tool_calls=forced)
            return self._to_delta(step)
        step = self._extractor.finish()
        if not self._calls_allowed:
            step.tool_calls = []
        return self._to_delta(step)

    @staticmethod
    def _decode_forced(text: str, choice: tuple[str, ...]) -> list[CoreToolCall] | None:
        name = choice[1] if choice[0] == "named" else None
        return decode_forced_calls(text.strip(), name)

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
