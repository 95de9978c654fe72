"""What the parser benchmark prints and draws: the Markdown table and the log-log plot.

On the plot a linear parser is a flat line and a quadratic one a slope, visible at a glance.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import markdown_table, save_figure
from _parsers_measure import Point, clock_label
from _parsers_pairs import OURS, Pair


def _fmt_us(point: Point | None) -> str:
    if point is None:
        return "-"
    if point.us_per_token is not None:
        return f"{point.us_per_token:.1f}" + ("" if point.check == "ok" else " †")
    if point.lower_bound_us is not None:
        return f"skipped (too slow, >{point.lower_bound_us:.0f})"
    return point.check or point.status


def _fmt_ratio(row: dict[str, Any]) -> str:
    if row["ratio_ours_over_pair"] is not None:
        return f"{row['ratio_ours_over_pair']:.3f}x"
    if row["ratio_upper_bound"] is not None:
        return f"<{row['ratio_upper_bound']:.3f}x"
    return "n/a"


def render_table(
    pairs: list[Pair],
    results: dict[str, list[Point]],
    summary: dict[str, dict[str, Any]],
    missing: dict[str, str],
    targets: Sequence[int],
    ratio_at: int,
) -> str:
    header = ["pair", "engine", "format", *(f"µs/tok ~{short_size(t)}" for t in targets)]
    header += ["exponent", f"ours ÷ pair @~{short_size(ratio_at)}", "check"]
    rows: list[list[str]] = []
    for pair in pairs:
        by_target = {p.target: p for p in results[pair.key]}
        row = summary[pair.key]
        exponent = row["exponent"]
        rows.append(
            [
                pair.label,
                pair.engine,
                pair.fmt,
                *(_fmt_us(by_target.get(t)) for t in targets),
                "n/a" if exponent is None else f"{exponent:.2f}",
                "1 (reference)" if pair.key == OURS else _fmt_ratio(row),
                row["check"],
            ]
        )
    for key, why in missing.items():
        rows.append([key, "-", "-", *("-" for _ in targets), "-", "-", why])
    return markdown_table(header, rows)


def short_size(n: int) -> str:
    return f"{n / 1000:g}k" if n >= 1000 else str(n)


def plot(
    pairs: list[Pair], results: dict[str, list[Point]], out: Path, title: str, clock: str
) -> None:
    """µs per token against tokens, log-log: a linear parser is a flat line, quadratic a slope."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for pair in pairs:
        points = [p for p in results[pair.key] if p.us_per_token is not None]
        if points:
            style = "-" if pair.key.startswith("ours") else "--"
            ax.plot(
                [p.tokens for p in points],
                [p.us_per_token for p in points],
                style,
                marker="o",
                label=pair.label,
            )
        skipped = [p for p in results[pair.key] if p.lower_bound_us is not None]
        if skipped:
            ax.scatter(
                [p.tokens for p in skipped],
                [p.lower_bound_us for p in skipped],
                marker="^",
                s=60,
                color=ax.lines[-1].get_color() if points else None,
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("output tokens (streamed one per step)")
    ax.set_ylabel(f"{clock_label(clock)} µs per token")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.text(0.01, 0.01, "▲ = lower bound (pair hit the time limit)", fontsize=7, alpha=0.7)
    save_figure(fig, out)
