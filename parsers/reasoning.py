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
    OpenBlock,
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
        self._block: OpenBlock | None = None
        self._held_blocks: list[tuple[str, ToolCall]] = []
        self._strip_content_start = True

    # -- public API -------------------------------------------------------------------------
    def feed(self, text: str) -> SplitDelta:
        out = SplitDelta()
        if self.reasoning_ended:
            out.content = self._content(text)
            return out
        if self._block is not None:
            self._block.append(text)
        else:
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
        self._block = OpenBlock(self._formats[marker], self._buffer)
        self._buffer = ""
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
        block = self._block
        assert block is not None
        fmt = block.fmt
        if not block.payload_start:
            verdict = block.check_opening()
            if verdict is Opening.NEED_MORE and not final:
                return False
            if verdict is not Opening.VALID:
                self._emit_reasoning(fmt.start, out)
                self._buffer = block.text()[len(fmt.start) :]
                self._block = None
                return True
        # A block inside reasoning ends at its end marker, or unterminated at `</think>`.
        found = block.find((fmt.end, formats.THINK_END))
        if found is None:
            if final:
                self._close_block(block.text(), terminated=False, out=out)
            return False
        text = block.text()
        pos, marker = found
        if marker == formats.THINK_END:
            self._close_block(text[:pos], terminated=False, out=out)
            self._buffer = text[pos:]
        else:
            self._close_block(text[: pos + len(marker)], terminated=True, out=out)
            self._buffer = text[pos + len(marker) :]
        return True

    def _close_block(self, text: str, *, terminated: bool, out: SplitDelta) -> None:
        block = self._block
        assert block is not None
        self._block = None
        fmt = block.fmt
        payload_end = len(text) - len(fmt.end) if terminated else len(text)
        payload = text[block.payload_start : payload_end]
        call = decode_call(payload)
        if call is None:
            self._emit_reasoning(text, out)
            return
        raw = text if terminated else fmt.wrap(payload)
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
