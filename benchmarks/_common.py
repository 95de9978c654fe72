"""Helpers shared by the benchmark scripts: timing budgets, log-log arithmetic, reporting.

Kept free of engine imports so a script can load it before deciding which engines it can use.
"""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


class Deadline:
    """A time limit a timed loop polls cheaply, so a slow case is cut short, not awaited.

    `clock` is the clock the limit is on: a limit on CPU time makes "hit the limit" a true lower
    bound on CPU time, however busy the machine.
    """

    def __init__(self, seconds: float, clock: Callable[[], float] = time.perf_counter) -> None:
        self.seconds = seconds
        self.clock = clock
        self.at = clock() + seconds

    def passed(self) -> bool:
        return self.clock() > self.at

    def left(self) -> float:
        return self.at - self.clock()


def median(values: Sequence[float]) -> float:
    """Median of repeated timings: robust to one run hit by GC or a noisy neighbour."""
    return float(statistics.median(values))


def growth_exponent(points: Sequence[tuple[float, float]]) -> float | None:
    """Slope of log(total time) against log(size) from the smallest to the largest size.

    1.0 is linear, 2.0 quadratic. `points` are (size, total seconds); None with fewer than two.
    """
    usable = sorted(p for p in points if p[0] > 0 and p[1] > 0)
    if len(usable) < 2 or usable[0][0] == usable[-1][0]:
        return None
    (n0, t0), (n1, t1) = usable[0], usable[-1]
    return math.log(t1 / t0) / math.log(n1 / n0)


def loglog_at(points: Sequence[tuple[float, float]], x: float) -> float | None:
    """y at `x`, interpolated linearly in log-log space between the two bracketing points.

    Exact when `x` was measured; None when `x` lies outside the measured range (no extrapolation,
    so a ratio never rests on a guess).
    """
    usable = sorted(p for p in points if p[0] > 0 and p[1] > 0)
    for px, py in usable:
        if px == x:
            return py
    for (x0, y0), (x1, y1) in zip(usable, usable[1:], strict=False):
        if x0 <= x <= x1:
            w = math.log(x / x0) / math.log(x1 / x0)
            return math.exp(math.log(y0) + w * (math.log(y1) - math.log(y0)))
    return None


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table, columns padded so it also reads well in a terminal."""
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def machine_info() -> dict[str, Any]:
    """Enough about the host to tell whether two result files are comparable."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
    }


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def save_figure(fig: Any, out: Path, **layout: Any) -> None:
    """Lay out, write and close a matplotlib figure (closing frees it in long runs)."""
    import matplotlib.pyplot as plt

    fig.tight_layout(**layout)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


class Stopwatch:
    """Times one measured region on two clocks, with the heap that existed before it frozen.

    `cpu` is this thread's CPU time: on a shared machine other processes inflate wall time by
    whatever they happen to run, while CPU time stays the cost of the code under test. `wall` is
    kept too. Freezing the pre-existing heap (as vLLM does after start-up) keeps the collector
    from rescanning the benchmark's own tokenizer, samples and engine modules on every pass.
    """

    def __init__(self) -> None:
        self.cpu = 0.0
        self.wall = 0.0

    def __enter__(self) -> Stopwatch:
        gc.collect()
        gc.freeze()
        self._cpu0 = time.thread_time()
        self._wall0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu = time.thread_time() - self._cpu0
        self.wall = time.perf_counter() - self._wall0
        gc.unfreeze()
