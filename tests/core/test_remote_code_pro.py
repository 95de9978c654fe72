"""`AutoProcessor` / `AutoTokenizer` with `trust_remote_code=True` never run Pro's bundled code.

A tiny Intern-S1-Pro checkpoint (and its `interns1_1` alias) carries hub-style files that leave a
marker and raise when run, with every `auto_map` aimed at them; its tokenizer config names
transformers' `PreTrainedTokenizerFast`, its processor files name no processor class. After the
plugin's registration, both Auto classes return the plugin's (or transformers') classes, no
marker exists and transformers' module cache holds no bundled file.

Controls show the guard is what holds and that it is scoped: the unwrapped
`AutoTokenizer.from_pretrained` runs the bundled tokenizer of the same checkpoint, and a
non-Intern-S1 checkpoint with the same tokenizer files still gets its bundled tokenizer when it
asks for it. Loads run in child processes, so bundled code, if it runs, runs there with a
temporary `HF_MODULES_CACHE`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("transformers")

from interns1_plugin.chat_templates import read_template  # noqa: E402
from interns1_plugin.chat_templates.defaults import KEEP_CHECKPOINT_TEMPLATE_ENV  # noqa: E402
from interns1_plugin.testing.remote_code import HUB_NAMES, Bundle, plant_hub_code  # noqa: E402
from interns1_plugin.tokenizer import local_only  # noqa: E402

CHILD = """
import json, sys
from interns1_plugin import configs, tokenizer
from transformers import AutoConfig, AutoProcessor, AutoTokenizer

configs.register_with_transformers()
tokenizer.register_with_transformers()
tokenizer.register_with_transformers()  # twice: wrapped once


def load(how, path):
    if how == "processor":
        return AutoProcessor.from_pretrained(path, trust_remote_code=True)
    if how == "tokenizer":
        return AutoTokenizer.from_pretrained(path, trust_remote_code=True)
    if how == "tokenizer_with_config":  # what vLLM's tokenizer loader passes
        config = AutoConfig.from_pretrained(path, trust_remote_code=True)
        return AutoTokenizer.from_pretrained(path, config=config, trust_remote_code=True)
    if how == "tokenizer_unwrapped":
        original = AutoTokenizer.from_pretrained.__wrapped__
        assert not hasattr(original, "_interns1_local_only")
        return original(AutoTokenizer, path, trust_remote_code=True)
    raise ValueError(how)


out = {}
for name, (how, path) in json.loads(sys.argv[1]).items():
    try:
        obj = load(how, path)
        out[name] = type(obj).__module__ + "." + type(obj).__qualname__
    except Exception as error:
        out[name] = "error: " + str(error)
