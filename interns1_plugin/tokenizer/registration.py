"""Let `AutoTokenizer.from_pretrained(dir)` build `InternS1Tokenizer` without remote code.

transformers 5 resolves a `tokenizer_class` name from `tokenizer_config.json` through its table
of registered tokenizer classes (`AutoTokenizer.register` fills it). Registering the class by name
only, without tying it to a config class, is deliberate: transformers then treats it as explicit
local code, so it wins over a checkpoint's tokenizer `auto_map` even when the caller passes
`trust_remote_code=True` (as the model card tells users to). Tying it to a config class as well
(`config_class=...`) also serves directories whose tokenizer config names no class, but then a
checkpoint with an `auto_map` loaded with `trust_remote_code=True` and that config class gets the
remote tokenizer again.

A checkpoint whose tokenizer config names a transformers class (Intern-S1-Pro's may name
`PreTrainedTokenizerFast`) cannot be served by any registration; `local_only` covers it, for
Intern-S1 checkpoints only.
"""

from __future__ import annotations

from transformers import AutoTokenizer
from transformers.models.auto import tokenization_auto

from . import local_only
from .tokenization import InternS1Tokenizer


def register_with_transformers(config_class: type | None = None) -> None:
    """Register `InternS1Tokenizer` by name (and, if given, as `config_class`'s tokenizer), and
    keep Intern-S1 checkpoints' tokenizer loads off their bundled code (`local_only`).

    Safe to call more than once.
    """
    tokenization_auto.REGISTERED_TOKENIZER_CLASSES[InternS1Tokenizer.__name__] = InternS1Tokenizer
    if config_class is not None:
        AutoTokenizer.register(config_class, tokenizer_class=InternS1Tokenizer, exist_ok=True)
    local_only.install()


__all__ = ["register_with_transformers"]
