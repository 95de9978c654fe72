"""Load: waves of concurrent streaming chat requests with tools and thinking on, on `vllm serve`.

Why: the plugin's reasoning and tool parsers run in the API server for every streamed token of
every request. Under load no tool call may be lost or mangled, and the parsers must not become
the API server's bottleneck. Each scripted checkpoint (see
`interns1_plugin.testing.scripted_checkpoint`) answers every request with the same reasoning,
content and `get_weather({"city": "Tokyo"})` call, so every reply is checked exactly:

- the scripted Qwen3 (Intern-S1 action format) and the scripted tiny Intern-S1-Pro (`<tool_call>`);
- `--max-num-seqs` equal to the wave size, loopback only, the engine core in its own process
  (`VLLM_ENABLE_V1_MULTIPROCESSING=1`), so the API server process is the serving front alone;
- waves of `--concurrency` requests released together, repeated for `--duration` seconds.

Reported per checkpoint: errors and wrong replies, p50/p99 latency and time to first token (the
first event carrying reasoning, content or a tool call), requests and output tokens per second,
and the API server's CPU spent in the plugin: py-spy samples the API server process during the
waves (`--format raw --gil`: the thread holding the GIL, i.e. where its Python CPU goes); a
sample counts for the plugin when its stack holds a frame of the plugin's packages
("inclusive": also what plugin code calls, e.g. vLLM's own part parsing under the plugin's
time-series wrapper), or when its innermost frame does ("self").
Without py-spy (`pip install py-spy`) that column is left out.

    python benchmarks/load.py [--duration 60] [--concurrency 64] [--checkpoints qwen3 pro]
                              [--out benchmarks/results/load.png]

Writes Markdown tables to stdout, a PNG (latency distributions) to --out and JSON beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _common import machine_info, markdown_table, save_figure, write_json  # noqa: E402

from interns1_plugin.demo import PARSER_FLAGS, WEATHER_TOOL  # noqa: E402
from interns1_plugin.testing.http import (  # noqa: E402
    HTTPStatusError,
    collect_stream,
    stream_events,
)
from interns1_plugin.testing.server import VllmServer  # noqa: E402

DEFAULT_OUT = Path("benchmarks/results/load.png")
REASONING = "I need the weather."
CONTENT = "Let me check."
CALL = ("get_weather", {"city": "Tokyo"})
#: Engine core in its own process: the API server process then runs the front end only.
SERVER_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "1"}
PY_SPY_RATE = 100


# --- one request ---------------------------------------------------------------------------------


@dataclass
class Result:
    """One streamed request: timings (seconds from its start), merged reply, error if any."""

    latency_s: float = 0.0
    ttft_s: float | None = None
    reply: dict[str, Any] = field(default_factory=dict)
    completion_tokens: int = 0
    error: str = ""

    @property
    def problem(self) -> str:
        """Why the reply is wrong ("" when it is the script, parsed)."""
        return self.error or reply_problem(self.reply)


def reply_problem(reply: dict[str, Any]) -> str:
    """What differs from the scripted, parsed reply ("" when nothing does)."""
    calls = reply.get("tool_calls") or []
    if reply.get("reasoning") != REASONING:
        return f"reasoning {reply.get('reasoning')!r}"
    if reply.get("content") != CONTENT:
        return f"content {reply.get('content')!r}"
    if len(calls) != 1:
        return f"{len(calls)} tool calls"
    try:
        arguments = json.loads(calls[0]["arguments"])
    except ValueError:
        return f"arguments not JSON: {calls[0]['arguments']!r}"
    if (calls[0]["name"], arguments) != CALL:
        return f"tool call {calls[0]['name']}({arguments})"
    if reply.get("finish_reason") != "tool_calls":
        return f"finish_reason {reply.get('finish_reason')!r}"
    return ""


def chat_body(model: str, index: int) -> dict[str, Any]:
    """A streamed tool-calling request with thinking on; `index` makes every prompt distinct."""
    return {
        "model": model,
        "messages": [{"role": "user", "content": f"What is the weather in Tokyo? (#{index})"}],
        "tools": [WEATHER_TOOL],
        "temperature": 0,
        "max_tokens": 64,
        "chat_template_kwargs": {"enable_thinking": True},
        "stream_options": {"include_usage": True},
    }


def _has_output(event: dict[str, Any]) -> bool:
    for choice in event.get("choices", []):
        delta = choice.get("delta") or {}
        if delta.get("reasoning") or delta.get("reasoning_content") or delta.get("content"):
            return True
        if delta.get("tool_calls"):
            return True
    return False


def stream_one(url: str, body: dict[str, Any], timeout: float) -> Result:
    """Send one streaming request; time its first output and its end."""
    result = Result()
    started = time.perf_counter()
    usage: dict[str, Any] = {}

    def timed(events: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for event in events:
            if result.ttft_s is None and _has_output(event):
                result.ttft_s = time.perf_counter() - started
            usage.update(event.get("usage") or {})
            yield event

    try:
        result.reply = collect_stream(timed(stream_events(url, body, timeout=timeout)))
    except HTTPStatusError as err:
        result.error = f"HTTP {err.status}: {err.body[:200]}"
    except (OSError, ValueError) as err:  # timeouts, resets, broken event JSON
        result.error = f"{type(err).__name__}: {err}"
    result.latency_s = time.perf_counter() - started
    result.completion_tokens = int(usage.get("completion_tokens") or 0)
    return result


def wave(
    url: str, make_body: Callable[[int], dict[str, Any]], size: int, timeout: float, first: int = 0
) -> list[Result]:
    """`size` requests in as many threads, released together; every thread ends by `timeout`."""
    results: list[Result | None] = [None] * size
    barrier = threading.Barrier(size)

    def run(slot: int) -> None:
        barrier.wait()
        results[slot] = stream_one(url, make_body(first + slot), timeout)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(size)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout + 10
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [r if r is not None else Result(error="thread did not finish") for r in results]


# --- profiling -----------------------------------------------------------------------------------


def plugin_dirs() -> list[str]:
    """Source directories of the plugin's packages (the parsers live outside the main one)."""
    import interns1_plugin
    import interns1_plugin.chat_templates
    import interns1_plugin.parsers

    paths = [
        *interns1_plugin.__path__,
        *interns1_plugin.parsers.__path__,
        *interns1_plugin.chat_templates.__path__,
    ]
    return sorted({os.path.realpath(p) + os.sep for p in paths})


