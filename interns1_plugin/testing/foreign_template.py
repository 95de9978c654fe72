"""A checkpoint chat template that is not the plugin's, for tests that the plugin's one is used.

Like the published Intern-S1 templates, it thinks only when `enable_thinking` is truthy, so
`null` means "off": a prompt rendered with it differs from the plugin's at every turn and at the
generation prompt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from interns1_plugin import formats
from interns1_plugin.chat_templates import read_template
from interns1_plugin.demo import WEATHER_TOOL
from interns1_plugin.testing.http import post_json

#: Every message prefixed with a marker the plugin's templates never write.
FOREIGN_MARKER = "FOREIGN"
FOREIGN_TEMPLATE = (
    f"{{% for m in messages %}}{FOREIGN_MARKER} {{{{ m['content'] }}}}\n{{% endfor %}}"
    f"{{% if add_generation_prompt %}}{{% if enable_thinking %}}{formats.THINK_START}"
    "{% else %}NO-THINK{% endif %}{% endif %}"
)


def use_foreign_template(checkpoint: str | Path) -> Path:
    """Replace the checkpoint's `chat_template.jinja` with `FOREIGN_TEMPLATE`; returns the path."""
    path = Path(checkpoint) / "chat_template.jinja"
    path.write_text(FOREIGN_TEMPLATE, encoding="utf-8")
    return path


#: (chat_template_kwargs, tools) of chat requests whose prompts must come from the plugin's
#: template; thinking is on in all but "thinking_off".
TEMPLATE_CASES: dict[str, tuple[dict[str, Any] | None, list[dict[str, Any]] | None]] = {
    "thinking_by_default": (None, None),
    "enable_thinking_null": ({"enable_thinking": None}, None),
    "thinking_off": ({"enable_thinking": False}, None),
    "with_tools": (None, [WEATHER_TOOL]),
}


def tiny_checkpoint_with_foreign_template(out_dir: str | Path, template_name: str) -> Path:
    """A one-shard tiny checkpoint of the models `template_name` is for, carrying
    `FOREIGN_TEMPLATE`: Intern-S1-mini for "interns1", Intern-S1-Pro for "interns1_pro"."""
    from interns1_plugin.testing.tiny_interns1 import build_tiny_interns1
    from interns1_plugin.testing.tiny_interns1_pro import build_tiny_interns1_pro

    if template_name == "interns1":
        path = build_tiny_interns1(out_dir, num_shards=1)
    elif template_name == "interns1_pro":
        path = build_tiny_interns1_pro(out_dir)
    else:
        raise ValueError(f"no tiny checkpoint for template {template_name!r}")
    use_foreign_template(path)
    return Path(path)


def served_prompt_ids(
    base_url: str,
    model: str,
    messages: list[dict[str, Any]],
    *,
    tools: list[dict[str, Any]] | None = None,
    template_kwargs: dict[str, Any] | None = None,
) -> list[int]:
    """The prompt ids a vLLM server renders for a chat request (its `/tokenize` endpoint)."""
    body: dict[str, Any] = {"model": model, "messages": messages, "add_generation_prompt": True}
    if tools is not None:
        body["tools"] = tools
    if template_kwargs is not None:
        body["chat_template_kwargs"] = template_kwargs
    return post_json(base_url + "/tokenize", body)["tokens"]


def plugin_prompt_ids(
    tokenizer: Any,
    template_name: str,
    messages: list[dict[str, Any]],
    *,
    tools: list[dict[str, Any]] | None = None,
    template_kwargs: dict[str, Any] | None = None,
) -> list[int]:
    """The same prompt rendered here with the plugin's template `template_name`, tokenized."""
    text = tokenizer.apply_chat_template(
        messages,
        chat_template=read_template(template_name),
        tools=tools,
        tokenize=False,
        add_generation_prompt=True,
        **(template_kwargs or {}),
    )
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def assert_served_with_plugin_template(
    base_url: str, model: str, tokenizer: Any, template_name: str, case: str
) -> None:
    """The server's prompt for `TEMPLATE_CASES[case]` is the plugin's template's, id for id."""
    template_kwargs, tools = TEMPLATE_CASES[case]
    messages = [{"role": "user", "content": "What is the weather in Tokyo?"}]
    options: dict[str, Any] = {"tools": tools, "template_kwargs": template_kwargs}
    served = served_prompt_ids(base_url, model, messages, **options)
    assert served == plugin_prompt_ids(tokenizer, template_name, messages, **options), (
        tokenizer.decode(served)
    )
    thinking = tokenizer.decode(served).endswith(formats.THINK_START)
    assert thinking == (case != "thinking_off"), tokenizer.decode(served)


__all__ = [
    "FOREIGN_MARKER",
    "FOREIGN_TEMPLATE",
    "TEMPLATE_CASES",
    "assert_served_with_plugin_template",
    "plugin_prompt_ids",
    "served_prompt_ids",
    "tiny_checkpoint_with_foreign_template",
    "use_foreign_template",
]
