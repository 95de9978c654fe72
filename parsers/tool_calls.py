"""Streaming extraction of tool calls from content text.

A call is emitted whole, name and arguments together, the moment its end marker arrives. Emitting
it earlier would commit to a call before its JSON is known to be valid, and a block whose JSON
turns out malformed or truncated must come back as plain text, identically in streaming and
non-streaming mode. The arguments a client receives are therefore always one valid JSON text.
"""

from __future__ import annotations

from interns1_plugin.parsers.call_formats import (
    ALL_FORMATS,
    BlockFormat,
    OpenBlock,
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
        self._buffer = ""  # text not yet emitted: at most a partial start marker between steps
        self._block: OpenBlock | None = None
        self._pending_whitespace = ""
        self._content_started = False

    # -- public API -------------------------------------------------------------------------
    def feed(self, text: str) -> ParsedDelta:
        out = ParsedDelta()
        if not text:
            return out
        if self._block is not None:
            self._block.append(text)
        else:
            self._buffer += text
        while self._step(out):
            pass
        return out

    def finish(self) -> ParsedDelta:
        """Flush at end of stream: an open block becomes a call only if its JSON is complete."""
        out = ParsedDelta()
        block = self._block
        if block is not None:
            self._block = None
            text = block.text()
            verdict = block.check_opening() if not block.payload_start else Opening.VALID
            call = decode_call(text[block.payload_start :]) if verdict is Opening.VALID else None
            if call is not None:
                self._emit_call(call, out)
            else:
                self._emit_text(text, out)
        self._emit_text(self._buffer, out)
        self._buffer = ""
        self._pending_whitespace = ""
        return out

    # -- state machine ----------------------------------------------------------------------
    def _step(self, out: ParsedDelta) -> bool:
        """Advance once; False when more input is needed."""
        if self._block is not None:
            return self._advance_block(out)
        found = self._scanner.search(self._buffer)
        if found is None:
            keep = self._scanner.partial_suffix(self._buffer)
            cut = len(self._buffer) - keep
            self._emit_text(self._buffer[:cut], out)
            self._buffer = self._buffer[cut:]
            return False
        pos, marker = found
        self._emit_text(self._buffer[:pos], out)
        self._block = OpenBlock(self._formats[marker], self._buffer[pos:])
        self._buffer = ""
        return True

    def _advance_block(self, out: ParsedDelta) -> bool:
        block = self._block
        assert block is not None
        fmt = block.fmt
        if not block.payload_start:
            verdict = block.check_opening()
            if verdict is Opening.NEED_MORE:
                return False
            if verdict is Opening.NOT_A_CALL:
                # The start marker is text; what follows it is scanned again.
                self._emit_text(fmt.start, out)
                self._buffer = block.text()[len(fmt.start) :]
                self._block = None
                return True
        found = block.find((fmt.end,))
        if found is None:
            return False
        end = found[0]
        text = block.text()
        call = decode_call(text[block.payload_start : end])
        if call is not None:
            self._emit_call(call, out)
        else:
            self._emit_text(text[: end + len(fmt.end)], out)
        self._buffer = text[end + len(fmt.end) :]
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


