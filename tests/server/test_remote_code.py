"""`vllm serve` never runs the Python files a checkpoint bundles, even with --trust-remote-code.

The hub's Intern-S1 repositories ship `configuration_*.py`, `modeling_*.py`, `tokenization_*.py`,
`processing_*.py` (and image / video processor) files and point `auto_map` entries at them; the
model cards tell users to pass `--trust-remote-code`. The plugin's promise is that its registered
classes serve the checkpoint and none of those files ever executes. Here tiny Intern-S1-mini and
Intern-S1-Pro checkpoints carry such files, rigged to record their execution in a marker directory
and then raise, and every `auto_map` a checkpoint can hold points at them: `config.json`
(AutoConfig, AutoModel, AutoModelForCausalLM), `tokenizer_config.json` (AutoTokenizer, slow and
fast), `processor_config.json`, `preprocessor_config.json` and `video_preprocessor_config.json`
(AutoProcessor, AutoImageProcessor, AutoVideoProcessor).

Each checkpoint is served by the literal user command, once plain and once with
`--trust-remote-code` (where transformers follows any `auto_map` no registered class overrides),
and answers a text and an image request, plus a time series on Pro. Prompt lengths are checked
against the plugin's own tiling / token rules, so the plugin's processors did the work. Afterwards
no marker exists and transformers' dynamic-module cache (`HF_MODULES_CACHE`, pointed at a
temporary directory) holds no copy of any bundled file, i.e. none was even fetched for import.

The mini checkpoint ships the tokenizer class the published one names (`InternS1Tokenizer`); the
tiny Pro's tokenizer config names transformers' `PreTrainedTokenizerFast`, which no registration
can prefer over the `auto_map` (the plugin's `tokenizer.local_only` keeps it local), and names no
processor class (`InternS1ProProcessor`, registered for the Pro configs, serves vLLM's
`AutoProcessor` chat-template lookup).

Controls show the absence of markers means something: each planted file leaves its marker when
run, and transformers' own dynamic-module loader, pointed at each `auto_map` entry, runs it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import runpy
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from interns1_plugin.demo import image_bytes, image_part
from interns1_plugin.processing.image import count_tiles
from interns1_plugin.processing.pro_vision import ProVisionConfig, count_image_tokens
from interns1_plugin.processing.time_series import num_time_series_tokens
from interns1_plugin.testing.http import post_json
from interns1_plugin.testing.remote_code import (
    HUB_MODULES,
    HUB_NAMES,
    PROCESSOR_CONFIGS,
    Bundle,
    plant_hub_code,
)
from interns1_plugin.testing.server import ServerStartError, VllmServer
from interns1_plugin.testing.tiny_interns1 import build_tiny_interns1, write_dynamic_tokenizer
from interns1_plugin.testing.tiny_interns1_pro import (
    TINY_PRO,
    build_tiny_interns1_pro,
    preprocessor_config,
)

pytestmark = [
    pytest.mark.server,
    pytest.mark.vllm,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed"),
]

MODEL = "tiny-intern-s1"
PROMPT = "What does this show?"
#: Time-series length of the Pro request (long enough for several placeholder tokens).
SERIES_POINTS = 400


def make_bundle(model: str, root: Path) -> Bundle:
    """The tiny `model` ("mini" or "pro") under `root`, with hub code planted."""
    if model == "mini":
        path = build_tiny_interns1(
            root / "model", "mini", with_auto_map=True, tokenizer_writer=write_dynamic_tokenizer
        )
    else:
        path = build_tiny_interns1_pro(root / "model", with_auto_map=True)
    bundle = Bundle(path, root / "markers", root / "hf-modules")
    plant_hub_code(path, *HUB_NAMES[model], bundle.markers)
    return bundle


# ----------------------------------------------------------------------------- controls


@pytest.mark.parametrize("model", sorted(HUB_NAMES))
def test_planted_files_leave_their_marker_when_run(model: str, tmp_path: Path) -> None:
    bundle = make_bundle(model, tmp_path)
    stem = HUB_NAMES[model][0]
    for kind in HUB_MODULES:
        with pytest.raises(RuntimeError, match="bundled checkpoint code ran"):
            runpy.run_path(str(bundle.path / f"{kind}_{stem}.py"))
    assert bundle.ran() == sorted(f"{kind}_{stem}" for kind in HUB_MODULES)


WIRING_CHILD = """
import json, sys
from pathlib import Path
from transformers.dynamic_module_utils import get_class_from_dynamic_module

