"""The benchmarks the report covers: each script, its quick options and its section renderer.

Each runs as its own process with this interpreter, so one benchmark's engine state (registries,
threads) never leaks into the next, and a failing one does not stop the rest.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _report_format import Data, Section
from _report_sections_offline import (
    render_parsers,
    render_preprocess,
    render_time_series,
    render_tokenizer,
)
from _report_sections_server import render_hostile_inputs, render_load, render_serving

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Benchmark:
    """One benchmark script, how to make it quick, and how its JSON reads."""

    name: str
    title: str
    quick_args: tuple[str, ...]
    render: Callable[[Data], Section]

    @property
    def script(self) -> Path:
        return HERE / f"{self.name}.py"


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("parsers", "Parsers: streaming cost", ("--quick",), render_parsers),
    Benchmark("preprocess", "Preprocessing: images and videos", ("--quick",), render_preprocess),
    Benchmark("tokenizer", "Tokenizer: encode throughput", ("--quick",), render_tokenizer),
    Benchmark("serving", "Serving: throughput and time to first token", ("--quick",),
              render_serving),
    Benchmark("time_series", "Time series: preprocessing and encoder", ("--quick",),
              render_time_series),
    # No --quick of their own: a narrow case selection / a short run through their flags.
    Benchmark("hostile_inputs", "Hostile inputs", ("--servers", "mini", "--cases", "zero bytes"),
              render_hostile_inputs),
    Benchmark("load", "Load: concurrent streaming requests",
              ("--duration", "5", "--concurrency", "8", "--checkpoints", "qwen3", "--no-profile"),
              render_load),
)  # fmt: skip
NAMES = tuple(b.name for b in BENCHMARKS)


@dataclass
class RunResult:
    name: str
    returncode: int
    wall_s: float


def run_benchmark(bench: Benchmark, results: Path, quick: bool) -> RunResult:
    """Run one benchmark script with this interpreter, writing into `results`."""
    command = [sys.executable, str(bench.script), "--out", str(results / f"{bench.name}.png")]
    if quick:
        command += bench.quick_args
    print(f"== {bench.name}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    code = subprocess.run(command, cwd=HERE.parent).returncode
    result = RunResult(bench.name, code, time.perf_counter() - started)
    print(f"== {bench.name}: exit {code} in {result.wall_s:.0f}s", file=sys.stderr, flush=True)
    return result
