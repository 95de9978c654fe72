"""Timing a pair: ascending sizes, repeats within a time budget, a lower bound when too slow.

A quadratic parser at the largest size can take minutes; the limits keep a whole run to a few,
and a run cut short still proves its parser slower than the limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from _common import Deadline, median
from _parsers_extract import check
from _parsers_pairs import Pair, Timing
from _parsers_samples import Sample

CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.thread_time, "wall": time.perf_counter}


@dataclass
class Point:
    target: int
    tokens: int
    clock: str
    status: str = "ok"  # "ok" | "skipped (too slow)"
    runs: list[Timing] = field(default_factory=list)
    check: str = ""
    #: When skipped: what µs/token is known to exceed (a run hit the limit), else None.
    lower_bound_us: float | None = None

    @property
    def seconds(self) -> float | None:
        """Median over the repeats, on the clock the report uses."""
        return median([getattr(run, self.clock) for run in self.runs]) if self.runs else None

    @property
    def us_per_token(self) -> float | None:
        s = self.seconds
        return None if s is None else s / self.tokens * 1e6


@dataclass
class Limits:
    """How long one run may take, how much repeating a size or one pair may cost, how many repeats.

    A quadratic parser at the largest size can take minutes; these keep the whole run to a few.
    `run_s` is on the reported clock, so a run cut short proves a lower bound on that clock.
    """

    run_s: float
    size_s: float
    pair_s: float
    repeats: int
    clock: str


def measure(pair: Pair, samples: dict[int, Sample], limits: Limits) -> list[Point]:
    """Ascending sizes; a size that hits the run limit ends the pair (larger ones are slower).

    One untimed warm-up run first, so lazy imports and first-call set-up are not billed to the
    smallest size.
    """
    clock = CLOCKS[limits.clock]
    pair_deadline = Deadline(limits.pair_s)
    try:
        pair.run(samples[min(samples)], Deadline(limits.run_s, clock))
    except Exception:  # the timed run below fails the same way and reports it
        pass
    points: list[Point] = []
    too_slow = False
    for target in sorted(samples):
        sample = samples[target]
        point = Point(target, sample.tokens, limits.clock)
        points.append(point)
        if too_slow or pair_deadline.passed():
            point.status = "skipped (too slow)"
            if too_slow:
                point.lower_bound_us = limits.run_s / sample.tokens * 1e6
            continue
        spent = 0.0
        while len(point.runs) < limits.repeats:
            # The first run always gets the full run limit, so a bound means "slower than that".
            budget = limits.run_s if not point.runs else min(limits.run_s, pair_deadline.left())
            deadline = Deadline(budget, clock)
            try:
                result = pair.run(sample, deadline)
            except Exception as exc:  # report, never abort the other pairs
                point.check = f"error: {type(exc).__name__}: {exc}"[:160]
                break
            if result is None:
                if not point.runs:
                    point.status = "skipped (too slow)"
                    point.lower_bound_us = deadline.seconds / sample.tokens * 1e6
                    too_slow = True
                break
            timing, got = result
            if not point.runs:
                point.check = check(sample, got)
            point.runs.append(timing)
            spent += timing.wall
            if spent + timing.wall > limits.size_s or pair_deadline.passed():
                break
    return points


def clock_label(clock: str) -> str:
    """How tables and axes name a clock of `CLOCKS`."""
    return "CPU" if clock == "cpu" else "wall-clock"
