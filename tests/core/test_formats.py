"""`formats` is the one source of token strings: check it against the published facts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from interns1_plugin import formats
from interns1_plugin.chat_templates import read_template

SPEC_DIR = Path(os.environ.get("INTERNS1_SPEC_DIR", Path(__file__).parents[3] / "shared" / "spec"))


def test_qwen_added_tokens_are_in_vocabulary_order():
    meta_path = SPEC_DIR / "tokenizer" / "meta.json"
    if not meta_path.exists():
        pytest.skip(f"tokenizer worked examples not found at {meta_path} (set INTERNS1_SPEC_DIR)")
    token_ids = json.loads(meta_path.read_text())["token_ids"]
    first = token_ids[formats.ENDOFTEXT]
    published = sorted(
        (t for t, i in token_ids.items() if first <= i < first + len(formats.QWEN_ADDED_TOKENS)),
        key=token_ids.__getitem__,
    )
    assert tuple(published) == formats.QWEN_ADDED_TOKENS


def test_templates_use_the_same_strings():
    interns1 = read_template("interns1")
    for text in (
        formats.DEFAULT_SYSTEM_PROMPT,
        formats.ACTION_START,
        formats.PLUGIN,
        formats.ACTION_END,
        formats.IMG_CONTEXT,
        formats.VIDEO_PLACEHOLDER,
    ):
        assert text in interns1
    pro = read_template("interns1_pro")
    for text in (formats.TOOL_CALL_START, formats.TOOL_CALL_END, formats.THINK_START):
        assert text in pro
