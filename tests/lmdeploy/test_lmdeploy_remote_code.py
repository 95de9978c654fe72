"""LMDeploy's entry points never run the Python files a checkpoint bundles, even when trusted.

Tiny Intern-S1-mini and Intern-S1-Pro checkpoints carry hub-style `configuration_*`, `modeling_*`,
`tokenization_*`, `processing_*`, `image_processing_*` and `video_processing_*` files that record
their execution in a marker directory and then raise, and every `auto_map` points at them:
`config.json` (AutoConfig, AutoModel, AutoModelForCausalLM), `tokenizer_config.json`
(AutoTokenizer, slow and fast), `processor_config.json`, `preprocessor_config.json` and
`video_preprocessor_config.json` (AutoProcessor, AutoImageProcessor, AutoVideoProcessor).

Each check is what `lmdeploy serve api_server` runs before its engine, called with
`trust_remote_code=True`: config loading (`hf_configs.config_from_pretrained`), architecture and
task detection (`archs.get_model_arch` / `get_task`), LMDeploy's `Tokenizer`, the vision model
builder (`vl.model.builder.load_vl_model`, which also calls `build_preprocessor`), chat template
resolution (by match and by name), and an image request (and on Pro a time-series request)
through `ImageEncoder` and `MultimodalProcessor.get_prompt_input`. Each runs in a fresh
interpreter that imports only the LMDeploy modules the check needs, so the plugin's start-up hook
registers its classes exactly as it would in a server. Afterwards no marker exists, and
transformers' dynamic-module cache (`HF_MODULES_CACHE`, a temporary directory) holds no bundled
file.

The mini checkpoint ships the tokenizer class the published one names (`InternS1Tokenizer`); the
tiny Pro's tokenizer config names transformers' `PreTrainedTokenizerFast`, which no registration
can prefer over the `auto_map`: the plugin's `tokenizer.local_only` loads it (a transformers
class) without the bundled file.

Controls: every planted file leaves its marker when run, and with the plugin's hook switched off
LMDeploy's own config loading runs the bundled configuration file.
"""

from __future__ import annotations

import base64
import io
import json
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from interns1_plugin.testing.remote_code import HUB_MODULES, HUB_NAMES, Bundle, plant_hub_code

pytest.importorskip("lmdeploy.vl.model.builder", exc_type=ImportError)

from interns1_plugin.lmdeploy import import_hook  # noqa: E402

pytestmark = pytest.mark.lmdeploy

CHILD_TIMEOUT_S = 600

