"""vLLM `--reasoning-parser intern-s1`: the core `ReasoningSplitter` behind vLLM's interface.

Declares `engine_based_streaming` so vLLM feeds deltas (not the re-joined output) and flushes the
parser at end of stream; decides the `</think>` transition from its own text state, because
prompt ids may be missing and `parse()` never sees the prompt. Calls found inside the reasoning
are handed on as content at the transition, so vLLM passes them to the tool parser first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vllm.entrypoints.generate.base.protocol import DeltaMessage
from vllm.reasoning.abs_reasoning_parsers import ReasoningParser

from interns1_plugin import formats
from interns1_plugin.parsers.reasoning import ReasoningSplitter
from interns1_plugin.thinking import thinking_enabled
from interns1_plugin.vllm.tool_calls import to_delta_tool_calls

if TYPE_CHECKING:
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
    from vllm.entrypoints.openai.responses.protocol import ResponsesRequest
    from vllm.tokenizers import TokenizerLike


class InternS1ReasoningParser(ReasoningParser):
    engine_based_streaming = True

    def __init__(self, tokenizer: TokenizerLike, *args: Any, **kwargs: Any) -> None:
        super().__init__(tokenizer, *args, **kwargs)
        self.thinking = thinking_enabled(kwargs.get("chat_template_kwargs"))
        self._splitter = ReasoningSplitter(thinking=self.thinking)
        self._content_started = False
        self._calls_allowed = True
        vocab = self.vocab if tokenizer is not None else {}
        self._start_id: int | None = vocab.get(formats.THINK_START)
        self._end_id: int | None = vocab.get(formats.THINK_END)

    @property
    def reasoning_start_str(self) -> str:
        return formats.THINK_START

    @property
    def reasoning_end_str(self) -> str:
        return formats.THINK_END

    # -- token-id view (structured outputs, prompt check) ------------------------------------
    def is_reasoning_end(self, input_ids: Sequence[int]) -> bool:
        if not self.thinking:
            return True
        for token_id in reversed(input_ids):
            if token_id == self._start_id:
                return False
            if token_id == self._end_id:
                return True
        return False

    def is_reasoning_end_streaming(self, input_ids: Sequence[int], delta_ids: Any) -> bool:
        if not self.thinking:
            return True
        return self._end_id is not None and self._end_id in delta_ids

    def extract_content_ids(self, input_ids: list[int]) -> list[int]:
        if not self.thinking or self._end_id is None:
            return input_ids
        for pos in range(len(input_ids) - 1, -1, -1):
            if input_ids[pos] == self._end_id:
                return input_ids[pos + 1 :]
        return []

    def count_reasoning_tokens(self, token_ids: Sequence[int]) -> int:
        if not self.thinking:
            return 0
        for pos, token_id in enumerate(token_ids):
            if token_id == self._end_id:
                return pos
        return len(token_ids)

    # -- text view ---------------------------------------------------------------------------
    def extract_reasoning(
        self, model_output: str, request: ChatCompletionRequest | ResponsesRequest
    ) -> tuple[str | None, str | None]:
        splitter = ReasoningSplitter(thinking=self.thinking)
        result = splitter.feed(model_output)
        tail = splitter.finish(held_calls_as_content=True)
        content = result.content + tail.content
        if not self.thinking:
            return None, content or None
        return result.reasoning + tail.reasoning or None, content or None

    def extract_reasoning_streaming(
        self,
        previous_text: str,
        current_text: str,
        delta_text: str,
        previous_token_ids: Sequence[int],
        current_token_ids: Sequence[int],
        delta_token_ids: Sequence[int],
    ) -> DeltaMessage | None:
        step = self._splitter.feed(delta_text)
        self._content_started = self._content_started or bool(step.content)
        if not step.reasoning and not step.content:
            return None
        return DeltaMessage(reasoning=step.reasoning or None, content=step.content or None)

    def has_engine_confirmed_reasoning_end(self) -> bool:
        """Confirmed once content has begun, not at `</think>` itself.

        After the transition vLLM stops calling this parser; waiting for the first content keeps
        the whitespace the splitter trims after `</think>` from reaching the client as content,
        with or without a tool parser behind it.
        """
        return self._splitter.reasoning_ended and self._content_started

    def get_streaming_fallback_content(
        self, text: str, request: ChatCompletionRequest | ResponsesRequest
    ) -> str | None:
        """vLLM's last call before the end-of-stream flush while reasoning is open.

        It is the only hook that shows this parser the request, so it is where `tool_choice`
        "none" is learnt: calls held in the reasoning must not be returned then.
        """
        self._calls_allowed = getattr(request, "tool_choice", None) != "none"
        return None

    def finish_streaming(self) -> DeltaMessage | None:
        """End of stream before any content: flush the reasoning and return held calls ourselves.

        Called by vLLM at the transition to content too; everything was handed on by then.
        """
        if self._content_started:
            return None
        tail = self._splitter.finish()
        calls = tail.tool_calls if self._calls_allowed else []
        if not tail.reasoning and not calls:
            return None
        return DeltaMessage(
            reasoning=tail.reasoning or None,
            tool_calls=to_delta_tool_calls(calls, first_index=0),
        )
