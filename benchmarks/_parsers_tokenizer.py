"""The tokenizer the parser benchmark streams through: a tiny BPE with the Intern-S1 markers.

Engines hand parsers one token's text at a time; this reproduces those deltas, so the parsers
see the stream a real vocabulary would produce.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from interns1_plugin import formats


def build_tokenizer(corpus: Sequence[str], vocab_size: int = 3000) -> Any:
    """A tiny byte-level BPE with the Intern-S1 markers as added tokens.

    Trained on the synthetic text itself so tokens are multi-character as in a real vocabulary
    (a character-level stream would flatter parsers whose cost is per call, not per byte). The
    vLLM parsers look their markers up in the vocabulary, so those must be single tokens.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(corpus, trainer)
    plain = (formats.THINK_START, formats.THINK_END, formats.TOOL_CALL_START, formats.TOOL_CALL_END)
    special = (
        formats.ACTION_START,
        formats.ACTION_END,
        formats.PLUGIN,
        formats.IM_START,
        formats.IM_END,
    )
    backend.add_tokens([AddedToken(t, special=False, normalized=False) for t in plain])
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        clean_up_tokenization_spaces=False,
        eos_token=formats.IM_END,
    )


def token_deltas(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    """The text each generated token adds, as an engine's incremental detokenizer hands it over.

    A token ending inside a multi-byte character adds "" until the character completes. Decoding
    only the short window since the last complete character keeps this linear.
    """
    backend = tokenizer.backend_tokenizer
    deltas: list[str] = []
    start = 0
    for end in range(1, len(ids) + 1):
        text = backend.decode(list(ids[start:end]), skip_special_tokens=False)
        if text.endswith("\ufffd") and end - start < 4:
            deltas.append("")
            continue
        deltas.append(text)
        start = end
    return deltas


def encode_ids(tokenizer: Any, text: str) -> list[int]:
    """Token ids of `text`, markers as single tokens, no special tokens added."""
    return tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).ids
