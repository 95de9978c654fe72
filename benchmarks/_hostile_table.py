"""The hostile-input table and bar chart: one row per case, what came back and what it cost.

Unexpected answers are bold in the table and red in the chart, so a regression stands out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from _common import markdown_table, save_figure
from _hostile_runner import Outcome
from _hostile_servers import NOT_RUNNABLE

MESSAGE_CHARS = 90


def _excerpt(text: str) -> str:
    text = " ".join(text.split()).replace("|", "/")
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 3] + "..."


def _status_cell(outcome: Outcome) -> str:
    cell = str(outcome.status)
    wanted = " or ".join(str(status) for status in outcome.expect)
    return cell if outcome.status in outcome.expect else f"**{cell}** (want {wanted})"


def table(
    outcomes: Sequence[Outcome], builtin: dict[tuple[str, str], Outcome] | None, builtin_note: str
) -> str:
    header = [
        "input",
        "ckpt",
        "status",
        "time",
        "peak RSS (growth)",
        "message excerpt",
        "next request",
        "built-in",
    ]
    rows = []
    for outcome in outcomes:
        other = (builtin or {}).get((outcome.case, outcome.server))
        if other is not None:
            builtin_cell = f"{other.status}, {other.wall_s:.2f} s"
        else:
            builtin_cell = NOT_RUNNABLE if not builtin else "not measured"
        rows.append(
            [
                outcome.case,
                outcome.server,
                _status_cell(outcome),
                f"{outcome.wall_s:.2f} s",
                f"{outcome.rss_peak_mb:,.0f} MB (+{max(outcome.rss_delta_mb, 0):,.0f})",
                _excerpt(outcome.message),
                "ok" if outcome.next_ok else "**FAILED**",
                builtin_cell,
            ]
        )
    note = f"\nbuilt-in models: {builtin_note}" if builtin_note else ""
    return markdown_table(header, rows) + note


def plot(outcomes: Sequence[Outcome], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{o.case} [{o.server}]" for o in outcomes]
    colours = [
        "tab:red" if not o.ok else "tab:green" if o.status == 200 else "tab:blue" for o in outcomes
    ]
    fig, ax = plt.subplots(figsize=(10, 0.28 * len(outcomes) + 1.5))
    ax.barh(range(len(outcomes)), [o.wall_s for o in outcomes], color=colours)
    ax.set_yticks(range(len(outcomes)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("wall time of the request (s, log scale)")
    ax.set_title("Hostile inputs: blue = clear 4xx, green = served, red = unexpected")
    save_figure(fig, out)
