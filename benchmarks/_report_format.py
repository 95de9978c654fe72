"""How the benchmark report writes numbers, ratios and sentences, the same in every section.

Every section quotes its JSON through these, so a ratio reads the same in a table and in the
sentence that reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: A JSON value as loaded.
Data = dict[str, Any]


@dataclass(frozen=True)
class Section:
    """Rendered body of one benchmark: its tables and the sentence that reads them."""

    tables: str
    shows: str
    reference: str


def ratio(value: float | None, reference: float | None) -> str:
    """`value ÷ reference` as "0.0119×"; "n/a" when either is missing or zero."""
    if not value or not reference:
        return "n/a"
    return f"{value / reference:.3g}×"


def with_ratio(text: str, value: float | None, reference: float | None) -> str:
    """A figure followed by its ratio to the reference: "4.1 (0.0119×)"."""
    return f"{text} ({ratio(value, reference)})"


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.1f}"


def mib(n_bytes: float | None) -> str:
    return "-" if n_bytes is None else f"{n_bytes / 2**20:,.0f}"


def points_label(n: int) -> str:
    return f"{n:,}"


def size_label(n: int) -> str:
    return f"~{n / 1000:g}k" if n >= 1000 else str(n)


def timing(entry: Data | None, key: str = "median_s") -> float | None:
    return None if not entry else entry.get(key)


def sentence(parts: Sequence[str]) -> str:
    """Clauses joined into one sentence, capitalised and ending with a full stop."""
    parts = [p for p in parts if p]
    if not parts:
        return ""
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."