path, names = Path(sys.argv[1]), json.loads(sys.argv[2])
outcomes = {}
for name in names:
    for key, refs in json.loads((path / name).read_text())["auto_map"].items():
        for ref in refs if isinstance(refs, list) else [refs]:
            try:
                get_class_from_dynamic_module(ref, str(path))
                outcomes[f"{name}:{key}:{ref}"] = "loaded"
            except RuntimeError as error:
                outcomes[f"{name}:{key}:{ref}"] = str(error)
print(json.dumps(outcomes))
"""


@pytest.mark.parametrize("model", sorted(HUB_NAMES))
def test_every_auto_map_entry_reaches_a_live_file(model: str, tmp_path: Path) -> None:
    """transformers' own loader, given each planted `auto_map` entry, runs the file it names."""
    bundle = make_bundle(model, tmp_path)
    names = ["config.json", "tokenizer_config.json", *PROCESSOR_CONFIGS]
    env = os.environ | {"HF_MODULES_CACHE": str(bundle.module_cache)}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(WIRING_CHILD), str(bundle.path), json.dumps(names)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    outcomes = json.loads(proc.stdout.splitlines()[-1])
    assert len(outcomes) == 3 + 2 + 3 * len(PROCESSOR_CONFIGS)
    for entry, outcome in outcomes.items():
        assert outcome.startswith("bundled checkpoint code ran"), entry
    assert bundle.ran() == sorted(f"{kind}_{HUB_NAMES[model][0]}" for kind in HUB_MODULES)


# ----------------------------------------------------------------------------- vllm serve


def _chat(server: VllmServer, parts: list[dict[str, Any]]) -> int:
    """Prompt tokens of a one-token greedy reply to `parts`."""
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": parts}],
        "max_tokens": 1,
        "temperature": 0,
    }
    reply = post_json(server.base_url + "/v1/chat/completions", body, timeout=600)
    assert reply["choices"][0]["finish_reason"] in {"length", "stop"}
    return int(reply["usage"]["prompt_tokens"])


def _requests(model: str) -> dict[str, list[dict[str, Any]]]:
    text = {"type": "text", "text": PROMPT}
    if model == "mini":
        return {
            "text": [text],
            "image_1_tile": [image_part(image_bytes(448, 448)), text],
            "image_2x1_grid": [image_part(image_bytes(896, 448)), text],
        }
    series = [round(((i * 37) % 101) / 50.0 - 1.0, 3) for i in range(SERIES_POINTS)]
    return {
        "text": [text],
        "image": [image_part(image_bytes(96, 64)), text],
        "time_series": [{"type": "time_series", "time_series": {"values": series}}, text],
    }


def _check_prompt_lengths(model: str, tokens: dict[str, int]) -> None:
    """The lengths the plugin's processors give: its tiling for mini, its Pro rules for Pro."""
    if model == "mini":
        extra_tiles = count_tiles(896, 448) - count_tiles(448, 448)
        assert extra_tiles == 2
        assert tokens["image_2x1_grid"] - tokens["image_1_tile"] == 256 * extra_tiles
        assert tokens["image_1_tile"] > tokens["text"] + 256
        return
    config = ProVisionConfig.from_preprocessor_config(preprocessor_config(TINY_PRO))
    assert tokens["image"] - tokens["text"] == count_image_tokens(64, 96, config) + 2
    assert tokens["time_series"] - tokens["text"] == num_time_series_tokens(SERIES_POINTS) + 2


@pytest.mark.parametrize(
    ("model", "trust"),
    [
        ("mini", False),
        ("mini", True),
        ("pro", False),
        ("pro", True),
    ],
    ids=["mini", "mini-trust-remote-code", "pro", "pro-trust-remote-code"],
)
def test_vllm_serve_never_runs_bundled_code(model: str, trust: bool, tmp_path: Path) -> None:
    bundle = make_bundle(model, tmp_path)
    args = ["--served-model-name", MODEL, "--max-model-len", "4096"]
    if trust:
        args.append("--trust-remote-code")
    server = VllmServer(
        bundle.path,
        args,
        log_path=tmp_path / "server.log",
        env={"HF_MODULES_CACHE": str(bundle.module_cache)},
        use_vllm_cli=True,
    )
    tokens: dict[str, int] = {}
    failure: Exception | None = None
    try:
        with server:
            tokens = {name: _chat(server, parts) for name, parts in _requests(model).items()}
    except ServerStartError as error:
        failure = error
    assert bundle.ran() == [], f"bundled code ran: {bundle.ran()}; log tail:\n{server.log_tail()}"
    assert bundle.cached() == [], f"bundled files fetched for import: {bundle.cached()}"
    if failure is not None:
        raise failure
    _check_prompt_lengths(model, tokens)
