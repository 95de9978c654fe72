"""Cost of Intern-S1-Pro time-series inputs: preprocessing on the serving CPU, then the encoder.

Why: a series may carry up to 10^6 points per channel. Preprocessing (decode a .npy data URL,
validate, z-normalise, count tokens) runs on the serving CPU for every request and must stay well
under a second; the encoder's fixed-size per-patch subsampler dominates its cost and memory, and
its chunking must keep peak memory bounded.

1. Preprocessing, the plugin's `preprocess_time_series` against LMDeploy 0.18's own path in the
   same run: its `load_time_series` (data URL -> array) and its unmodified
   `InternS1ProVisionModel.time_series_processor`, called on an instance made without a checkpoint
   that carries only what the method reads (the three Pro token strings and a byte-level
   tokenizer); the prompt is empty, so tokenisation costs it next to nothing. LMDeploy truncates
   at 240,000 points, so its token count stops growing there.
2. Encoding with random weights: the subsampler at its fixed (real) size, the Whisper-style part
   shrunk to d_model 256 x 2 layers so it runs on a CPU. Each case runs in a fresh process (one
   timed run above 10^4 samples, up to three below), whose RSS growth while encoding is
   reported.

    python benchmarks/time_series.py [--repeats 5] [--out benchmarks/results/time_series.png]
                                     [--quick]

Writes a Markdown table to stdout, a PNG to --out and the numbers as JSON beside it.
"""

from __future__ import annotations

import argparse
import base64
import io
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import machine_info, markdown_table, save_figure, write_json  # noqa: E402

from interns1_plugin import formats  # noqa: E402
from interns1_plugin.modeling.time_series_encoder import (  # noqa: E402
    DEFAULT_PATCH_CHUNK_ROWS,
    InternS1ProTimeSeriesEncoder,
)
from interns1_plugin.processing.time_series import (  # noqa: E402
    NPY_DATA_URL,
    preprocess_time_series,
    time_series_placeholder,
)

DEFAULT_OUT = Path("benchmarks/results/time_series.png")
#: (points per channel, channels)
CASES = ((1_000, 1), (10_000, 1), (100_000, 1), (1_000_000, 1), (100_000, 3))
QUICK_CASES = ((1_000, 1), (10_000, 1), (2_000, 3))
TARGET_POINTS = 1_000_000
TARGET_SECONDS = 1.0
MEMORY_BOUND_BYTES = 2 * 2**30
ENCODER_CONFIG = dict(
    d_model=256,
    encoder_layers=2,
    encoder_attention_heads=4,
    encoder_ffn_dim=1024,
    activation_function="gelu",
    num_mel_bins=80,
    max_source_positions=1500,
    ts_adapt_in_dim=256,
    ts_adapt_out_dim=256,
    ts_hidden_dim=256,
    out_hidden_size=512,
)
LMDEPLOY_TRUNCATION = 240_000


def npy_data_url(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return NPY_DATA_URL + base64.b64encode(buffer.getvalue()).decode()


def timed(function: Callable[[], Any], repeats: int) -> dict[str, float]:
    """Wall-clock seconds over `repeats` runs after one warm-up: median and best."""
    function()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return {"median_s": statistics.median(samples), "best_s": min(samples)}


# --- memory ------------------------------------------------------------------------------------


def rss_bytes() -> int:
    """Resident set size now (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


class PeakRss:
    """Samples RSS on a thread while a region runs (torch kernels release the GIL)."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.before = self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakRss:
        self.before = self.peak = rss_bytes()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            self._stop.wait(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())

    @property
    def growth(self) -> int:
        return self.peak - self.before


# --- LMDeploy's preprocessing ------------------------------------------------------------------


def lmdeploy_preprocessing(workdir: Path) -> tuple[Callable[[str], dict] | None, str]:
    """LMDeploy 0.18's decode + `time_series_processor`, or None and the reason it cannot run.

    The returned function also reports `tokens`: the `<|ts_token|>` ids in the prompt it built.
    """
    try:
        from lmdeploy.vl import load_time_series
        from lmdeploy.vl.model.interns1_pro import InternS1ProVisionModel
        from transformers import PreTrainedTokenizerFast

        from interns1_plugin.testing.tiny_interns1 import write_byte_level_tokenizer
    except ImportError as error:
        return None, f"LMDeploy's preprocessing cannot be imported here ({error})"

    write_byte_level_tokenizer(workdir)
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(workdir / "tokenizer.json"))
    pro_tokens = [formats.TS_START, formats.TS_TOKEN, formats.TS_END]
    tokenizer.add_special_tokens({"additional_special_tokens": pro_tokens})
    model = InternS1ProVisionModel.__new__(InternS1ProVisionModel)  # no checkpoint to read
    model.tokenizer = tokenizer
    model.ts_start_token, model.ts_token, model.ts_end_token = pro_tokens
    model.ts_token_id = tokenizer.convert_tokens_to_ids(formats.TS_TOKEN)

    def run(url: str) -> dict:
        prompt = ["".join(pro_tokens)]
        out = model.time_series_processor(text=prompt, time_series=[load_time_series(url)])
        out["tokens"] = out["input_ids"][0].count(model.ts_token_id)
        return out

    description = (
        "LMDeploy 0.18: load_time_series + InternS1ProVisionModel.time_series_processor "
        "(unmodified; instance made without a checkpoint; it also expands and tokenises the "
        "one-series prompt)"
    )
    return run, description