class PySpy:
    """`py-spy record --format raw` on one process, stopped with SIGINT when the load ends."""

    def __init__(self, pid: int, out: Path, rate: int = PY_SPY_RATE) -> None:
        self.out = out
        self.binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        command = [self.binary, "record", "--pid", str(pid), "--format", "raw", "--rate"]
        command += [str(rate), "--gil", "--full-filenames", "--nolineno", "--nonblocking"]
        command += ["-o", str(out)]
        self.log = out.with_suffix(".log")
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    @staticmethod
    def available() -> bool:
        return bool(shutil.which("py-spy") or Path(sys.executable).with_name("py-spy").exists())

    def stop(self) -> dict[str, Any]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self.out.exists():
            return {"error": self.log.read_text(errors="replace")[-500:]}
        return attribute(self.out.read_text(errors="replace"), plugin_dirs())


def _frame_file(frame: str) -> str:
    """The file of a raw py-spy frame, `function (path)`."""
    return frame[frame.rfind("(") + 1 : -1] if frame.endswith(")") else ""


def attribute(raw: str, dirs: Sequence[str]) -> dict[str, Any]:
    """Share of the sampled stacks that ran plugin code (anywhere in the stack / innermost)."""
    total = inclusive = own = 0
    by_function: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        ours = [f for f in frames if _frame_file(f).startswith(tuple(dirs))]
        if ours:
            inclusive += count
            # The outermost plugin frame names the entry point that was called.
            by_function[ours[0].split(" (")[0] + " (" + Path(_frame_file(ours[0])).name + ")"] += (
                count
            )
        if frames and _frame_file(frames[-1]).startswith(tuple(dirs)):
            own += count
    return {
        "samples": total,
        "plugin_inclusive_samples": inclusive,
        "plugin_self_samples": own,
        "plugin_inclusive_share": inclusive / total if total else None,
        "plugin_self_share": own / total if total else None,
        "top_plugin_entry_points": by_function.most_common(8),
    }


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- one checkpoint ------------------------------------------------------------------------------


