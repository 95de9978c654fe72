"""Byte sizes and rounding shared by the counts, the budget and the report.

Why: the same bytes per BF16 value and the same GiB formatting must hold in every module, or
the table and the verdict would disagree.
"""

from __future__ import annotations

GIB = 1 << 30
BF16_BYTES = 2


def ceil_div(a: int, b: int) -> int:
    """a / b rounded up: a split over ranks gives each at most this much."""
    return -(-a // b)


def gib(n: int | float) -> str:
    """Bytes as GiB with two decimals, the unit of the table and the verdicts."""
    return f"{n / GIB:.2f}"


__all__ = ["BF16_BYTES", "GIB", "ceil_div", "gib"]
