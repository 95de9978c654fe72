"""Streaming split of model output into reasoning and content.

The Intern-S1 prompt already ends in `<think>` when thinking is on, so the output usually starts
inside the reasoning with no opening tag (an explicit `<think>` is accepted and dropped) and
switches to content at `</think>`. With thinking off there is no reasoning channel at all.

The model sometimes emits tool-call blocks inside its reasoning. Those are taken out of the
reasoning and held; at `</think>` they are handed on as raw blocks at the start of the content, so
the tool-call extractor downstream turns them into calls. If the stream ends with reasoning still
open, `finish()` returns them as decoded calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from interns1_plugin import formats
from interns1_plugin.parsers.call_formats import (
    ALL_FORMATS,
    BlockFormat,
    Opening,
    decode_call,
)
from interns1_plugin.parsers.events import ToolCall
from interns1_plugin.parsers.markers import WHITESPACE, MarkerScanner, could_become


@dataclass(slots=True)
class SplitDelta:
    reasoning: str = ""
    content: str = ""
    #: Calls held from inside the reasoning, returned only by `finish()` while reasoning is open.
    tool_calls: list[ToolCall] = field(default_factory=list)


class ReasoningSplitter:
    """Reasoning/content splitter, linear in the output length."""

    def __init__(
        self,
        *,
        thinking: bool = True,
        extract_calls: bool = True,
        block_formats: tuple[BlockFormat, ...] = ALL_FORMATS,
    ) -> None:
        self.thinking = thinking
        self.reasoning_ended = not thinking
        # Without tool parsing, call blocks inside reasoning are just reasoning text.
        self._formats = {f.start: f for f in block_formats} if extract_calls else {}
        self._scanner = MarkerScanner([formats.THINK_END, *self._formats])
        self._buffer = ""
        # 0: an explicit `<think>` may come; 1: one leading newline may come; 2: in the body.
        self._opening_phase = 0
        self._held_newline = False  # one trailing "\n" of reasoning, dropped if reasoning ends
        self._block: BlockFormat | None = None
        self._payload_start = 0
        self._end_search_from = 0
        self._held_blocks: list[tuple[str, ToolCall]] = []
        self._strip_content_start = True

    # -- public API -------------------------------------------------------------------------
    def feed(self, text: str) -> SplitDelta:
        out = SplitDelta()
        if self.reasoning_ended:
            out.content = self._content(text)
            return out
        self._buffer += text
        while not self.reasoning_ended and self._step(out, final=False):
            pass
        if self.reasoning_ended and self._buffer:
            out.content += self._content(self._buffer)
            self._buffer = ""
        return out

    def finish(self, *, held_calls_as_content: bool = False) -> SplitDelta:
        """End of stream: close an open reasoning and release the calls it held.

        Held calls come back decoded in `tool_calls`, or, with `held_calls_as_content`, as raw
        blocks in `content` for a downstream tool parser.
        """
        out = SplitDelta()
        if not self.reasoning_ended:
            while not self.reasoning_ended and self._step(out, final=True):
                pass
            if self.reasoning_ended:
                out.content += self._content(self._buffer)
                self._buffer = ""
        if held_calls_as_content:
            out.content = "".join(raw for raw, _ in self._held_blocks) + out.content
        else:
            out.tool_calls = [call for _, call in self._held_blocks]
        self._held_blocks = []
        self._held_newline = False
        return out

    # -- state machine ----------------------------------------------------------------------
    def _step(self, out: SplitDelta, *, final: bool) -> bool:
        """Advance once; False when more input is needed (or, with `final`, when done)."""
        if self._opening_phase < 2:
            return self._consume_opening(final)
        if self._block is not None:
            return self._advance_block(out, final)
        found = self._scanner.search(self._buffer)
        if found is None:
            keep = 0 if final else self._scanner.partial_suffix(self._buffer)
            cut = len(self._buffer) - keep
            self._emit_reasoning(self._buffer[:cut], out)
            self._buffer = self._buffer[cut:]
            return False
        pos, marker = found
        self._emit_reasoning(self._buffer[:pos], out)
        self._buffer = self._buffer[pos:]
        if marker == formats.THINK_END:
            self._buffer = self._buffer[len(marker) :]
            self._end_reasoning(out)
            return False
        self._block = self._formats[marker]
        self._payload_start = 0
        return True

    def _consume_opening(self, final: bool) -> bool:
        text = self._buffer
        if self._opening_phase == 0:
            head = text.lstrip(WHITESPACE)
            if not final and (not head or could_become(head, formats.THINK_START)):
                return False
            if head.startswith(formats.THINK_START):
                self._buffer = head[len(formats.THINK_START) :]
            self._opening_phase = 1
            return True
        if not text and not final:
            return False
        if text.startswith("\n"):
            self._buffer = text[1:]
        self._opening_phase = 2
        return True

    def _advance_block(self, out: SplitDelta, final: bool) -> bool:
        fmt, block = self._block, self._buffer
        assert fmt is not None
        if self._payload_start == 0:
            verdict, payload_start = fmt.check_opening(block)
            if verdict is Opening.NEED_MORE and not final:
                return False
            if verdict is not Opening.VALID:
                self._emit_reasoning(fmt.start, out)
                self._buffer = block[len(fmt.start) :]
                self._block = None
                return True
            self._payload_start = payload_start
            self._end_search_from = payload_start
        # A block inside reasoning ends at its end marker, or unterminated at `</think>`.
        end = block.find(fmt.end, self._end_search_from)
        think_end = block.find(formats.THINK_END, self._end_search_from)
        if think_end >= 0 and (end < 0 or think_end < end):
            self._close_block(block[:think_end], terminated=False, out=out)
            self._buffer = block[think_end:]
            return True
        if end >= 0:
            self._close_block(block[: end + len(fmt.end)], terminated=True, out=out)
            self._buffer = block[end + len(fmt.end) :]
            return True
        if final:
            self._close_block(block, terminated=False, out=out)
            self._buffer = ""
            return False
        longest = max(len(fmt.end), len(formats.THINK_END))
        self._end_search_from = max(self._end_search_from, len(block) - longest + 1)
        return False

    def _close_block(self, block: str, *, terminated: bool, out: SplitDelta) -> None:
        fmt = self._block
        assert fmt is not None
        self._block = None
        payload_end = len(block) - len(fmt.end) if terminated else len(block)
        payload = block[self._payload_start : payload_end]
        call = decode_call(payload)
        if call is None:
            self._emit_reasoning(block, out)
            return
        raw = block if terminated else fmt.wrap(payload)
        self._held_blocks.append((raw, call))

    def _end_reasoning(self, out: SplitDelta) -> None:
        self.reasoning_ended = True
        self._held_newline = False
        if self._held_blocks:
            # Content starts with the held calls; what follows them is kept as written.
            out.content += "".join(raw for raw, _ in self._held_blocks)
            self._held_blocks = []
            self._strip_content_start = False

    # -- output -----------------------------------------------------------------------------
    def _emit_reasoning(self, text: str, out: SplitDelta) -> None:
        if not text:
            return
        if self._held_newline:
            out.reasoning += "\n"
            self._held_newline = False
        if text.endswith("\n"):
            text = text[:-1]
            self._held_newline = True
        out.reasoning += text

    def _content(self, text: str) -> str:
        """Content right after `</think>` loses its leading whitespace (the model's blank line)."""
        if self.thinking and self._strip_content_start:
            text = text.lstrip(WHITESPACE)
            if not text:
                return ""
            self._strip_content_start = False
        return text


def split_reasoning(text: str, *, thinking: bool = True) -> tuple[str | None, str, list[ToolCall]]:
    """Non-streaming: reasoning (None when thinking is off), content, calls held in reasoning."""
    splitter = ReasoningSplitter(thinking=thinking)
    result = splitter.feed(text)
    tail = splitter.finish()
    reasoning = result.reasoning + tail.reasoning if thinking else None
    return reasoning, result.content + tail.content, tail.tool_calls
