"""What the LMDeploy integration reads from a checkpoint directory, never through remote code.

LMDeploy builds its chat template and vision model from a model path and passes its own
`trust_remote_code` flag along; with `--trust-remote-code` (which the model card tells users to
pass) and an `auto_map` in the checkpoint, transformers could load the hub's Python files. The
plugin's classes load here with `trust_remote_code=False` after they are registered with
transformers, so a directory either loads through the plugin's classes or fails loudly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

#: Architectures served with the Intern-S1 / mini template and vision model.
INTERNS1_ARCHITECTURES = ("InternS1ForConditionalGeneration",)
#: Architectures served with the Intern-S1-Pro template and vision model.
INTERNS1_PRO_ARCHITECTURES = (
    "InternS1ProForConditionalGeneration",
    "InternS1_1_ForConditionalGeneration",
)


def read_json(model_path: str | os.PathLike, name: str) -> dict[str, Any]:
    """A JSON file of a local checkpoint directory, `{}` when it is absent."""
    path = os.path.join(os.fspath(model_path), name)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as file:
        data = json.load(file)
    if not isinstance(data, Mapping):
        raise ValueError(f"{path} does not hold a JSON object")
    return dict(data)


def architecture(model_path: str | os.PathLike) -> str | None:
    """`architectures[0]` of a local directory's config.json, None when it cannot be read.

    Read as plain JSON: matching a chat template must stay cheap and must not build a config.
    """
    try:
        architectures = read_json(model_path, "config.json").get("architectures") or [None]
    except (OSError, ValueError):
        return None
    first = architectures[0]
    return first if isinstance(first, str) else None


def register_transformers_classes() -> None:
    """The plugin's configs, processor and tokenizer, registered with transformers (idempotent)."""
    from interns1_plugin import configs, tokenizer

    configs.register_with_transformers()
    tokenizer.register_with_transformers()


def load_tokenizer(model_path: str | os.PathLike) -> Any:
    """The checkpoint's tokenizer through the plugin's registered classes, no remote code."""
    from transformers import AutoTokenizer

    register_transformers_classes()
    return AutoTokenizer.from_pretrained(os.fspath(model_path), trust_remote_code=False)


def load_config(model_path: str | os.PathLike) -> Any:
    """The checkpoint's config through the plugin's registered classes, no remote code."""
    from transformers import AutoConfig

    register_transformers_classes()
    return AutoConfig.from_pretrained(os.fspath(model_path), trust_remote_code=False)


__all__ = [
    "INTERNS1_ARCHITECTURES",
    "INTERNS1_PRO_ARCHITECTURES",
    "architecture",
    "load_config",
    "load_tokenizer",
    "read_json",
    "register_transformers_classes",
]
