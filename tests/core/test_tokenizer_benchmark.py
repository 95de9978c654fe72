"""The tokenizer benchmark still runs end to end and its exact-ids check passes.

Throughput is not asserted (it depends on the machine); what must not rot silently is the script
and the exactness it reports.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "benchmarks" / "tokenizer.py"
SPEC_DIR = Path(os.environ.get("INTERNS1_SPEC_DIR", REPO_ROOT.parent / "shared" / "spec"))

pytestmark = [
    pytest.mark.skipif(
        not (SPEC_DIR / "tokenizer" / "vocab").is_dir(),
        reason=f"tokenizer spec not found at {SPEC_DIR / 'tokenizer'} (set INTERNS1_SPEC_DIR)",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("matplotlib") is None,
        reason="matplotlib is not installed (the [bench] extra)",
    ),
]


def test_quick_run_writes_table_json_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "results" / "tokenizer.png"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--spec", str(SPEC_DIR), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| engine" in proc.stdout
    assert "PASS exact ids" in proc.stdout
    assert out.read_bytes().startswith(b"\x89PNG")
    report = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert report["exact"] is True
    assert {row["key"] for row in report["rows"]} >= {"rust-qwen2", "ours", "pure-python"}
