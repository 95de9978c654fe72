"""Report sections of the benchmarks run against a server: serving, hostile inputs, load.

Each `render_*` turns one results JSON into its tables and the sentence that reads them.
"""

from __future__ import annotations

from typing import Any

from _common import markdown_table
from _report_format import Data, Section, ratio, sentence, with_ratio

#: Serving references, in order of preference: vLLM's built-in Intern-S1, then Qwen3 on the same
#: language weights.
SERVING_REFERENCES = ("builtin", "qwen3")


def render_serving(data: Data) -> Section:
    summary, clocks, engines = data["summary"], data["clocks"], data["engines"]
    header = ["case", "engine"]
    for clock in clocks:
        name = _clock_name(clock)
        header += [f"tokens/s ({name})", f"TTFT ms ({name})"]
    header.append("reference")
    rows = []
    for case in ("text", "image"):
        reference = next((r for r in SERVING_REFERENCES if case in summary.get(r, {})), None)
        ref_row = summary[reference][case] if reference else None
        for engine, cases in summary.items():
            row = cases.get(case)
            if row is None:
                continue
            cells = []
            for clock in clocks:
                tps, ttft = row[f"{clock}_tokens_per_s"], row[f"{clock}_ttft_ms"]
                ref_tps = ref_row and ref_row[f"{clock}_tokens_per_s"]
                ref_ttft = ref_row and ref_row[f"{clock}_ttft_ms"]
                cells += [with_ratio(f"{tps:.0f}", tps, ref_tps)]
                cells += [with_ratio(f"{ttft:.2f}", ttft, ref_ttft)]
            label = engines.get(engine, {}).get("label", engine)
            rows.append([case, f"{label} ({engine})", *cells, reference or "none measured"])
    settings = data["settings"]
    notes = [
        "- (×): ÷ the reference's figure in the same rounds; tokens/s higher is better, TTFT "
        "lower is better.",
        f"- {data['device']}, {settings['dtype']}, {settings['rounds']} rounds; text: "
        f"{settings['prompts']} prompts x {settings['prompt_tokens']} tokens -> "
        f"{settings['output_tokens']} tokens; image: {settings['image_requests']} requests.",
        f"- vLLM's built-in Intern-S1: {data['builtin']}",
        f"- greedy text tokens identical across engines in every round: "
        f"{data['greedy_tokens_identical']}",
    ]
    return Section(
        markdown_table(header, rows) + "\n\n" + "\n".join(notes),
        _serving_shows(data),
        "vLLM's built-in Intern-S1 where it runs, else vLLM's Qwen3 on the same language "
        "weights; same rounds",
    )


def _clock_name(clock: str) -> str:
    return "engine CPU time" if clock == "cpu" else "wall clock"


def _serving_shows(data: Data) -> str:
    summary, clock = data["summary"], data["clocks"][0]
    clock_name = _clock_name(clock)
    reference = next((r for r in SERVING_REFERENCES if "text" in summary.get(r, {})), None)
    parts = []
    plugin = summary.get("plugin", {}).get("text")
    if plugin and reference:
        ref = summary[reference]["text"]
        who = "vLLM's built-in Intern-S1" if reference == "builtin" else "vLLM's own Qwen3"
        parts.append(
            f"on {clock_name} the plugin's Intern-S1 serves text at "
            f"{ratio(plugin[f'{clock}_tokens_per_s'], ref[f'{clock}_tokens_per_s'])} the "
            f"throughput of {who} on the same weights, with "
            f"{ratio(plugin[f'{clock}_ttft_ms'], ref[f'{clock}_ttft_ms'])} its time to first "
            "token"
        )
        target = data.get("target_ratio")
        got = plugin[f"{clock}_tokens_per_s"] / ref[f"{clock}_tokens_per_s"]
        if target:
            verdict = "met" if got >= target else "missed"
            parts.append(f"the {target}× throughput target is {verdict}")
    if data.get("greedy_tokens_identical"):
        parts.append("greedy tokens were identical in every round")
    if "builtin" not in summary:
        parts.append(f"vLLM's built-in Intern-S1 was not measured ({data['builtin']})")
    return sentence(parts)


def render_hostile_inputs(data: Data) -> Section:
    cases = data["cases"]
    header = ["input", "ckpt", "status (want)", "time", "peak RSS MB (growth)", "next", "built-in"]
    builtins = [_builtin_cell(case.get("builtin")) for case in cases]
    per_case = len(set(builtins)) > 1 or isinstance(cases[0].get("builtin"), dict)
    if not per_case:
        header = header[:-1]
    rows = []
    for case, builtin in zip(cases, builtins, strict=True):
        want = _wanted(case)
        status = str(case["status"]) if case["ok"] else f"**{case['status']}** (want {want})"
        row = [
            case["input"],
            case["checkpoint"],
            status,
            f"{case['wall_s']:.2f} s",
            f"{case['rss_peak_mb']:,.0f} (+{case['rss_growth_mb']:.0f})",
            "ok" if case["next_request_ok"] else "FAILED",
        ]
        rows.append(row + [builtin] if per_case else row)
    by_server = {}
    for case in cases:
        count = by_server.setdefault(case["checkpoint"], [0, 0])
        count[0] += case["ok"]
        count[1] += 1
    summary = markdown_table(
        ["checkpoint", "as expected", "server start s"],
        [
            [
                server,
                f"{ok} / {total}",
                ", ".join(str(s) for s in data["servers"]["startup_s"].get(server, [])) or "-",
            ]
            for server, (ok, total) in by_server.items()
        ],
    )
    notes = [f"- built-in models: {data['builtin']}"] if data.get("builtin") else []
    causes = {case["input"]: case.get("engine_cause") for case in cases if case.get("engine_cause")}
    notes += [f"- `{name}`: decided by the engine: {cause}" for name, cause in causes.items()]
    note = "\n".join(notes)
    return Section(
        summary + "\n\n" + markdown_table(header, rows) + ("\n\n" + note if note else ""),
        _hostile_shows(data),
        "vLLM's built-in Intern-S1 servers where they run (they need torchvision)",
    )


