"""Streaming extraction of tool calls from content text.

A call is emitted whole, name and arguments together, the moment its end marker arrives. Emitting
it earlier would commit to a call before its JSON is known to be valid, and a block whose JSON
turns out malformed or truncated must come back as plain text, identically in streaming and
non-streaming mode. The arguments a client receives are therefore always one valid JSON text.
"""

from __future__ import annotations

from interns1_plugin.parsers.call_formats import (
    ALL_FORMATS,
    FORMAT_BY_START,
    BlockFormat,
    Opening,
    decode_call,
)
from interns1_plugin.parsers.events import ParsedDelta, ToolCall
from interns1_plugin.parsers.markers import WHITESPACE, MarkerScanner


class ToolCallExtractor:
    """Content text in, content text and complete tool calls out, in linear time.

    The content is trimmed at both ends (the newlines the model puts around its calls would
    otherwise reach the client as content); every other character is kept.
    """

    def __init__(self, block_formats: tuple[BlockFormat, ...] = ALL_FORMATS) -> None:
        self._scanner = MarkerScanner(f.start for f in block_formats)
        self._formats = {f.start: f for f in block_formats}
        self._buffer = ""
        self._block: BlockFormat | None = None
        self._payload_start = 0
        self._end_search_from = 0
        self._pending_whitespace = ""
        self._content_started = False

    # -- public API -------------------------------------------------------------------------
    def feed(self, text: str) -> ParsedDelta:
        out = ParsedDelta()
        if not text:
            return out
        self._buffer += text
        while self._step(out):
            pass
        return out

    def finish(self) -> ParsedDelta:
        """Flush at end of stream: an open block becomes a call only if its JSON is complete."""
        out = ParsedDelta()
        if self._block is not None:
            block, fmt = self._buffer, self._block
            verdict, payload_start = fmt.check_opening(block)
            call = decode_call(block[payload_start:]) if verdict is Opening.VALID else None
            if call is not None:
                self._emit_call(call, out)
            else:
                self._emit_text(block, out)
            self._block = None
        else:
            self._emit_text(self._buffer, out)
        self._buffer = ""
        self._pending_whitespace = ""
        return out

    # -- state machine ----------------------------------------------------------------------
    def _step(self, out: ParsedDelta) -> bool:
        """Advance once; False when more input is needed."""
        if self._block is None:
            found = self._scanner.search(self._buffer)
            if found is None:
                keep = self._scanner.partial_suffix(self._buffer)
                cut = len(self._buffer) - keep
                self._emit_text(self._buffer[:cut], out)
                self._buffer = self._buffer[cut:]
                return False
            pos, marker = found
            self._emit_text(self._buffer[:pos], out)
            self._buffer = self._buffer[pos:]
            self._block = self._formats[marker]
            self._payload_start = 0
            self._end_search_from = len(marker)
            return True
        return self._advance_block(out)

    def _advance_block(self, out: ParsedDelta) -> bool:
        fmt, block = self._block, self._buffer
        assert fmt is not None
        if self._payload_start == 0:
            verdict, payload_start = fmt.check_opening(block)
            if verdict is Opening.NEED_MORE:
                return False
            if verdict is Opening.NOT_A_CALL:
                # The start marker is text; what follows it is scanned again.
                self._emit_text(fmt.start, out)
                self._buffer = block[len(fmt.start) :]
                self._block = None
                return True
            self._payload_start = payload_start
            self._end_search_from = payload_start
        end = block.find(fmt.end, self._end_search_from)
        if end < 0:
            self._end_search_from = max(self._end_search_from, len(block) - len(fmt.end) + 1)
            return False
        call = decode_call(block[self._payload_start : end])
        if call is not None:
            self._emit_call(call, out)
        else:
            self._emit_text(block[: end + len(fmt.end)], out)
        self._buffer = block[end + len(fmt.end) :]
        self._block = None
        return True

    # -- output -----------------------------------------------------------------------------
    def _emit_call(self, call: ToolCall, out: ParsedDelta) -> None:
        out.tool_calls.append(call)

    def _emit_text(self, text: str, out: ParsedDelta) -> None:
        if not text:
            return
        if not self._content_started:
            text = text.lstrip(WHITESPACE)
            if not text:
                return
            self._content_started = True
        body = text.rstrip(WHITESPACE)
        if body:
            out.content += self._pending_whitespace + body
            self._pending_whitespace = text[len(body) :]
        else:
            self._pending_whitespace += text


def extract_tool_calls(text: str) -> tuple[str, list[ToolCall]]:
    """Non-streaming: the same state machine run over the whole text at once."""
    extractor = ToolCallExtractor()
    result = extractor.feed(text)
    result.extend(extractor.finish())
    return result.content, result.tool_calls


__all__ = ["ToolCallExtractor", "extract_tool_calls", "FORMAT_BY_START"]