# --- one case ----------------------------------------------------------------------------------


def bench_case(
    points: int, channels: int, repeats: int, theirs: Callable[[str], dict] | None
) -> dict[str, Any]:
    rng = np.random.default_rng(points + channels)
    series = rng.standard_normal((points, channels)).astype(np.float32).squeeze()
    url = npy_data_url(series)
    with PeakRss() as memory:
        ours = preprocess_time_series(url)
    row: dict[str, Any] = {
        "points": points,
        "channels": channels,
        "payload_bytes": len(url),
        "tokens": ours.num_tokens,
        "ours": timed(
            lambda: time_series_placeholder(preprocess_time_series(url).num_tokens), repeats
        ),
        "preprocess_rss_growth_bytes": memory.growth,
    }
    if theirs is not None:
        reference = theirs(url)
        values = reference["ts_values"][0].float()
        kept = values.shape[0]
        row["lmdeploy"] = timed(lambda: theirs(url), repeats)
        row["lmdeploy_tokens"] = reference["tokens"]
        row["lmdeploy_points_kept"] = kept
        # LMDeploy hands bfloat16 to the model; compare where both kept the points.
        row["max_abs_diff_vs_lmdeploy"] = float((values - ours.values[:kept]).abs().max().item())
    row.update(encode_in_child(points, channels, repeats))
    return row