def _wanted(case: Data) -> str:
    """The statuses a hostile case accepts, as "200/400"."""
    return "/".join(str(s) for s in case["expected"])


def _builtin_cell(builtin: Any) -> str:
    """The built-in server's answer to a case, or why there is none."""
    if isinstance(builtin, dict):
        return f"{builtin['status']}, {builtin['wall_s']:.2f} s"
    return str(builtin or "-")


def _hostile_shows(data: Data) -> str:
    cases = data["cases"]
    bad = [c for c in cases if not c["ok"]]
    slowest = max(cases, key=lambda c: c["wall_s"])
    heaviest = max(cases, key=lambda c: c["rss_growth_mb"])
    parts = [f"{len(cases) - len(bad)} of {len(cases)} hostile inputs got the expected answer"]
    if bad:
        grouped: dict[tuple[str, str, str], list[str]] = {}
        for c in bad:
            want = _wanted(c)
            grouped.setdefault((c["input"], str(c["status"]), want), []).append(c["checkpoint"])
        listed = "; ".join(
            f"`{what}` ({', '.join(servers)}) got {got} instead of {want}"
            for (what, got, want), servers in grouped.items()
        )
        parts.append(f"the others: {listed}")
    parts.append(
        f"the slowest answer took {slowest['wall_s']:.2f} s (`{slowest['input']}`), the "
        f"largest memory growth was {heaviest['rss_growth_mb']:.0f} MB (`{heaviest['input']}`)"
    )
    missed = sum(not c["next_request_ok"] for c in cases)
    restarts = sum(bool(c.get("server_restarted")) for c in cases)
    parts.append(
        "the next normal request was served after every case"
        if not missed
        else f"the next normal request failed after {missed} cases"
    )
    parts.append(f"the server restarted {restarts} times" if restarts else "no server restarted")
    return sentence(parts)


def render_load(data: Data) -> Section:
    settings = data["settings"]
    header = [
        "checkpoint",
        "requests",
        "errors",
        "wrong",
        "latency p50 / p99 s",
        "TTFT p50 / p99 s",
        "req/s",
        "tok/s",
        "API CPU (cores)",
        "plugin share incl / self",
    ]
    rows = []
    for run in data["runs"]:
        s, profile = run["summary"], run.get("profile") or {}
        rows.append(
            [
                run["checkpoint"],
                str(s["requests"]),
                str(s["errors"]),
                str(s["wrong_replies"]),
                f"{s['latency_p50_s']:.2f} / {s['latency_p99_s']:.2f}",
                f"{s['ttft_p50_s']:.2f} / {s['ttft_p99_s']:.2f}",
                f"{s['requests_per_s']:.1f}",
                f"{s['output_tokens_per_s']:.0f}",
                f"{run['api_server_cpu_share_of_one_core']:.2f}",
                f"{_share(profile.get('plugin_inclusive_share'))} / "
                f"{_share(profile.get('plugin_self_share'))}",
            ]
        )
    notes = [
        f"- waves of {settings['concurrency']} concurrent streaming chat requests with tools and "
        f"thinking for {settings['duration_s']:.0f} s per checkpoint; KV cache "
        f"{settings['kv_cache']}; plugin share: py-spy samples of the API server"
        + ("" if settings.get("py_spy_rate_hz") else " (not profiled in this run)"),
    ]
    return Section(
        markdown_table(header, rows) + "\n\n" + "\n".join(notes),
        _load_shows(data),
        "",
    )


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


#: A share of the API server's CPU samples below this is read as "not the bottleneck".
MINOR_SHARE = 0.1


def _load_shows(data: Data) -> str:
    runs = data["runs"]
    requests = sum(r["summary"]["requests"] for r in runs)
    errors = sum(r["summary"]["errors"] for r in runs)
    wrong = sum(r["summary"]["wrong_replies"] for r in runs)
    parts = [
        f"{requests:,} streamed requests over {len(runs)} checkpoints ended with {errors} errors "
        f"and {wrong} wrong replies"
    ]
    shares = [
        r["profile"]["plugin_inclusive_share"]
        for r in runs
        if (r.get("profile") or {}).get("plugin_inclusive_share") is not None
    ]
    if shares:
        verdict = (
            "so the plugin is not the API server's bottleneck"
            if max(shares) < MINOR_SHARE
            else "a large share of the API server's time"
        )
        parts.append(
            f"plugin code held at most {max(shares):.1%} of the API server's samples, {verdict}"
        )
    p99 = max(r["summary"]["latency_p99_s"] for r in runs)
    parts.append(f"the worst p99 latency was {p99:.2f} s")
    return sentence(parts)
