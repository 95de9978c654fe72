"""The marker strings a fuzzed output is built around, and the whitespace the parsers may trim.

Shared by the generator (markers to garble), the chunkings (cut at markers), the minimizer (keep
markers whole) and the invariant (count every character but `WHITESPACE`).
"""

from __future__ import annotations

import re

from interns1_plugin import formats as f

WHITESPACE = " \t\r\n"
MARKERS: tuple[str, ...] = tuple(
    sorted(
        {
            f.THINK_START,
            f.THINK_END,
            f.ACTION_START,
            f.ACTION_END,
            f.PLUGIN,
            f.INTERPRETER,
            f.TOOL_CALL_START,
            f.TOOL_CALL_END,
        },
        key=len,
        reverse=True,
    )
)


def visible(text: str) -> str:
    """`text` without the whitespace the parsers are allowed to trim."""
    return "".join(ch for ch in text if ch not in WHITESPACE)


_MARKER_PATTERN = re.compile("|".join(re.escape(m) for m in MARKERS))


def marker_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every marker in `text`, left to right."""
    return [m.span() for m in _MARKER_PATTERN.finditer(text)]
