"""Intern-S1 tokenizers and processors load with the plugin's chat template, not the checkpoint's.

Each tiny checkpoint's `chat_template.jinja` is replaced by a foreign template that, like the
published one, reads `enable_thinking=None` as "off"; what transformers' Auto classes return must
render with the plugin's template instead (None -> thinking on), unless the opt-out is set.
The servers' tests (`tests/server/`) check the same through `vllm serve`.
"""

from __future__ import annotations

import shutil

import pytest

transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from interns1_plugin import configs, formats, tokenizer  # noqa: E402
from interns1_plugin.chat_templates import read_template  # noqa: E402
from interns1_plugin.chat_templates.defaults import KEEP_CHECKPOINT_TEMPLATE_ENV  # noqa: E402
from interns1_plugin.testing.foreign_template import (  # noqa: E402
    FOREIGN_MARKER,
    FOREIGN_TEMPLATE,
    tiny_checkpoint_with_foreign_template,
)

MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module", params=["interns1", "interns1_pro"])
def checkpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    configs.register_with_transformers()
    tokenizer.register_with_transformers()
    root = tmp_path_factory.mktemp(request.param) / "model"
    tiny_checkpoint_with_foreign_template(root, request.param)
    return root, request.param


def _render(loaded, **kwargs) -> str:
    return loaded.apply_chat_template(
        MESSAGES, tokenize=False, add_generation_prompt=True, **kwargs
    )


@pytest.mark.parametrize("auto_class", ["AutoTokenizer", "AutoProcessor"])
def test_loads_carry_the_plugins_template(checkpoint, auto_class, monkeypatch) -> None:
    path, name = checkpoint
    monkeypatch.delenv(KEEP_CHECKPOINT_TEMPLATE_ENV, raising=False)
    loaded = getattr(transformers, auto_class).from_pretrained(path)
    assert loaded.chat_template == read_template(name)
    for enable_thinking in ({}, {"enable_thinking": None}):
        prompt = _render(loaded, **enable_thinking)
        assert FOREIGN_MARKER not in prompt
        assert prompt.endswith(f"{formats.IM_START}assistant\n{formats.THINK_START}")
    # A template passed explicitly (vLLM's --chat-template) still wins.
    assert _render(loaded, chat_template=FOREIGN_TEMPLATE).startswith(f"{FOREIGN_MARKER} hello")


@pytest.mark.parametrize("auto_class", ["AutoTokenizer", "AutoProcessor"])
def test_the_opt_out_keeps_the_checkpoints_template(checkpoint, auto_class, monkeypatch) -> None:
    path, _ = checkpoint
    monkeypatch.setenv(KEEP_CHECKPOINT_TEMPLATE_ENV, "1")
    loaded = getattr(transformers, auto_class).from_pretrained(path)
    assert loaded.chat_template == FOREIGN_TEMPLATE
    assert _render(loaded, enable_thinking=None).endswith("NO-THINK")


def test_other_checkpoints_keep_their_template(checkpoint, tmp_path) -> None:
    path, _ = checkpoint
    other = tmp_path / "other"
    shutil.copytree(path, other)
    config = (other / "config.json").read_text(encoding="utf-8")
    # Same files under a model type that is not the Intern-S1 family's.
    for model_type in ('"interns1_pro"', '"interns1_1"', '"interns1"'):
        config = config.replace(f'"model_type": {model_type}', '"model_type": "qwen3"')
    (other / "config.json").write_text(config, encoding="utf-8")
    loaded = transformers.AutoTokenizer.from_pretrained(other)
    assert loaded.chat_template == FOREIGN_TEMPLATE
