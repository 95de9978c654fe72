"""Finding markers in streamed text without rescanning it.

Streaming parsers must not re-read the whole output on every delta (that is what makes engine
parsers quadratic). The scanner searches only the new text plus a short held-back tail, and tells
how many trailing characters might still grow into a marker.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

WHITESPACE = " \t\r\n"


class MarkerScanner:
    """Earliest-occurrence search over a fixed set of marker strings."""

    def __init__(self, markers: Iterable[str]) -> None:
        ordered = sorted(set(markers), key=len, reverse=True)
        if not ordered or not all(ordered):
            raise ValueError("markers must be non-empty strings")
        self._pattern = re.compile("|".join(re.escape(m) for m in ordered))
        self._prefixes = frozenset(m[:k] for m in ordered for k in range(1, len(m)))
        self._longest = len(ordered[0])

    def search(self, text: str, start: int = 0) -> tuple[int, str] | None:
        """Position and text of the earliest marker at or after `start`."""
        match = self._pattern.search(text, start)
        if match is None:
            return None
        return match.start(), match.group()

    def partial_suffix(self, text: str) -> int:
        """Length of the longest suffix of `text` that is a proper prefix of some marker."""
        for size in range(min(len(text), self._longest - 1), 0, -1):
            if text[-size:] in self._prefixes:
                return size
        return 0


def could_become(text: str, target: str) -> bool:
    """Whether more input could still turn `text` into something starting with `target`."""
    return len(text) < len(target) and target.startswith(text)
