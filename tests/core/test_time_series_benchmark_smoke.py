"""The time-series benchmark still runs end to end and still reports what it measures.

Timings are not asserted (they depend on the machine); the script itself asserts that the encoder
returns as many rows as the token count for every case.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "time_series.py"


def test_quick_run_writes_table_json_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "results" / "time_series.png"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| points x ch" in proc.stdout

    assert out.read_bytes().startswith(b"\x89PNG")
    report = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert report["table"] in proc.stdout
    rows = report["rows"]
    assert [(r["points"], r["channels"]) for r in rows] == [(1_000, 1), (10_000, 1), (2_000, 3)]
    for row in rows:
        assert row["tokens"] > 0 and row["encode"]["median_s"] > 0
    if importlib.util.find_spec("lmdeploy") is not None:
        assert all(r["lmdeploy_tokens"] == r["tokens"] for r in rows)
        assert all(r["max_abs_diff_vs_lmdeploy"] < 0.05 for r in rows)