def encode_in_child(points: int, channels: int, repeats: int) -> dict[str, Any]:
    """Runs `encode_case` in a fresh process, so its peak RSS is that case's alone."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(encode_case, points, channels, repeats).result()


def encode_case(points: int, channels: int, repeats: int) -> dict[str, Any]:
    """Encode one preprocessed random series: seconds (median of runs) and RSS growth."""
    torch.manual_seed(0)
    encoder = InternS1ProTimeSeriesEncoder(SimpleNamespace(**ENCODER_CONFIG)).eval()
    data = np.random.default_rng(points + channels).standard_normal((points, channels))
    series = preprocess_time_series(data.astype(np.float32))
    runs = max(1, min(repeats, 3)) if points * channels <= 10_000 else 1
    samples = []
    with torch.inference_mode():
        encoder([torch.randn(2_000, 1)], [None])  # warm-up, small
        with PeakRss() as memory:
            for _ in range(runs):
                start = time.perf_counter()
                out = encoder([series.values], [series.sampling_rate])[0]
                samples.append(time.perf_counter() - start)
    assert out.shape[0] == series.num_tokens, (out.shape, series.num_tokens)
    return {
        "encode": {"median_s": statistics.median(samples), "best_s": min(samples)},
        "encode_rss_peak_bytes": memory.peak,
        "encode_rss_growth_bytes": memory.growth,
    }


# --- report ------------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}" if seconds < 10 else f"{seconds * 1e3:.0f}"


def mib(count: int) -> str:
    return f"{count / 2**20:.0f}"


def table(rows: Sequence[dict[str, Any]]) -> str:
    header = [
        "points x ch",
        "tokens (ours / LMDeploy)",
        "preprocess ms ours (median / best)",
        "LMDeploy ms",
        "encode s",
        "encode peak RSS MiB (+growth)",
    ]
    lines = []
    for row in rows:
        theirs = row.get("lmdeploy")
        lines.append(
            [
                f"{row['points']:,} x {row['channels']}",
                f"{row['tokens']} / {row.get('lmdeploy_tokens', '-')}",
                f"{ms(row['ours']['median_s'])} / {ms(row['ours']['best_s'])}",
                f"{ms(theirs['median_s'])} / {ms(theirs['best_s'])}" if theirs else "-",
                f"{row['encode']['median_s']:.2f}",
                f"{mib(row['encode_rss_peak_bytes'])} (+{mib(row['encode_rss_growth_bytes'])})",
            ]
        )
    return markdown_table(header, lines)


def plot(rows: Sequence[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    single = [r for r in rows if r["channels"] == 1]
    points = [r["points"] for r in single]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.loglog(points, [r["ours"]["median_s"] * 1e3 for r in single], "o-", label="ours")
    if all("lmdeploy" in r for r in single):
        left.loglog(
            points, [r["lmdeploy"]["median_s"] * 1e3 for r in single], "s--", label="LMDeploy 0.18"
        )
    left.axhline(TARGET_SECONDS * 1e3, color="grey", linestyle=":", label="1 s target")
    left.set_xlabel("points (1 channel)")
    left.set_ylabel("preprocessing ms (median)")
    left.set_title("decode .npy data URL + normalise + count")
    left.legend()

    right.loglog(points, [r["encode"]["median_s"] for r in single], "o-", label="encode s")
    right.set_xlabel("points (1 channel)")
    right.set_ylabel("encode seconds", color="C0")
    twin = right.twinx()
    twin.semilogx(points, [r["encode_rss_growth_bytes"] / 2**20 for r in single], "s--", color="C1")
    twin.set_ylabel("RSS growth while encoding, MiB", color="C1")
    right.set_title("encoder (real subsampler, d_model 256 x 2 layers)")
    save_figure(fig, out)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, help="timed preprocessing runs (median shown)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG path; JSON beside")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (seconds)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 5)
    cases = QUICK_CASES if args.quick else CASES
    warnings.simplefilter("ignore")
    started = time.perf_counter()

    with tempfile.TemporaryDirectory() as scratch:
        theirs, reference = lmdeploy_preprocessing(Path(scratch))
        rows = [bench_case(n, c, repeats, theirs) for n, c in cases]

    report: dict[str, Any] = {
        "machine": machine_info(),
        "torch_threads": torch.get_num_threads(),
        "encoder_config": ENCODER_CONFIG,
        "patch_chunk_rows": DEFAULT_PATCH_CHUNK_ROWS,
        "reference": reference,
        "rows": rows,
    }
    lines = [table(rows), "", f"- reference: {reference}"]
    target = next((r for r in rows if r["points"] == TARGET_POINTS and r["channels"] == 1), None)
    if target is not None:
        seconds = target["ours"]["median_s"]
        verdict = "PASS" if seconds < TARGET_SECONDS else "FAIL"
        report["target_pass"] = seconds < TARGET_SECONDS
        lines.append(
            f"- {verdict} preprocessing of {TARGET_POINTS:,} points: {seconds * 1e3:.0f} ms "
            f"median (target < {TARGET_SECONDS:.0f} s), no truncation ({target['tokens']} tokens)"
        )
        growth = target["encode_rss_growth_bytes"]
        verdict = "PASS" if growth < MEMORY_BOUND_BYTES else "FAIL"
        report["memory_pass"] = growth < MEMORY_BOUND_BYTES
        lines.append(
            f"- {verdict} encoder memory at {TARGET_POINTS:,} points: RSS grew {mib(growth)} MiB "
            f"(bound {mib(MEMORY_BOUND_BYTES)} MiB; "
            f"patch chunks of {DEFAULT_PATCH_CHUNK_ROWS:,} samples)"
        )
    else:
        lines.append(f"- quick run: the {TARGET_POINTS:,}-point target is not measured")
    if theirs is not None:
        cut = [r for r in rows if r["lmdeploy_points_kept"] < r["points"]]
        for row in cut:
            lines.append(
                f"- LMDeploy kept {row['lmdeploy_points_kept']:,} of {row['points']:,} points "
                f"(silent truncation): {row['lmdeploy_tokens']} tokens instead of {row['tokens']}"
            )
        worst = max(r["max_abs_diff_vs_lmdeploy"] for r in rows)
        lines.append(f"- normalised values vs LMDeploy's (bfloat16): max |diff| {worst:.1e}")
    report["table"] = "\n".join(lines)
    report["wall_s"] = round(time.perf_counter() - started, 1)
    print(report["table"])

    plot(rows, args.out)
    write_json(args.out.with_suffix(".json"), report)
    print(f"\nwrote {args.out} and {args.out.with_suffix('.json')}", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