#: What each check must resolve to: the plugin's classes (None: a transformers class).
EXPECTED: dict[str, dict[str, Any]] = {
    "mini": {
        "config": "interns1_plugin.configs.interns1.InternS1Config",
        "tokenizer": "interns1_plugin.tokenizer.tokenization.InternS1Tokenizer",
        "vision": "interns1_plugin.lmdeploy.vision_interns1.InternS1VisionModel",
        "template": "interns1_plugin.lmdeploy.chat_template.InternS1ChatTemplate",
        "template_name": "intern-s1",
        "items": [1],
    },
    "pro": {
        "config": "interns1_plugin.configs.interns1_pro.InternS1ProConfig",
        "tokenizer": None,
        "vision": "interns1_plugin.lmdeploy.vision_interns1_pro.InternS1ProVisionModel",
        "template": "interns1_plugin.lmdeploy.chat_template.InternS1ProChatTemplate",
        "template_name": "intern-s1-pro",
        "items": [1, 1],
    },
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The two tiny checkpoints, built once; each test plants its own copy."""
    from interns1_plugin.testing.tiny_interns1 import build_tiny_interns1, write_dynamic_tokenizer
    from interns1_plugin.testing.tiny_interns1_pro import build_tiny_interns1_pro

    root = tmp_path_factory.mktemp("remote-code")
    mini = build_tiny_interns1(
        root / "mini",
        "mini",
        dtype="float32",
        with_auto_map=True,
        tokenizer_writer=write_dynamic_tokenizer,
    )
    return {"mini": mini, "pro": build_tiny_interns1_pro(root / "pro", with_auto_map=True)}


def make_bundle(checkpoints: dict[str, Path], model: str, root: Path) -> Bundle:
    """A private copy of `model` under `root` with hub code planted, so markers never mix."""
    path = Path(shutil.copytree(checkpoints[model], root / "model"))
    bundle = Bundle(path, root / "markers", root / "hf-modules")
    plant_hub_code(path, *HUB_NAMES[model], bundle.markers)
    return bundle


def _data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def _requests(model: str) -> list[list[dict[str, Any]]]:
    """An image request (and on Pro a time-series one) as a client sends them to the API server.

    LMDeploy's Pro engine takes a time series only without images, so Pro gets two requests.
    """
    import numpy as np

    from interns1_plugin.demo import image_bytes

    text = {"type": "text", "text": "What does this show?"}
    image = {"type": "image_url", "image_url": {"url": _data_url(image_bytes(96, 64), "image/png")}}
    requests = [[image, text]]
    if model == "pro":
        buffer = io.BytesIO()
        np.save(buffer, np.sin(np.arange(400, dtype=np.float32) / 7.0))
        url = _data_url(buffer.getvalue(), "application/x-npy")
        requests.append([{"type": "time_series_url", "time_series_url": {"url": url}}, text])
    return requests


CHILD = """
import asyncio, json, sys


def name(obj):
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def check_config(path, args):
    from lmdeploy.hf_configs import config_from_pretrained

    return {"config": name(config_from_pretrained(path, trust_remote_code=True))}


def check_arch(path, args):
    from lmdeploy.archs import get_model_arch, get_task

    arch, config = get_model_arch(path, trust_remote_code=True)
    task, _ = get_task("pytorch", path, trust_remote_code=True)
    return {"arch": arch, "config": name(config), "task": task}


def check_tokenizer(path, args):
    from lmdeploy.tokenizer import Tokenizer

    return {"tokenizer": name(Tokenizer(path, trust_remote_code=True).model.model)}


def check_vision(path, args):
    from lmdeploy.vl.model.builder import load_vl_model

    return {"vision": name(load_vl_model(path, "pytorch", trust_remote_code=True))}


def check_template(path, args):
    from lmdeploy.model import ChatTemplateConfig, get_chat_template

    matched = get_chat_template(path, trust_remote_code=True)
    config = ChatTemplateConfig(args["template_name"], model_path=path)
    named = config.chat_template(trust_remote_code=True)
    return {"template": name(matched), "template_by_name": name(named)}


def check_request(path, args):
    from lmdeploy.model import get_chat_template
    from lmdeploy.serve.processors import MultimodalProcessor
    from lmdeploy.tokenizer import Tokenizer
    from lmdeploy.vl.engine import ImageEncoder

    encoder = ImageEncoder(path, "pytorch", trust_remote_code=True)
    template = get_chat_template(path, trust_remote_code=True)
    tokenizer = Tokenizer(path, trust_remote_code=True)
    processor = MultimodalProcessor(tokenizer, template, vl_encoder=encoder, backend="pytorch")
    items = []
    for parts in args["requests"]:
        messages = [{"role": "user", "content": parts}]
        out = asyncio.run(processor.get_prompt_input(messages, do_preprocess=True))
        items.append(len(out["multimodal"]))
    return {"vision": name(encoder.model), "items": items}


if __name__ == "__main__":
    check, path, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    print(json.dumps(globals()["check_" + check](path, args)))
"""


def _run_check(
    check: str, bundle: Bundle, args: dict[str, Any], *, hook: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != import_hook.DISABLE_ENV}
    env["HF_MODULES_CACHE"] = str(bundle.module_cache)
    if not hook:
        env[import_hook.DISABLE_ENV] = "1"
    script = bundle.path.parent / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(script), check, str(bundle.path), json.dumps(args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=CHILD_TIMEOUT_S,
    )


def _report(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.returncode == 0, proc.stderr[-6000:]
    return json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])


# ----------------------------------------------------------------------------- controls


@pytest.mark.parametrize("model", sorted(HUB_NAMES))
def test_planted_files_leave_their_marker_when_run(
    checkpoints: dict[str, Path], model: str, tmp_path: Path
) -> None:
    bundle = make_bundle(checkpoints, model, tmp_path)
    stem = HUB_NAMES[model][0]
    for kind in HUB_MODULES:
        with pytest.raises(RuntimeError, match="bundled checkpoint code ran"):
            runpy.run_path(str(bundle.path / f"{kind}_{stem}.py"))
    assert bundle.ran() == sorted(f"{kind}_{stem}" for kind in HUB_MODULES)


def test_without_the_hook_lmdeploy_runs_the_bundled_config(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    """The plugin's registration is what keeps LMDeploy off the bundled code."""
    bundle = make_bundle(checkpoints, "mini", tmp_path)
    _run_check("config", bundle, {}, hook=False)
    assert "configuration_interns1" in bundle.ran()


# ----------------------------------------------------------------------------- entry points


CHECKS = ("config", "arch", "tokenizer", "vision", "template", "request")


@pytest.mark.parametrize(
    ("model", "check"),
    [
        pytest.param(model, check, id=f"{model}-{check}")
        for model in sorted(HUB_NAMES)
        for check in CHECKS
    ],
)
def test_lmdeploy_never_runs_bundled_code(
    checkpoints: dict[str, Path], model: str, check: str, tmp_path: Path
) -> None:
    bundle = make_bundle(checkpoints, model, tmp_path)
    expected = EXPECTED[model]
    args = {"template_name": expected["template_name"]}
    if check == "request":
        args["requests"] = _requests(model)
    proc = _run_check(check, bundle, args)

    assert bundle.ran() == [], f"bundled code ran: {bundle.ran()}\n{proc.stderr[-3000:]}"
    assert bundle.cached() == [], f"bundled files fetched for import: {bundle.cached()}"
    report = _report(proc)
    if "config" in report:
        assert report["config"] == expected["config"]
    if check == "arch":
        config = json.loads((bundle.path / "config.json").read_text(encoding="utf-8"))
        assert report["arch"] == config["architectures"][0]
        assert report["task"] == "vlm"
    if check == "tokenizer":
        wanted = expected["tokenizer"]
        got = report["tokenizer"]
        assert got == wanted if wanted else got.startswith("transformers."), got
    if "vision" in report:
        assert report["vision"] == expected["vision"]
    if check == "template":
        assert report["template"] == report["template_by_name"] == expected["template"]
    if check == "request":
        assert report["items"] == expected["items"]
