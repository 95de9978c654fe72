"""The serving benchmark still runs end to end and still measures what it claims to.

Timings are not asserted (they depend on the machine). What is: every engine produced the
tokens it was asked for, the plugin and vLLM's Qwen3 on the same language weights generated
identical greedy tokens, and the table, JSON and plot were written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("vllm")
pytest.importorskip("matplotlib")

pytestmark = pytest.mark.vllm

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "serving.py"


def test_quick_run_writes_table_json_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "results" / "serving.png"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--no-builtin", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert report["table"] in proc.stdout
    assert out.read_bytes().startswith(b"\x89PNG")

    settings = report["settings"]
    per_round = {
        "text": settings["prompts"] * settings["output_tokens"],
        "image": settings["image_requests"] * settings["output_tokens"],
    }
    expected = {"plugin": {"text", "image"}, "plugin_lm": {"text"}, "qwen3": {"text"}}
    assert {e: set(cases) for e, cases in report["summary"].items()} == expected
    for cases in report["summary"].values():
        for case, row in cases.items():
            assert row["output_tokens"] == per_round[case] * settings["rounds"]
            assert row["tokens_per_s"] > 0 and row["ttft_ms"] > 0
    plugin_class = "interns1_plugin.vllm.models.interns1.InternS1ForConditionalGeneration"
    assert report["engines"]["plugin"]["model_class"] == plugin_class
    assert report["engines"]["plugin_lm"]["model_class"] == plugin_class
    qwen3_class = "vllm.model_executor.models.qwen3.Qwen3ForCausalLM"
    assert report["engines"]["qwen3"]["model_class"] == qwen3_class
    assert report["greedy_tokens_identical"] is True
    assert {(r["engine"], r["reference"], r["case"]) for r in report["ratios"]} == {
        ("plugin", "qwen3", "text"),
        ("plugin_lm", "qwen3", "text"),
    }
