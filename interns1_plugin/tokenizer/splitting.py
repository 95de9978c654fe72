"""Text -> events in one pass: added tokens, tags, markers, and auto-detected spans.

Follows the reference's first loop: split on every added token plus the `<MOLFORMULA>` tags and
the zero-id markers (longest match first), honour the added tokens' strip flags, and run
auto-detection on each piece of plain text unless an explicit tag or `<MOLFORMULA>` is open. An
unbalanced closing tag only lowers the nesting count to zero; it never raises.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

from transformers import AddedToken
from transformers.tokenization_python import Trie

from .detection import split_auto
from .events import CLOSE, OPEN, PROTECT, TAG, TEXT, Event
from .layout import PROTECT_CLOSE, PROTECT_OPEN, SUB_MODELS


def _regular(token: str) -> bool:
    """`<...>` with no other angle bracket: such tokens can never overlap or contain each other."""
    return (
        len(token) >= 2
        and token[0] == "<"
        and token[-1] == ">"
        and "<" not in token[1:-1]
        and ">" not in token[1:-1]
    )


def _may_overlap(tokens: Iterable[str]) -> bool:
    """True if two tokens can overlap or nest, where a leftmost-longest regex and the reference's
    trie could split differently."""
    everything = list(tokens)
    irregular = [t for t in everything if not _regular(t)]
    for a in irregular:
        for b in everything:
            if a == b:
                continue
            if a in b or b in a:
                return True
            for k in range(1, min(len(a), len(b))):
                if a.endswith(b[:k]) or b.endswith(a[:k]):
                    return True
    return False


class SpanSplitter:
    """Splits text on added tokens and scientific tags, then auto-detects SMILES and proteins."""

    def __init__(self, added: Mapping[str, AddedToken], accept: Callable[[str], bool]) -> None:
        self._added = dict(added)
        self._accept = accept
        self._opens: set[str] = {PROTECT_OPEN}
        self._closes: set[str] = {PROTECT_CLOSE}
        self._auto_opens: set[str] = set()
        self._auto_closes: set[str] = set()
        for model in SUB_MODELS:
            pairs = list(model.tags) + ([model.auto] if model.auto else [])
            self._opens.update(open_tag for open_tag, _ in pairs)
            self._closes.update(close_tag for _, close_tag in pairs)
            if model.auto:
                self._auto_opens.add(model.auto[0])
                self._auto_closes.add(model.auto[1])
        specials = set(self._added) | {PROTECT_OPEN, PROTECT_CLOSE}
        specials |= self._auto_opens | self._auto_closes
        self._has_strip_flags = any(
            tok.lstrip or tok.rstrip or tok.single_word for tok in self._added.values()
        )
        self._trie: Trie | None = None
        self._pattern: re.Pattern[str] | None = None
        if _may_overlap(specials):
            self._trie = Trie()
            for token in specials:
                self._trie.add(token)
        else:
            ordered = sorted(specials, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, ordered)))

    # -- splitting on special strings ---------------------------------------------------------

    def _pieces(self, text: str) -> list[str]:
        if self._trie is not None:
            return self._trie.split(text)
        assert self._pattern is not None
        pieces: list[str] = []
        pos = 0
        for match in self._pattern.finditer(text):
            start, end = match.span()
            if start > pos:
                pieces.append(text[pos:start])
            pieces.append(match.group())
            pos = end
        if pos < len(text):
            pieces.append(text[pos:])
        return pieces

    def _apply_strip_flags(self, pieces: list[str]) -> None:
        """lstrip / rstrip / single_word of added tokens, in the reference's order."""
        for i, piece in enumerate(pieces):
            token = self._added.get(piece)
            if token is None:
                continue
            left = pieces[i - 1] if i > 0 else None
            right = pieces[i + 1] if i < len(pieces) - 1 else None
            if token.rstrip and right:
                pieces[i + 1] = right.lstrip()
            if token.lstrip and left:
                pieces[i - 1] = left.rstrip()
            if token.single_word and left and left[-1] != " ":
                pieces[i - 1] += piece
                pieces[i] = ""
            elif token.single_word and right and right[0] != " ":
                pieces[i + 1] = piece + pieces[i + 1]
                pieces[i] = ""

    def _kind(self, piece: str, added: bool) -> int:
        """The reference's order of checks: protect tags, added tokens, then markers."""
        if piece == PROTECT_OPEN or piece == PROTECT_CLOSE:
            return PROTECT
        if added and piece in self._added:
            return TAG
        if piece in self._auto_opens:
            return OPEN
        if piece in self._auto_closes:
            return CLOSE
        return TEXT

    # -- public -------------------------------------------------------------------------------

    def split(self, text: str, split_special_tokens: bool = False) -> list[Event]:
        """Events for `text` (already NFC-normalised)."""
        if split_special_tokens:
            pieces = [text]
        else:
            pieces = self._pieces(text)
            if self._has_strip_flags:
                self._apply_strip_flags(pieces)
        use_added = not split_special_tokens
        events: list[Event] = []
        depth = 0  # open explicit tags / <MOLFORMULA>: no auto-detection inside
        for piece in pieces:
            if not piece:
                continue
            kind = self._kind(piece, use_added)
            if kind == TAG or kind == PROTECT:
                events.append((kind, piece))
                if piece in self._opens:
                    depth += 1
                elif piece in self._closes:
                    depth = max(0, depth - 1)
            elif kind == TEXT and not depth:
                split_auto(piece, self._accept, events)
            else:
                events.append((kind, piece))
        return events
