"""The benchmark report renders every section from the stored results, without measuring.

The report is the one page readers see; what must not rot silently is its rendering against the
results JSON the benchmarks write (their schemas move as the scripts evolve). Nothing is run:
`--no-run` only reads `benchmarks/results/`.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS_DIR = Path(__file__).resolve().parents[2] / "benchmarks"
SCRIPT = BENCHMARKS_DIR / "report.py"
RESULTS = BENCHMARKS_DIR / "results"
#: Every benchmark the report covers, with the heading its section starts with.
SECTIONS = {
    "parsers": "## Parsers",
    "preprocess": "## Preprocessing",
    "tokenizer": "## Tokenizer",
    "serving": "## Serving",
    "time_series": "## Time series",
    "hostile_inputs": "## Hostile inputs",
    "load": "## Load",
}
MACHINE_ROWS = ("CPU", "cores", "RAM", "OS", "Python", "torch", "vllm", "lmdeploy", "transformers")


def _render(*args: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--no-run", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]


def _sections(text: str) -> dict[str, str]:
    """Section bodies by benchmark name, in the order they appear."""
    starts = {name: text.find(heading) for name, heading in SECTIONS.items()}
    assert all(position >= 0 for position in starts.values()), starts
    assert list(starts) == sorted(starts, key=starts.get), "sections out of order"
    ends = sorted(starts.values())[1:] + [len(text)]
    return {name: text[start:end] for (name, start), end in zip(starts.items(), ends, strict=True)}


def test_report_renders_every_section_from_stored_results(tmp_path: Path) -> None:
    stored = [name for name in SECTIONS if (RESULTS / f"{name}.json").exists()]
    if not stored:
        pytest.skip("no stored benchmark results")
    output = tmp_path / "out" / "REPORT.md"
    _render("--output", str(output))
    text = output.read_text(encoding="utf-8")

    machine = text[text.index("## Machine") :]
    for row in MACHINE_ROWS:
        assert f"| {row}" in machine
    for name, body in _sections(text).items():
        assert "Could not render" not in body, body[:2000]
        if name not in stored:
            assert "No results" in body
            continue
        assert "**What this shows:** " in body, name
        assert "Reference (built-in):" in body, name
        assert re.search(r"^\|.*\|$", body, re.MULTILINE), f"{name}: no table"
        if (RESULTS / f"{name}.png").exists():
            (link,) = re.findall(rf"!\[{name}\]\(([^)]+)\)", body)
            assert (output.parent / link).resolve() == (RESULTS / f"{name}.png").resolve()


def test_sentences_come_from_the_data(tmp_path: Path) -> None:
    """The prose quotes the JSON: a parser ratio in the sentence is the one in the table."""
    if not (RESULTS / "parsers.json").exists():
        pytest.skip("no stored parser results")
    output = tmp_path / "REPORT.md"
    _render("--output", str(output))
    body = _sections(output.read_text(encoding="utf-8"))["parsers"]
    shows = body.split("**What this shows:** ", 1)[1].splitlines()[0]
    quoted = re.findall(r"(\d[\d.]*)×", shows)
    assert quoted, shows
    assert f"({quoted[0]}×)" in body, shows


def test_missing_results_still_give_every_section(tmp_path: Path) -> None:
    output = tmp_path / "REPORT.md"
    _render("--results", str(tmp_path / "empty"), "--output", str(output))
    text = output.read_text(encoding="utf-8")
    for name, body in _sections(text).items():
        assert f"`{name}.json` is missing" in body
