"""LMDeploy `--tool-call-parser intern-s1`.

Under the plugin's `InternS1ResponseParser` (what `api_server` uses once the plugin is
registered) this class only prepares the request: it keeps the action markers, which are special
tokens, in the detokenised text, and never filters calls by the request's tool list. The whole
output is then parsed by the plugin's core.

It also implements LMDeploy 0.18's streaming block interface, for the case where LMDeploy's own
`BaseResponseParser` drives it (e.g. beside another engine's reasoning parser). That state machine
knows a single open tag and can only turn a block into tool-call deltas, so there the parser reads
action blocks only, and a block that is not a valid call is dropped instead of returned as text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lmdeploy.serve.parsers.tool_parser import ToolParser
from lmdeploy.serve.parsers.tool_parser.internlm2_tool_parser import Internlm2ToolParser

from interns1_plugin import formats
from interns1_plugin.parsers import ACTION_FORMAT, ToolCall, decode_call
from interns1_plugin.parsers.call_formats import Opening

if TYPE_CHECKING:
    from lmdeploy.serve.openai.protocol import ChatCompletionRequest, DeltaToolCall, Tool


def decode_action_block(block: str) -> ToolCall | None:
    """The call in `<|action_start|>...` (end marker excluded), or None if it is not one."""
    verdict, payload_start = ACTION_FORMAT.check_opening(block)
    if verdict is not Opening.VALID:
        return None
    return decode_call(block[payload_start:])


class InternS1ToolParser(ToolParser):
    """Request preparation for the core parser, plus LMDeploy's block interface as a fallback."""

    @classmethod
    def get_tool_open_tag(cls) -> str:
        # Only the first marker: `<|plugin|>` may follow after whitespace, and is checked here.
        return formats.ACTION_START

    @classmethod
    def get_tool_close_tag(cls) -> str:
        return formats.ACTION_END

    def adjust_request(self, request: ChatCompletionRequest) -> ChatCompletionRequest:
        """Keep special tokens when tools are on, and accept calls to any tool name.

        The model calls tools it was not offered too; dropping those calls would silently lose
        the model's turn, so the client gets them and decides.
        """
        if request.tools and request.tool_choice != "none":
            request = request.model_copy(
                update={"skip_special_tokens": False, "spaces_between_special_tokens": False}
            )
        request = super().adjust_request(request)
        self._allowed_tool_names = None
        return request

    @classmethod
    def build_required_response_format(
        cls, tools: list[Tool], *, reasoning: bool
    ) -> dict[str, Any]:
        """`tool_choice="required"`: LMDeploy's grammar for the action format fits Intern-S1."""
        return Internlm2ToolParser.build_required_response_format(tools, reasoning=reasoning)

    # -- LMDeploy 0.18 block interface (used only under LMDeploy's BaseResponseParser) ---------
    def begin_tool_block(self) -> None:
        super().begin_tool_block()
        self._begin_call()

    def _consume_stream_payload(
        self, text: str, deltas: list[DeltaToolCall], *, final: bool
    ) -> int:
        """Hold the block until its end marker (or the end of output), then emit it whole."""
        end = text.find(formats.ACTION_END)
        if end < 0 and not final:
            return 0
        payload_end = len(text) if end < 0 else end
        call = decode_action_block(formats.ACTION_START + text[:payload_end])
        if call is not None:
            self._emit_delta(deltas, name=call.name, arguments=call.arguments)
        self._payload_closed = True
        return payload_end