def build_checkpoint(kind: str, root: Path) -> Path:
    from interns1_plugin.testing.scripted_checkpoint import (
        PRO_TOOL_CALL_SCRIPT,
        WEATHER_TOOL_CALL_SCRIPT,
        build_scripted_qwen3,
    )

    if kind == "qwen3":
        return build_scripted_qwen3(root / kind, WEATHER_TOOL_CALL_SCRIPT)
    from interns1_plugin.testing.tiny_interns1_pro import build_tiny_interns1_pro

    return build_tiny_interns1_pro(root / kind, script=PRO_TOOL_CALL_SCRIPT)


def server_args(model: str, concurrency: int, kv_bytes: str) -> list[str]:
    return [
        *PARSER_FLAGS,
        "--served-model-name",
        model,
        "--max-num-seqs",
        str(concurrency),
        "--kv-cache-memory-bytes",
        kv_bytes,
    ]


def summarize(results: Sequence[Result], seconds: float) -> dict[str, Any]:
    good = [r for r in results if not r.problem]
    latencies = np.array([r.latency_s for r in good]) if good else np.zeros(1)
    ttfts = np.array([r.ttft_s for r in good if r.ttft_s is not None]) if good else np.zeros(1)
    problems = Counter(r.problem for r in results if r.problem)
    return {
        "requests": len(results),
        "errors": sum(1 for r in results if r.error),
        "wrong_replies": sum(1 for r in results if r.problem and not r.error),
        "problems": problems.most_common(5),
        "latency_p50_s": float(np.percentile(latencies, 50)),
        "latency_p99_s": float(np.percentile(latencies, 99)),
        "ttft_p50_s": float(np.percentile(ttfts, 50)),
        "ttft_p99_s": float(np.percentile(ttfts, 99)),
        "requests_per_s": len(good) / seconds,
        "output_tokens_per_s": sum(r.completion_tokens for r in good) / seconds,
        "seconds": seconds,
    }


