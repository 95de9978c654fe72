"""LMDeploy renders Intern-S1 prompts with the plugin's template, whatever the checkpoint carries.

The tiny checkpoints' `chat_template.jinja` is replaced by a foreign one (thinking off on a null
`enable_thinking`, as the published template); LMDeploy's `get_chat_template` must still pick the
plugin's entry and render the plugin's template, unless the opt-out is set.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("lmdeploy.model", exc_type=ImportError)

from interns1_plugin import formats  # noqa: E402
from interns1_plugin.chat_templates import read_template  # noqa: E402
from interns1_plugin.chat_templates.defaults import KEEP_CHECKPOINT_TEMPLATE_ENV  # noqa: E402
from interns1_plugin.testing.foreign_template import (  # noqa: E402
    FOREIGN_MARKER,
    tiny_checkpoint_with_foreign_template,
)

pytestmark = pytest.mark.lmdeploy

MESSAGES = [{"role": "user", "content": "What is the weather in Tokyo?"}]


@pytest.fixture(scope="module", params=["interns1", "interns1_pro"])
def checkpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp(request.param) / "model"
    tiny_checkpoint_with_foreign_template(root, request.param)
    return root, request.param


def _expected(template, name: str, **kwargs) -> str:
    return template.tokenizer.apply_chat_template(
        MESSAGES,
        chat_template=read_template(name),
        tokenize=False,
        add_generation_prompt=True,
        **kwargs,
    )


@pytest.mark.parametrize("enable_thinking", [None, True, False])
def test_the_matched_template_renders_the_plugins(
    checkpoint: tuple[Path, str], enable_thinking: bool | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lmdeploy.model import get_chat_template

    path, name = checkpoint
    monkeypatch.delenv(KEEP_CHECKPOINT_TEMPLATE_ENV, raising=False)
    template = get_chat_template(str(path))
    prompt = template.messages2prompt(MESSAGES, enable_thinking=enable_thinking)
    assert FOREIGN_MARKER not in prompt
    kwargs = {} if enable_thinking is None else {"enable_thinking": enable_thinking}
    assert prompt == _expected(template, name, **kwargs)
    assert prompt.endswith(formats.THINK_START) == (enable_thinking is not False)


def test_the_opt_out_renders_the_checkpoints_template(
    checkpoint: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lmdeploy.model import get_chat_template

    path, _ = checkpoint
    monkeypatch.setenv(KEEP_CHECKPOINT_TEMPLATE_ENV, "1")
    prompt = get_chat_template(str(path)).messages2prompt(MESSAGES)
    assert prompt.startswith(f"{FOREIGN_MARKER} ")
