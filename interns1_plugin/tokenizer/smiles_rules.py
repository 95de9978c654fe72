"""The hand-written SMILES plausibility check used when RDKit is not installed.

These are not chemistry rules: they reproduce, decision for decision, what the reference tokenizer
accepts, because whether a candidate passes decides which ids a text gets. Quirks are kept on
purpose (for instance a bracket's contents are read up to the first `]` of the whole candidate).
"""

from __future__ import annotations

import re
from typing import Final

from .elements import AROMATIC, ELEMENTS

BONDS: Final = frozenset("-=#:/\\.$")
#: Characters allowed outside brackets when nothing else consumed them.
_ALLOWED_CHARS: Final = frozenset("BCNOPSFI") | AROMATIC | BONDS | frozenset("[]();")
_ALLOWED_PAIRS: Final = frozenset({"Cl", "Br"})

_LETTER_RUN: Final = re.compile(r"[A-GI-Za-z]{3,}")
_LONG_NUMBER: Final = re.compile(r"\d{4,}")
_NUMBER: Final = re.compile(r"\d+")
_BRACKET_BODY: Final = re.compile(r"\[([^\[\]]*)\]")


def _bracket_body_ok(body: str) -> bool:
    """What the text between `[` and the candidate's first `]` may not contain."""
    return not (
        _LETTER_RUN.search(body) or _LONG_NUMBER.search(body) or len(_NUMBER.findall(body)) > 2
    )


def _brackets_ok(text: str) -> bool:
    """Bracket atoms up to the first one that starts with an atom must be non-empty, paren-free."""
    for body in _BRACKET_BODY.findall(text):
        if not body or "(" in body or ")" in body:
            return False
        if body[0] in ELEMENTS or body[0] in AROMATIC or body[:2] in ELEMENTS:
            return True
    return True


_TOKENS: Final = re.compile(
    r"(?:\[[^\[\]]*\]|[0-9]|%[0-9][0-9]|Cl|Br|[BCNOPSFIbcnosp()\-=#:/\\.$;])*"
)
_TWO_BONDS: Final = re.compile(r"[\-=#:/\\.$]{2}")
_BRACKET_OR_RING_LABEL: Final = re.compile(r"\[[^\[\]]*\]|%[0-9][0-9]|[0-9]")
_NOT_ASCII_LETTERS: Final = re.compile(r"[^A-Za-z]+")
_PAREN: Final = re.compile(r"[()]")


def ascii_letter_count(text: str) -> int:
    """Letters that count towards the "at least five letters" rule: ASCII ones only."""
    return len(_NOT_ASCII_LETTERS.sub("", text))


def _ascii_accept(text: str) -> bool:
    """`rules_accept` for non-empty ASCII text, with regexes instead of a character loop.

    For ASCII the loop's decisions reduce to: the text is a sequence of bracket atoms (no nesting)
    and allowed tokens; no bond first, last or twice in a row; `)` never ahead of `(`; the first
    bracket's body passes the bans; every ring label outside brackets is closed; there is a
    capital or two labels; and the final bracket check. Quirks of the loop are kept (see below).
    """
    if text[0] in BONDS or text[-1] in BONDS or _TWO_BONDS.search(text):
        return False
    if not _TOKENS.fullmatch(text):
        return False
    first_open = text.find("[")
    if first_open >= 0 and not _bracket_body_ok(text[first_open + 1 : text.find("]")]):
        return False
    if ")" in text:
        depth = 0
        for paren in _PAREN.findall(text):
            depth += 1 if paren == "(" else -1
            if depth < 0:
                return False
    marks = 0
    open_labels: set[str] = set()
    for match in _BRACKET_OR_RING_LABEL.finditer(text):
        label = match.group()
        if label[0] == "[":
            continue
        marks += 1
        start = match.start()
        # The loop skips a digit that follows a `%` two places back, even one inside a bracket
        # as in `[%]1`: counted, but it opens or closes no ring.
        if len(label) == 1 and start >= 2 and text[start - 2] == "%":
            continue
        open_labels ^= {label}
    if open_labels:
        return False
    if text.lower() == text and marks < 2:
        return False
    return _brackets_ok(text)


def rules_accept(text: str) -> bool:
    """Ring labels closed, brackets balanced, only SMILES characters outside brackets."""
    if text and text.isascii():
        return _ascii_accept(text)
    return _scan_accept(text)


def _scan_accept(text: str) -> bool:
    """The reference's character loop (any text)."""
    rings: dict[str, bool] = {}  # label -> currently open
    sq_open = sq_close = par_open = par_close = 0
    has_upper = False
    ring_marks = 0
    n = len(text)
    i = 0
    while i < n:
        ch = text[i]
        step = 0
        if "A" <= ch <= "Z":
            has_upper = True
        if ch in BONDS and (i == 0 or i == n - 1):
            return False
        if i and ch in BONDS and text[i - 1] in BONDS:
            return False
        if ch == "[":
            step = 1
            sq_open += 1
            if sq_open > sq_close + 1 or i == n - 1 or "]" not in text[i + 1 :]:
                return False
            if not _bracket_body_ok(text[i + 1 : text.find("]")]):
                return False
        if ch == "]":
            step = 1
            sq_close += 1
            if sq_close > sq_open:
                return False
        if ch == "(":
            step = 1
            par_open += 1
        if ch == ")":
            step = 1
            par_close += 1
            if par_close > par_open:
                return False
        if sq_open == sq_close:
            if ch.isdigit():
                step = 1
                ring_marks += 1
                after_percent = (i >= 1 and text[i - 1] == "%") or (i >= 2 and text[i - 2] == "%")
                if not after_percent:
                    rings[ch] = not rings.get(ch, False)
            if ch == "%":
                if i >= n - 2 or not text[i + 1].isdigit() or not text[i + 2].isdigit():
                    return False
                step = 3
                ring_marks += 1
                label = text[i + 1 : i + 3]
                rings[label] = not rings.get(label, False)
            if step == 0:
                if i < n - 1 and text[i : i + 2] in _ALLOWED_PAIRS:
                    step = 2
                elif ch in _ALLOWED_CHARS:
                    step = 1
                else:
                    return False
        i += step or 1
    if sq_open != sq_close or any(rings.values()):
        return False
    if not has_upper and ring_marks < 2:
        return False
    return _brackets_ok(text)
