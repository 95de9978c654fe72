"""LMDeploy's PyTorch engine picks the plugin's model classes, in the server and spawned workers.

A fresh interpreter (as `lmdeploy serve api_server` starts) and a `spawn` child of it (as
LMDeploy starts engine processes) each load the checkpoint's config as the engine does
(`ModelConfig.from_pretrained`, with `--trust-remote-code` and the hub's `auto_map` in the
checkpoint) and ask LMDeploy's own `_get_model_class` which class builds it. Only the `.pth`
start-up hook is there to put the plugin's classes into `CUSTOM_MODULE_MAP`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("lmdeploy.pytorch.models.module_map", exc_type=ImportError)

from interns1_plugin.lmdeploy import import_hook  # noqa: E402
from interns1_plugin.lmdeploy.models import KEEP_BUILTIN_ENV, MODULE_MAP  # noqa: E402

pytestmark = pytest.mark.lmdeploy

CHILD_TIMEOUT_S = 600
OURS = {
    "mini": "interns1_plugin.lmdeploy.models.interns1.InternS1ForConditionalGeneration",
    "s1": "interns1_plugin.lmdeploy.models.interns1.InternS1ForConditionalGeneration",
    "pro": "interns1_plugin.lmdeploy.models.interns1_pro.InternS1ProForConditionalGeneration",
    "pro_alias": "interns1_plugin.lmdeploy.models.interns1_pro.InternS1ProForConditionalGeneration",
}
LMDEPLOYS = {
    "InternS1ForConditionalGeneration": (
        "lmdeploy.pytorch.models.internvl3_hf.InternVLForConditionalGeneration"
    ),
    "InternS1ProForConditionalGeneration": (
        "lmdeploy.pytorch.models.interns1_pro.InternS1ProForConditionalGeneration"
    ),
    "InternS1_1_ForConditionalGeneration": (
        "lmdeploy.pytorch.models.interns1_pro.InternS1ProForConditionalGeneration"
    ),
}

CHILD = """
import json, multiprocessing, sys

def report(paths):
    from lmdeploy.pytorch.models.patch import _get_model_class, _get_module_map

    module_map = _get_module_map()
    out = {"map": {arch: module_map.get(arch) for arch in ARCHITECTURES}, "classes": {}}
    if paths:
        from lmdeploy.pytorch.config import ModelConfig

        for key, path in paths.items():
            config = ModelConfig.from_pretrained(path, trust_remote_code=True).hf_config
            cls = _get_model_class(config, module_map)
            out["classes"][key] = f"{cls.__module__}.{cls.__qualname__}"
    return out

if __name__ == "__main__":
    paths = json.loads(sys.argv[1])
    here = report(paths)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        spawned = pool.apply(report, (paths,))
    print(json.dumps({"parent": here, "spawned": spawned}))
"""


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny checkpoints, each with the hub's `auto_map`; `pro_alias` is Pro published as
    `InternS1_1_ForConditionalGeneration` / `interns1_1`."""
    from interns1_plugin.testing.tiny_interns1 import build_tiny_interns1
    from interns1_plugin.testing.tiny_interns1_pro import build_tiny_interns1_pro

    root = tmp_path_factory.mktemp("lmdeploy-module-map")
    built = {
        v: build_tiny_interns1(root / v, v, dtype="float32", with_auto_map=True)
        for v in ("mini", "s1")
    }
    built["pro"] = build_tiny_interns1_pro(root / "pro", with_auto_map=True)
    alias = root / "pro_alias"
    shutil.copytree(built["pro"], alias)
    config = json.loads((alias / "config.json").read_text())
    config.update(architectures=["InternS1_1_ForConditionalGeneration"], model_type="interns1_1")
    (alias / "config.json").write_text(json.dumps(config))
    built["pro_alias"] = alias
    return built


def _run(
    tmp_path: Path, paths: dict[str, Path], *, env: dict[str, str] | None = None
) -> dict[str, Any]:
    script = tmp_path / "child.py"
    script.write_text(f"ARCHITECTURES = {sorted(LMDEPLOYS)!r}\n" + CHILD)
    child_env = {k: v for k, v in os.environ.items() if k not in (import_hook.DISABLE_ENV,)}
    child_env.pop(KEEP_BUILTIN_ENV, None)
    child_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, str(script), json.dumps({k: str(v) for k, v in paths.items()})],
        capture_output=True,
        text=True,
        env=child_env,
        timeout=CHILD_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr[-6000:]
    return json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])


def test_engine_builds_the_plugins_classes_in_spawned_children(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    report = _run(tmp_path, checkpoints)
    for side in ("parent", "spawned"):
        assert report[side]["map"] == MODULE_MAP
        assert report[side]["classes"] == OURS


def test_without_the_hook_lmdeploy_keeps_its_own(tmp_path: Path) -> None:
    """The control: it is the hook that puts the plugin's classes in the map."""
    report = _run(tmp_path, {}, env={import_hook.DISABLE_ENV: "1"})
    for side in ("parent", "spawned"):
        assert report[side]["map"] == LMDEPLOYS


def test_keep_builtin_switch_leaves_lmdeploys_models(
    checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    paths = {"mini": checkpoints["mini"], "pro": checkpoints["pro"]}
    report = _run(tmp_path, paths, env={KEEP_BUILTIN_ENV: "1"})
    for side in ("parent", "spawned"):
        assert report[side]["map"] == LMDEPLOYS
        assert report[side]["classes"] == {
            "mini": LMDEPLOYS["InternS1ForConditionalGeneration"],
            "pro": LMDEPLOYS["InternS1ProForConditionalGeneration"],
        }


def test_registration_is_idempotent_and_importable_names() -> None:
    """Every registered name imports through LMDeploy's own `_class_from_qualname`."""
    from lmdeploy.pytorch.models.module_map import CUSTOM_MODULE_MAP
    from lmdeploy.pytorch.models.patch import _class_from_qualname

    from interns1_plugin.lmdeploy.register import register_engine_models

    register_engine_models()
    first = dict(CUSTOM_MODULE_MAP)
    register_engine_models()
    assert CUSTOM_MODULE_MAP == first
    for arch, qualname in MODULE_MAP.items():
        assert CUSTOM_MODULE_MAP[arch] == qualname
        cls = _class_from_qualname(qualname)
        assert f"{cls.__module__}.{cls.__qualname__}" == qualname
