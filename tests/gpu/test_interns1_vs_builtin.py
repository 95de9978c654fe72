"""The plugin's Intern-S1 model against vLLM's built-in one on the same tiny weights (GPU only).

vLLM's built-in Intern-S1 code imports torchvision, which only installs beside a CUDA torch, so
this comparison runs on GPU machines. Both sides run as children of this test through the script
entry of `tests/vllm/test_model_interns1.py`, with the same prompts and pixels.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.vllm,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None or importlib.util.find_spec("torchvision") is None,
        reason="needs vLLM with torchvision (the built-in model imports it)",
    ),
]

RUNNER = Path(__file__).parents[1] / "vllm" / "test_model_interns1.py"


def _runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("interns1_model_runner", RUNNER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _generate(model_dir: Path, out: Path, *extra: str) -> dict:
    child = subprocess.run(
        [sys.executable, str(RUNNER), str(model_dir), str(out), *extra],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert child.returncode == 0, child.stderr[-6000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("variant", ["mini", "s1"])
def test_greedy_logprobs_match_the_builtin_model(variant: str, tmp_path: Path) -> None:
    from interns1_plugin.testing.tiny_interns1 import build_tiny_interns1

    runner = _runner()
    model_dir = build_tiny_interns1(tmp_path / "model", variant, dtype="float32")
    builtin = _generate(model_dir, tmp_path / "builtin.json", "builtin")
    plugin = _generate(model_dir, tmp_path / "plugin.json")
    for name in runner.CASES:
        assert plugin[name]["prompt_ids"] == builtin[name]["prompt_ids"], name
        assert runner.check_logprobs_close(builtin[name], plugin[name], name) >= 1, name
