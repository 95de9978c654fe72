"""The preprocessing benchmark still runs end to end and still checks its outputs agree.

Timings are not asserted (they depend on the machine); the script asserts, in the same run, that
the plugin's processor and transformers' give identical ids and pixels within 1e-5.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("matplotlib")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "preprocess.py"


def test_quick_run_writes_table_json_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "results" / "preprocess.png"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--repeats", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "| processor" in proc.stdout

    assert out.read_bytes().startswith(b"\x89PNG")
    report = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert report["image"]["ids_equal"] is True
    assert report["image"]["max_abs_pixel_diff"] <= 1e-5
    assert report["image"]["tiles"] == 13
    assert report["table"] in proc.stdout
