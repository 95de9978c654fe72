"""Intern-S1 checkpoints get their tokenizer without bundled code, even under `trust_remote_code`,
and with the plugin's chat template (why: `interns1_plugin.chat_templates.defaults`).

Why registration alone cannot do it (transformers 5, `models/auto/tokenization_auto.py`,
`AutoTokenizer.from_pretrained`): with a tokenizer `auto_map` in `tokenizer_config.json` and
`trust_remote_code=True`, transformers imports the `auto_map`'s file unless it has *explicit
local code*: the class named by `tokenizer_class` resolves, by name, to a class outside
`transformers.*`, and the config's type is *not* in `TOKENIZER_MAPPING`. Hence:

- a name the plugin owns (`InternS1Tokenizer`, what Intern-S1 / mini name) wins by being
  registered by name (`registration.py`);
- registering a tokenizer for a config class never wins: it makes the local code non-explicit;
- a transformers name (`PreTrainedTokenizerFast`, `Qwen2TokenizerFast`, as an Intern-S1-Pro
  checkpoint may name) could only be overridden in the process-wide name table, i.e. for every
  model that names it.

`resolve_trust_remote_code` does not help either: its `has_local_code` / `upstream_repo` rules
only decide whether to *ask* the user; a `True` from the caller is returned as it came.

So `install()` wraps `AutoTokenizer.from_pretrained`: when the caller passes
`trust_remote_code=True` and the checkpoint is an Intern-S1 one (the `config` argument's
`model_type`, else `model_type` in its `config.json`), the call goes on with
`trust_remote_code=False`. transformers then loads the named class without the checkpoint's files
(the plugin's `InternS1Tokenizer`, or transformers' own class for a transformers name) and never
fetches the `auto_map`'s file; a name nobody provides fails loudly instead of running bundled code.
The tokenizer it returns carries the plugin's template for that `model_type`.
Every other call reaches transformers with the same arguments and gets its result untouched; the
only added work is reading `config.json` when no config object is given. vLLM's tokenizer loader,
LMDeploy's `Tokenizer` and user code all go through this one classmethod.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from transformers import AutoTokenizer
from transformers.utils import CONFIG_NAME

from interns1_plugin.chat_templates.defaults import use_plugin_template
from interns1_plugin.checkpoint_files import find_checkpoint_file

#: Marks the wrapper, so installing twice wraps once.
_MARK = "_interns1_local_only"


def chat_template_names() -> dict[str, str]:
    """The plugin's chat template for each `model_type` of the Intern-S1 family."""
    from interns1_plugin.configs import InternS1_1Config, InternS1Config, InternS1ProConfig

    return {
        InternS1Config.model_type: "interns1",
        InternS1ProConfig.model_type: "interns1_pro",
        InternS1_1Config.model_type: "interns1_pro",
    }


def interns1_model_types() -> frozenset[str]:
    """The `model_type`s of the Intern-S1 family: Intern-S1 / mini, Pro and its alias."""
    return frozenset(chat_template_names())


def checkpoint_model_type(path: str | os.PathLike, kwargs: Mapping[str, Any]) -> str | None:
    """`model_type` of the config a tokenizer load will use; None when there is none to read."""
    config = kwargs.get("config")
    if config is not None:
        return getattr(config, "model_type", None)
    try:
        found = find_checkpoint_file(path, CONFIG_NAME, kwargs)
        if found is None:
            return None
        with open(found, encoding="utf-8") as file:
            data = json.load(file)
    except (OSError, ValueError):
        return None
    model_type = data.get("model_type") if isinstance(data, Mapping) else None
    return model_type if isinstance(model_type, str) else None


def _local_only(load: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(load)
    def from_pretrained(
        cls: type, pretrained_model_name_or_path: str | os.PathLike, *inputs: Any, **kwargs: Any
    ) -> Any:
        model_type = checkpoint_model_type(pretrained_model_name_or_path, kwargs)
        template = chat_template_names().get(model_type) if model_type else None
        if template is None:
            return load(cls, pretrained_model_name_or_path, *inputs, **kwargs)
        if kwargs.get("trust_remote_code"):
            kwargs["trust_remote_code"] = False
        return use_plugin_template(
            load(cls, pretrained_model_name_or_path, *inputs, **kwargs), template
        )

    setattr(from_pretrained, _MARK, True)
    return from_pretrained


def install() -> None:
    """Wrap `AutoTokenizer.from_pretrained` (see the module doc); idempotent."""
    load = AutoTokenizer.from_pretrained.__func__
    if getattr(load, _MARK, False):
        return
    AutoTokenizer.from_pretrained = classmethod(_local_only(load))  # type: ignore[method-assign]


__all__ = [
    "chat_template_names",
    "checkpoint_model_type",
    "install",
    "interns1_model_types",
]
