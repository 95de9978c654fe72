"""Report sections of the in-process benchmarks: parsers, preprocessing, tokenizer, time series.

Each `render_*` turns one results JSON into its tables and the sentence that reads them.
"""

from __future__ import annotations

from _common import markdown_table
from _report_format import (
    Data,
    Section,
    mib,
    ms,
    points_label,
    ratio,
    sentence,
    size_label,
    timing,
    with_ratio,
)

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
    return sentence(parts)


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
    return sentence(parts)


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
    return sentence(parts)


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
    return sentence(parts)
