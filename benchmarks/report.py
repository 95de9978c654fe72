"""Run every benchmark, then write one Markdown report from their results JSON.

Why: each benchmark prints its own table, but a reader wants one page with the machine, every
table and figure, and each number set against what the engine ships, measured in the same run.
The report is rendered only from the JSON files the benchmarks write, so it can be re-rendered
without measuring again (`--no-run`), and every sentence in it is built from those numbers.

    python benchmarks/report.py [--quick] [--only NAME ...] [--no-run]
                                [--results benchmarks/results] [--output benchmarks/REPORT.md]

`--quick` passes each benchmark its `--quick` smoke option; `hostile_inputs` and `load` have none,
so they get a small case selection / a short run through their own flags instead. A quick run
writes into a fresh temporary directory unless `--results` is given, so smoke numbers never
replace the measured ones. `--only` limits what runs; the report always has every section (one
without results says so). Benchmarks run one after another; a failing one is reported and the
rest still run; the exit status is non-zero if any failed.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _report_benchmarks import (  # noqa: E402  (the script's own directory)
    BENCHMARKS,
    NAMES,
    RunResult,
    run_benchmark,
)
from _report_document import render_report  # noqa: E402

DEFAULT_RESULTS = HERE / "results"
DEFAULT_OUTPUT = HERE / "REPORT.md"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke-sized runs of every benchmark")
    parser.add_argument("--only", nargs="+", choices=NAMES, metavar="NAME", help="run only these")
    parser.add_argument("--no-run", action="store_true", help="only render existing results")
    parser.add_argument("--results", type=Path, help="results folder (default benchmarks/results)")
    parser.add_argument("--output", type=Path, help="report path (default benchmarks/REPORT.md)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results = args.results
    if results is None and args.quick and not args.no_run:
        # Smoke numbers must never replace the measured ones.
        results = Path(tempfile.mkdtemp(prefix="interns1-bench-"))
    results = (results or DEFAULT_RESULTS).resolve()
    output = (args.output or (results / "REPORT.md" if args.quick else DEFAULT_OUTPUT)).resolve()
    runs: dict[str, RunResult] = {}
    if not args.no_run:
        results.mkdir(parents=True, exist_ok=True)
        for bench in BENCHMARKS:
            if args.only is None or bench.name in args.only:
                runs[bench.name] = run_benchmark(bench, results, args.quick)
    now = datetime.datetime.now(datetime.UTC)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_report(results, output, runs, now), encoding="utf-8")
    print(f"wrote {output}", file=sys.stderr)
    failed = [r.name for r in runs.values() if r.returncode != 0]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
