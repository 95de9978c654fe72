"""Hostile inputs against `vllm serve` with the plugin: status, time and memory of each answer.

Why: a public endpoint receives corrupt uploads, decompression bombs, unreachable URLs, absurd
time series, malformed tool definitions and oddly typed template switches. Each must be answered
quickly with a client error and a message that says what is wrong (or, where the input is valid
if unusual, served at bounded cost) — never a 500, a hang or a crash — and the next normal
request must be served. One server per checkpoint answers every case in turn: the tiny
Intern-S1-mini for images, videos, tools and the prompt length, the tiny scripted Intern-S1-Pro
for time series (and the same generic cases again, since its template and video loader differ).

For every case the table gives the HTTP status (or `timeout` after `--timeout` seconds), the
wall time, the peak resident memory of the server's whole process group while the request ran
(VmRSS summed over the group, sampled at 20 Hz) and its growth over the level just before, the
start of the error message, and whether the next normal request was answered. A server that
dies is restarted for the remaining cases (and the case is marked).

vLLM's built-in Intern-S1 models need torchvision; where it is missing they cannot run and the
built-in column says so. With `INTERNS1_PLUGIN_KEEP_BUILTIN_MODEL=1` and a working torchvision,
the same cases are sent to servers of the built-in models as well.

    python benchmarks/hostile_inputs.py [--timeout 120] [--cases SUBSTRING ...]
                                        [--out benchmarks/results/hostile_inputs.png]

Writes a Markdown table to stdout, the numbers as JSON beside --out and a bar chart of times.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, write_json  # noqa: E402
from _hostile_cases import CASES, select_cases  # noqa: E402
from _hostile_procfs import SAMPLE_HZ  # noqa: E402
from _hostile_runner import Outcome, run_all  # noqa: E402
from _hostile_servers import (  # noqa: E402
    BUILTIN_ENV,
    NOT_RUNNABLE,
    SERVER_ARGS,
    builtin_availability,
)
from _hostile_table import plot, table  # noqa: E402

DEFAULT_OUT = Path("benchmarks/results/hostile_inputs.png")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=120.0, help="client timeout per request")
    parser.add_argument("--cases", nargs="*", default=[], help="run only cases containing these")
    parser.add_argument("--servers", nargs="*", default=["mini", "pro"], choices=["mini", "pro"])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from interns1_plugin.testing.scripted_checkpoint import PRO_TOOL_CALL_SCRIPT
    from interns1_plugin.testing.tiny_interns1 import build_tiny_interns1
    from interns1_plugin.testing.tiny_interns1_pro import build_tiny_interns1_pro

    started = time.perf_counter()
    cases = select_cases(args.cases)
    builtin_runnable, builtin_note = builtin_availability()
    with tempfile.TemporaryDirectory(prefix="interns1-hostile-") as scratch:
        workdir = Path(scratch)
        checkpoints = {}
        if "mini" in args.servers:
            checkpoints["mini"] = build_tiny_interns1(workdir / "mini", "mini", dtype="float32")
        if "pro" in args.servers:
            checkpoints["pro"] = build_tiny_interns1_pro(
                workdir / "pro", script=PRO_TOOL_CALL_SCRIPT
            )
        print("plugin servers:", file=sys.stderr)
        outcomes, plugin_info = run_all(cases, args.servers, checkpoints, workdir, {}, args.timeout)
        builtin: dict[tuple[str, str], Outcome] | None = None
        if builtin_runnable:
            print("built-in servers:", file=sys.stderr)
            try:
                others, _ = run_all(
                    cases, args.servers, checkpoints, workdir, {BUILTIN_ENV: "1"}, args.timeout
                )
                builtin = {(o.case, o.server): o for o in others}
            except Exception as err:  # noqa: BLE001 - the comparison is optional
                builtin_note = f"failed to run: {str(err).splitlines()[0]}"

    report: dict[str, Any] = {
        "machine": machine_info(),
        "settings": {
            "timeout_s": args.timeout,
            "rss_sample_hz": SAMPLE_HZ,
            "server_args": SERVER_ARGS,
        },
        "servers": plugin_info,
        "builtin": builtin_note,
        "all_ok": all(o.ok for o in outcomes),
        "cases": [
            {
                "input": o.case,
                "checkpoint": o.server,
                "what": next(c.what for c in CASES if c.name == o.case),
                "engine_cause": next(c.engine_cause for c in CASES if c.name == o.case),
                "expected": list(o.expect),
                "status": o.status,
                "ok": o.ok,
                "wall_s": round(o.wall_s, 3),
                "rss_baseline_mb": round(o.rss_baseline_mb, 1),
                "rss_peak_mb": round(o.rss_peak_mb, 1),
                "rss_growth_mb": round(o.rss_delta_mb, 1),
                "rss_samples": o.rss_samples,
                "message": o.message,
                "reply": o.extra,
                "next_request_ok": o.next_ok,
                "next_request": o.next_detail,
                "server_restarted": o.server_restarted,
                "builtin": (
                    {"status": b.status, "wall_s": round(b.wall_s, 3), "message": b.message}
                    if builtin and (b := builtin.get((o.case, o.server)))
                    else NOT_RUNNABLE
                    if not builtin_runnable
                    else None
                ),
            }
            for o in outcomes
        ],
    }
    report["table"] = table(outcomes, builtin, builtin_note)
    report["wall_s"] = round(time.perf_counter() - started, 1)
    print(report["table"])
    bad = [o for o in outcomes if not o.ok]
    for outcome in bad:
        print(
            f"UNEXPECTED: [{outcome.server}] {outcome.case}: {outcome.status} "
            f"{outcome.message[:300]} / next: {outcome.next_detail[:300]}",
            file=sys.stderr,
        )
    plot(outcomes, args.out)
    write_json(args.out.with_suffix(".json"), report)
    print(f"\nwrote {args.out} and {args.out.with_suffix('.json')}", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
