"""An Intern-S1 directory loads in LMDeploy's tokenizer and config wrappers without remote code.

Run in fresh interpreters, as `lmdeploy serve api_server` starts: importing LMDeploy's parser
package (which the API server does before it builds its engine) fires the plugin's start-up hook,
which also registers the config and tokenizer classes. The checkpoint bundles hub code under
`auto_map` that would write a marker file if it ever ran.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("lmdeploy.serve.parsers", exc_type=ImportError)

from interns1_plugin.lmdeploy import import_hook  # noqa: E402

pytestmark = pytest.mark.lmdeploy

REMOTE_CODE = "import pathlib\npathlib.Path({marker!r}).write_text('remote code ran')\n"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from interns1_plugin.testing.tiny_interns1 import build_tiny_interns1, write_dynamic_tokenizer

    root = tmp_path_factory.mktemp("lmdeploy-interns1")
    model = build_tiny_interns1(
        root / "model", "mini", with_auto_map=True, tokenizer_writer=write_dynamic_tokenizer
    )
    marker = root / "remote-code-ran"
    for module in ("configuration_interns1", "tokenization_interns1", "processing_interns1"):
        (model / f"{module}.py").write_text(REMOTE_CODE.format(marker=str(marker)))
    config = json.loads((model / "config.json").read_text())
    tokenizer_config = json.loads((model / "tokenizer_config.json").read_text())
    tokenizer_config["auto_map"] = {
        "AutoTokenizer": ["tokenization_interns1.InternS1Tokenizer", None]
    }
    (model / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    assert "auto_map" in config
    return model, marker


def _child(code: str, *, disable: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != import_hook.DISABLE_ENV}
    if disable:
        env[import_hook.DISABLE_ENV] = "1"
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


LOAD = """
import json, sys
import lmdeploy.serve.parsers  # what `lmdeploy serve api_server` imports first
from lmdeploy.hf_configs import config_from_pretrained
from lmdeploy.tokenizer import Tokenizer

path = sys.argv[-1] if len(sys.argv) > 1 else {path!r}
config = config_from_pretrained(path, trust_remote_code=True)
tokenizer = Tokenizer(path, trust_remote_code=True)
inner = tokenizer.model.model
ids = tokenizer.encode("Aspirin is <SMILES>CC(=O)Oc1ccccc1C(=O)O</SMILES>.", add_bos=False)
print(json.dumps({{
    "config": type(config).__module__ + "." + type(config).__qualname__,
    "tokenizer": type(inner).__module__ + "." + type(inner).__qualname__,
    "round_trip": tokenizer.decode(ids, skip_special_tokens=False),
}}))
"""


def test_lmdeploy_loads_the_plugin_classes_and_never_runs_bundled_code(checkpoint):
    model, marker = checkpoint
    proc = _child(LOAD.format(path=str(model)))
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])
    assert report["config"] == "interns1_plugin.configs.interns1.InternS1Config"
    assert report["tokenizer"] == "interns1_plugin.tokenizer.tokenization.InternS1Tokenizer"
    assert report["round_trip"] == "Aspirin is <SMILES>CC(=O)Oc1ccccc1C(=O)O</SMILES>."
    assert not marker.exists(), "the checkpoint's bundled code ran"


def test_without_the_hook_lmdeploy_falls_back_to_the_bundled_code(checkpoint):
    """The control: it is the plugin's registration that keeps the bundled code from running."""
    model, marker = checkpoint
    proc = _child(LOAD.format(path=str(model)), disable=True)
    reports = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    ours = reports and "interns1_plugin" in json.loads(reports[-1])["tokenizer"]
    assert proc.returncode != 0 or not ours
    marker.unlink(missing_ok=True)
