"""Intern-S1 tokenizers and processors carry the plugin's chat template, not the checkpoint's.

The published templates read `enable_thinking=None` as "off", while the engines and the
plugin's parsers read a missing or null value as "on" (the model's default): prompt and parsing
would disagree. vLLM renders with the processor's template (requests without tools) or the
tokenizer's (with tools) unless `--chat-template` is given, and `vllm serve` as users type it
gives none; so the loaded objects themselves must hold the plugin's template. A template given
explicitly (`--chat-template`, `apply_chat_template(chat_template=...)`) still wins. Set
`KEEP_CHECKPOINT_TEMPLATE_ENV` to keep each checkpoint's own template.
"""

from __future__ import annotations

from typing import Any

from interns1_plugin.chat_templates import read_template
from interns1_plugin.env_flags import env_flag

KEEP_CHECKPOINT_TEMPLATE_ENV = "INTERNS1_PLUGIN_KEEP_CHECKPOINT_CHAT_TEMPLATE"


def keep_checkpoint_template() -> bool:
    return env_flag(KEEP_CHECKPOINT_TEMPLATE_ENV)


def use_plugin_template(loaded: Any, name: str) -> Any:
    """Give a freshly loaded tokenizer or processor the plugin's template `name`; returns it.

    Leaves it untouched when `KEEP_CHECKPOINT_TEMPLATE_ENV` is set.
    """
    if not keep_checkpoint_template():
        loaded.chat_template = read_template(name)
    return loaded


__all__ = ["KEEP_CHECKPOINT_TEMPLATE_ENV", "keep_checkpoint_template", "use_plugin_template"]