print(json.dumps(out))
"""

PROCESSOR = "interns1_plugin.processing.pro_processor.InternS1ProProcessor"
FAST_BACKEND = "transformers.tokenization_utils_tokenizers.TokenizersBackend"


@pytest.fixture(scope="module")
def pro(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from interns1_plugin.testing.tiny_interns1_pro import build_tiny_interns1_pro

    root = tmp_path_factory.mktemp("pro")
    return build_tiny_interns1_pro(root / "model", with_auto_map=True)


def _bundle(
    source: Path, root: Path, edit: dict[str, Any] | None = None, *, replace: bool = False
) -> Bundle:
    """A private copy of `source` with hub code planted; `edit` updates (or, with `replace`,
    becomes) its config.json after planting."""
    path = Path(shutil.copytree(source, root / "model"))
    bundle = Bundle(path, root / "markers", root / "hf-modules")
    plant_hub_code(path, *HUB_NAMES["pro"], bundle.markers)
    if edit is not None:
        data = {} if replace else json.loads((path / "config.json").read_text(encoding="utf-8"))
        (path / "config.json").write_text(json.dumps(data | edit), encoding="utf-8")
    return bundle


def _run(calls: dict[str, tuple[str, Bundle]], cache: Path) -> dict[str, str]:
    args = {name: (how, str(bundle.path)) for name, (how, bundle) in calls.items()}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(args)],
        capture_output=True,
        text=True,
        env=os.environ | {"HF_MODULES_CACHE": str(cache)},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_trusted_pro_loads_never_run_bundled_code(pro: Path, tmp_path: Path) -> None:
    alias = {"model_type": "interns1_1", "architectures": ["InternS1_1_ForConditionalGeneration"]}
    bundles = {
        "processor": _bundle(pro, tmp_path / "processor"),
        "processor_alias": _bundle(pro, tmp_path / "processor_alias", alias),
        "tokenizer": _bundle(pro, tmp_path / "tokenizer"),
        "tokenizer_alias": _bundle(pro, tmp_path / "tokenizer_alias", alias),
        "tokenizer_with_config": _bundle(pro, tmp_path / "tokenizer_with_config"),
    }
    calls = {name: (name.removesuffix("_alias"), bundle) for name, bundle in bundles.items()}
    outcomes = _run(calls, tmp_path / "hf-modules")

    for name, bundle in bundles.items():
        assert bundle.ran() == [], f"{name}: bundled code ran: {bundle.ran()}"
    assert sorted(p.name for p in (tmp_path / "hf-modules").rglob("*.py")) == [], "fetched"
    assert outcomes == {
        "processor": PROCESSOR,
        "processor_alias": PROCESSOR,
        "tokenizer": FAST_BACKEND,
        "tokenizer_alias": FAST_BACKEND,
        "tokenizer_with_config": FAST_BACKEND,
    }


def test_controls_bundled_tokenizer_runs_without_the_guard_and_for_other_models(
    pro: Path, tmp_path: Path
) -> None:
    unwrapped = _bundle(pro, tmp_path / "unwrapped")
    # A plain Qwen2 config (no config auto_map), the Pro tokenizer files and their auto_map.
    other = _bundle(pro, tmp_path / "other", {"model_type": "qwen2"}, replace=True)
    outcomes = _run(
        {"unwrapped": ("tokenizer_unwrapped", unwrapped), "other": ("tokenizer", other)},
        tmp_path / "hf-modules",
    )
    for name, bundle in (("unwrapped", unwrapped), ("other", other)):
        assert outcomes[name].startswith("error: bundled checkpoint code ran"), outcomes[name]
        assert bundle.ran() == ["tokenization_interns1_pro"], name


# ----------------------------------------------------------------------------- the wrapper


class _Config:
    def __init__(self, model_type: str) -> None:
        self.model_type = model_type


CHECKPOINT_TEMPLATE = "{{ 'checkpoint template' }}"


def _load_through_wrapper(path: Path, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    """The keyword arguments the wrapped loader hands on, and what the wrapper returns."""
    seen: dict[str, Any] = {}

    def load(cls: type, name: Any, *inputs: Any, **kw: Any) -> SimpleNamespace:
        seen.update(kw)
        return SimpleNamespace(chat_template=CHECKPOINT_TEMPLATE)

    loaded = local_only._local_only(load)(object, path, **kwargs)
    return seen, loaded


def _recorded(path: Path, **kwargs: Any) -> dict[str, Any]:
    return _load_through_wrapper(path, **kwargs)[0]


def _checkpoint(root: Path, model_type: str) -> Path:
    root.mkdir()
    (root / "config.json").write_text(json.dumps({"model_type": model_type}), encoding="utf-8")
    return root


@pytest.mark.parametrize("model_type", sorted(local_only.interns1_model_types()))
def test_only_trusted_intern_s1_loads_are_changed(tmp_path: Path, model_type: str) -> None:
    ours = _checkpoint(tmp_path / "ours", model_type)
    other = _checkpoint(tmp_path / "other", "qwen3")
    assert _recorded(ours, trust_remote_code=True) == {"trust_remote_code": False}
    assert _recorded(ours, trust_remote_code=None) == {"trust_remote_code": None}
    assert _recorded(ours) == {}
    assert _recorded(other, trust_remote_code=True) == {"trust_remote_code": True}
    config = _Config(model_type)
    assert _recorded(other, config=config, trust_remote_code=True)["trust_remote_code"] is False
    other_config = _Config("qwen3")
    assert _recorded(ours, config=other_config, trust_remote_code=True)["trust_remote_code"]


@pytest.mark.parametrize(
    ("model_type", "template"),
    [("interns1", "interns1"), ("interns1_pro", "interns1_pro"), ("interns1_1", "interns1_pro")],
)
def test_intern_s1_tokenizers_carry_the_plugins_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_type: str, template: str
) -> None:
    ours = _checkpoint(tmp_path / "ours", model_type)
    other = _checkpoint(tmp_path / "other", "qwen3")
    monkeypatch.delenv(KEEP_CHECKPOINT_TEMPLATE_ENV, raising=False)
    assert _load_through_wrapper(ours)[1].chat_template == read_template(template)
    assert _load_through_wrapper(other)[1].chat_template == CHECKPOINT_TEMPLATE
    monkeypatch.setenv(KEEP_CHECKPOINT_TEMPLATE_ENV, "1")
    assert _load_through_wrapper(ours)[1].chat_template == CHECKPOINT_TEMPLATE


def test_model_type_is_read_from_the_config_file(tmp_path: Path) -> None:
    assert local_only.checkpoint_model_type(tmp_path, {}) is None
    (tmp_path / "config.json").write_text("not json", encoding="utf-8")
    assert local_only.checkpoint_model_type(tmp_path, {}) is None
    (tmp_path / "config.json").write_text('{"model_type": "interns1_pro"}', encoding="utf-8")
    assert local_only.checkpoint_model_type(tmp_path, {}) == "interns1_pro"
    assert local_only.interns1_model_types() == {"interns1", "interns1_pro", "interns1_1"}
