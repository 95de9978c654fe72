"""Streaming cost of the `intern-s1` parsers against the engines' built-in parser pairs.

Why: vLLM's legacy parsers re-read the whole output on every token, so a long reasoning trace
followed by one large tool call costs quadratic time per response. This script streams
synthetic Intern-S1 outputs (~half reasoning, ~half one big tool call) token by token through
each engine's real composition path and reports µs per token, the growth exponent, the ratio of
ours to each other pair, and whether each pair extracted the call correctly.

    python benchmarks/parsers.py [--sizes 1000 4000 16000] [--out benchmarks/results/parsers.png]
                                 [--quick]

Writes a Markdown table to stdout, a log-log PNG to --out and the numbers as JSON beside it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, write_json  # noqa: E402  (the script's own directory)
from _parsers_measure import CLOCKS, Limits, Point, clock_label, measure  # noqa: E402
from _parsers_pairs import build_pairs, prompt_ids  # noqa: E402
from _parsers_render import plot, render_table, short_size  # noqa: E402
from _parsers_samples import ACTION, TOOL_CALL, make_sample, training_corpus  # noqa: E402
from _parsers_summary import summarise, target_lines  # noqa: E402
from _parsers_tokenizer import build_tokenizer  # noqa: E402

DEFAULT_SIZES = (1000, 4000, 16000)
QUICK_SIZES = (600, 1500)
#: Where ratios are compared; measured as an extra size unless --quick.
RATIO_AT = 5000
DEFAULT_OUT = Path("benchmarks/results/parsers.png")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", help="target output lengths in tokens")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG path; JSON goes beside")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (seconds)")
    parser.add_argument("--repeats", type=int, help="timed runs per size (median is reported)")
    parser.add_argument("--run-limit", type=float, help="seconds one streaming run may take")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="cpu",
        help="what µs/token is measured on: this thread's CPU time (default; stable on a busy "
        "machine) or wall-clock time",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns what it wrote to the JSON file."""
    args = parse_args(argv)
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    sizes = sorted(set(args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)))
    ratio_at = sizes[-1] if args.quick else RATIO_AT
    targets = sorted(set(sizes) | {ratio_at})
    limits = Limits(
        run_s=args.run_limit or (5.0 if args.quick else 10.0),
        size_s=2.0 if args.quick else 8.0,
        pair_s=10.0 if args.quick else 40.0,
        repeats=args.repeats or (1 if args.quick else 5),
        clock=args.clock,
    )

    started = time.perf_counter()
    tokenizer = build_tokenizer(training_corpus())
    prompt = prompt_ids(tokenizer)
    samples = {
        fmt: {t: make_sample(tokenizer, fmt, t) for t in targets} for fmt in (ACTION, TOOL_CALL)
    }
    pairs, missing = build_pairs(tokenizer, prompt)
    results: dict[str, list[Point]] = {}
    for pair in pairs:
        results[pair.key] = measure(pair, samples[pair.fmt], limits)
        print(f"measured {pair.label} ({time.perf_counter() - started:.0f}s)", file=sys.stderr)

    summary = summarise(pairs, results, sizes, ratio_at)
    table = render_table(pairs, results, summary, missing, targets, ratio_at)
    goals = target_lines(summary, ratio_at)
    notes = [
        f"µs/tok: {clock_label(limits.clock)} time, median of up to "
        f"{limits.repeats} runs ÷ output tokens, each token streamed as one delta (parser "
        "construction and request adjustment are outside the timed region).",
        f"exponent: slope of log(time) vs log(tokens) between ~{short_size(sizes[0])} and the "
        "largest size the pair finished.",
        "† = the pair extracted something other than the expected reasoning/content/call.",
        "check: the tool call (name and arguments as JSON), then the reasoning and content, "
        "compared after stripping whitespace.",
    ]
    print(table)
    print()
    for text, ok in goals:
        print(f"- {'PASS' if ok else 'FAIL' if ok is False else 'n/a '} {text}")
    print()
    for note in notes:
        print(f"  {note}")

    out: Path = args.out
    title = f"intern-s1 parser streaming cost (up to ~{short_size(sizes[-1])} tokens)"
    plot(pairs, results, out, title, limits.clock)
    report = {
        "machine": machine_info(),
        "sizes": sizes,
        "ratio_at": ratio_at,
        "limits": vars(limits),
        "clock": limits.clock,
        "tokens": {fmt: {str(t): s.tokens for t, s in by.items()} for fmt, by in samples.items()},
        "pairs": [
            {
                "key": pair.key,
                "label": pair.label,
                "engine": pair.engine,
                "format": pair.fmt,
                "points": [
                    {
                        "target": p.target,
                        "tokens": p.tokens,
                        "status": p.status,
                        "us_per_token": p.us_per_token,
                        "lower_bound_us_per_token": p.lower_bound_us,
                        "runs_cpu_s": [run.cpu for run in p.runs],
                        "runs_wall_s": [run.wall for run in p.runs],
                        "check": p.check,
                    }
                    for p in results[pair.key]
                ],
                "exponent": summary[pair.key]["exponent"],
                "us_per_token_at_ratio": summary[pair.key]["us_per_token_at_ratio"],
                "ratio_ours_over_pair": summary[pair.key]["ratio_ours_over_pair"],
                "ratio_upper_bound": summary[pair.key]["ratio_upper_bound"],
                "check": summary[pair.key]["check"],
            }
            for pair in pairs
        ],
        "unavailable": missing,
        "targets": [{"text": text, "pass": ok} for text, ok in goals],
        "table": table,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    write_json(out.with_suffix(".json"), report)
    print(f"\nwrote {out} and {out.with_suffix('.json')} in {report['wall_s']}s", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