def run_checkpoint(
    kind: str, checkpoint: Path, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    """Serve one checkpoint, warm it up, then send waves for `args.duration` seconds."""
    model = f"scripted-{kind}"
    server = VllmServer(
        checkpoint,
        server_args(model, args.concurrency, args.kv_cache),
        log_path=workdir / f"{kind}.log",
        env=SERVER_ENV,
        use_vllm_cli=True,
        startup_timeout=600,
    )
    url = server.base_url + "/v1/chat/completions"
    with server:
        assert server.pid is not None
        warm = wave(url, lambda i: chat_body(model, -1 - i), 2, args.timeout)
        if any(r.problem for r in warm):
            raise RuntimeError(f"{kind}: warm-up failed: {warm[0].problem}\n{server.log_tail()}")
        spy = PySpy(server.pid, workdir / f"{kind}.raw") if args.profile else None
        cpu0, started = process_cpu_s(server.pid), time.perf_counter()
        results: list[Result] = []
        waves = 0
        while not waves or time.perf_counter() - started < args.duration:
            results += wave(
                url,
                lambda i: chat_body(model, i),
                args.concurrency,
                args.timeout,
                first=len(results),
            )
            waves += 1
            print(f"  [{kind}] wave {waves}: {len(results)} requests", file=sys.stderr)
        seconds = time.perf_counter() - started
        api_cpu = process_cpu_s(server.pid) - cpu0
        profile = spy.stop() if spy else {"error": "py-spy not installed"}
        startup = server.startup_seconds
    summary = summarize(results, seconds)
    return {
        "checkpoint": kind,
        "startup_s": round(startup or 0.0, 1),
        "waves": waves,
        "api_server_cpu_s": round(api_cpu, 2),
        "api_server_cpu_share_of_one_core": api_cpu / seconds,
        "summary": summary,
        "profile": profile,
        "latencies_s": [round(r.latency_s, 4) for r in results if not r.problem],
        "ttfts_s": [round(r.ttft_s, 4) for r in results if not r.problem and r.ttft_s],
    }


# --- report --------------------------------------------------------------------------------------


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def tables(runs: Sequence[dict[str, Any]]) -> str:
    header = [
        "checkpoint",
        "requests",
        "errors",
        "wrong",
        "p50 latency",
        "p99 latency",
        "p50 TTFT",
        "p99 TTFT",
        "req/s",
        "tok/s",
        "API CPU (cores)",
        "plugin share (incl / self)",
    ]
    rows = []
    for run in runs:
        s, p = run["summary"], run["profile"]
        rows.append(
            [
                run["checkpoint"],
                str(s["requests"]),
                str(s["errors"]),
                str(s["wrong_replies"]),
                f"{s['latency_p50_s']:.2f} s",
                f"{s['latency_p99_s']:.2f} s",
                f"{s['ttft_p50_s']:.2f} s",
                f"{s['ttft_p99_s']:.2f} s",
                f"{s['requests_per_s']:.1f}",
                f"{s['output_tokens_per_s']:.0f}",
                f"{run['api_server_cpu_share_of_one_core']:.2f}",
                f"{_share(p.get('plugin_inclusive_share'))} / {_share(p.get('plugin_self_share'))}",
            ]
        )
    text = markdown_table(header, rows)
    for run in runs:
        top = run["profile"].get("top_plugin_entry_points") or []
        if top:
            total = run["profile"]["samples"]
            text += f"\n\n{run['checkpoint']}: plugin entry points (share of API-server samples)\n"
            text += markdown_table(
                ["function", "share"], [[name, _share(n / total)] for name, n in top]
            )
    return text


def plot(runs: Sequence[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for run in runs:
        for ax, key in zip(axes, ("latencies_s", "ttfts_s"), strict=True):
            values = np.sort(np.array(run[key]))
            if values.size:
                ax.plot(
                    values, np.arange(1, values.size + 1) / values.size, label=run["checkpoint"]
                )
    for ax, title in zip(axes, ("request latency", "time to first token"), strict=True):
        ax.set_xlabel("seconds")
        ax.set_ylabel("fraction of requests")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    concurrency = runs[0]["concurrency"] if runs else 0
    fig.suptitle(f"{concurrency} concurrent streaming tool-call requests, waves (CDF)")
    save_figure(fig, out)


# --- main ----------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of waves per model")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=300.0, help="client timeout per request")
    parser.add_argument("--kv-cache", default="256M", help="--kv-cache-memory-bytes of the server")
    parser.add_argument("--checkpoints", nargs="*", default=["qwen3", "pro"])
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.profile and not PySpy.available():
        print("py-spy not found: no CPU attribution (pip install py-spy)", file=sys.stderr)
        args.profile = False
    started = time.perf_counter()
    runs = []
    with tempfile.TemporaryDirectory(prefix="interns1-load-") as scratch:
        workdir = Path(scratch)
        for kind in args.checkpoints:
            checkpoint = build_checkpoint(kind, workdir)
            runs.append(
                {**run_checkpoint(kind, checkpoint, args, workdir), "concurrency": args.concurrency}
            )
    report: dict[str, Any] = {
        "machine": machine_info(),
        "settings": {
            "duration_s": args.duration,
            "concurrency": args.concurrency,
            "kv_cache": args.kv_cache,
            "server_env": SERVER_ENV,
            "py_spy_rate_hz": PY_SPY_RATE if args.profile else None,
        },
        "runs": runs,
        "all_ok": all(
            r["summary"]["errors"] == 0 and r["summary"]["wrong_replies"] == 0 for r in runs
        ),
    }
    report["table"] = tables(runs)
    report["wall_s"] = round(time.perf_counter() - started, 1)
    print(report["table"])
    plot(runs, args.out)
    write_json(args.out.with_suffix(".json"), report)
    print(f"\nwrote {args.out} and {args.out.with_suffix('.json')}", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
