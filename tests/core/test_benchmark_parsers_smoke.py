"""The parser benchmark still runs end to end and our pair still extracts the call.

Timings are not asserted: they depend on the machine. What must not rot silently is the script
itself (engine APIs move) and the correctness check it reports for our pair.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "parsers.py"

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed"),
]


def test_quick_run_writes_table_json_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "results" / "parsers.png"
    # A subprocess, as the script is meant to be run: engine registries it touches stay its own.
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "| pair" in proc.stdout and "(ours)" in proc.stdout

    assert out.read_bytes().startswith(b"\x89PNG")
    report = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    pairs = {pair["key"]: pair for pair in report["pairs"]}
    assert pairs["ours"]["check"] == "ok"
    assert all(point["check"] == "ok" for point in pairs["ours"]["points"])
    assert report["table"] in proc.stdout
