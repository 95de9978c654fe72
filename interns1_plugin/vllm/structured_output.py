"""Structured output (xgrammar) over the dynamic tokenizer's vocabulary.

vLLM's xgrammar backend builds its `TokenizerInfo` with `xgrammar.TokenizerInfo.from_huggingface`
for every tokenizer that is not Mistral's (and for `plamo3` models only, from the tokenizer's own
`init_xgrammar`). `from_huggingface` knows fast, tiktoken and SentencePiece tokenizers and rejects
`InternS1Tokenizer` ("Unsupported tokenizer type"), which is none of them: its ids mix byte-level
BPE pieces with SentencePiece pieces whose strings repeat BPE ones, so `get_vocab()` cannot
describe them, but `byte_vocab()` gives every id's exact bytes. vLLM offers no extension point for
this (its structured-output backends are a closed list and no tokenizer attribute is consulted
for other models), so `install()` wraps `from_huggingface`, a library classmethod rather than vLLM
code: tokenizers that offer `byte_vocab()` get a RAW vocabulary built from it, all others go to
the original unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

#: Marks the wrapper, so installing twice (vLLM calls plugins more than once) wraps once.
_MARK = "_interns1_byte_vocab"


def tokenizer_info(
    tokenizer: Any, vocab_size: int | None = None, stop_token_ids: Sequence[int] | int | None = None
) -> Any:
    """An `xgrammar.TokenizerInfo` for a tokenizer with `byte_vocab()` (RAW: ids map to bytes).

    `vocab_size` is the model's (its logits' width): ids past the tokenizer's are padding and get
    empty strings, which xgrammar never allows, as it does for padded fast tokenizers.
    """
    import xgrammar as xgr

    encoded: list[bytes] = list(tokenizer.byte_vocab())
    size = vocab_size or len(encoded)
    encoded = (encoded + [b""] * (size - len(encoded)))[:size]
    if isinstance(stop_token_ids, int):
        stop_token_ids = [stop_token_ids]
    if stop_token_ids is None and tokenizer.eos_token_id is not None:
        stop_token_ids = [tokenizer.eos_token_id]
    return xgr.TokenizerInfo(
        encoded,
        vocab_type=xgr.VocabType.RAW,
        vocab_size=size,
        stop_token_ids=list(stop_token_ids) if stop_token_ids is not None else None,
        add_prefix_space=False,
    )


def _wrap(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def from_huggingface(
        tokenizer: Any,
        *,
        vocab_size: int | None = None,
        stop_token_ids: list[int] | int | None = None,
    ) -> Any:
        if callable(getattr(tokenizer, "byte_vocab", None)):
            return tokenizer_info(tokenizer, vocab_size, stop_token_ids)
        return original(tokenizer, vocab_size=vocab_size, stop_token_ids=stop_token_ids)

    setattr(from_huggingface, _MARK, True)
    return from_huggingface


def install() -> bool:
    """Route `TokenizerInfo.from_huggingface` through `byte_vocab()` where a tokenizer has it.

    Idempotent; returns False (doing nothing) when xgrammar is not installed.
    """
    import importlib.util

    if importlib.util.find_spec("xgrammar") is None:
        return False
    import xgrammar as xgr

    current = xgr.TokenizerInfo.from_huggingface
    if not getattr(current, _MARK, False):
        xgr.TokenizerInfo.from_huggingface = staticmethod(_wrap(current))  # type: ignore[method-assign]
    return True


__all__ = ["install", "tokenizer_info"]
