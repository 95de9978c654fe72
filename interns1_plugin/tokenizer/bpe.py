"""The byte-level BPE part, run by the Rust `tokenizers` library.

Same vocabulary, merges and pre-tokenizer regex as Qwen2, so it produces the ids the reference's
pure-Python BPE produces, many times faster. Only plain BPE lives here: added tokens, tags and
sub-models are handled by the span splitter before any text reaches it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Final

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

#: Qwen2's pre-tokenizer: contractions, letter runs, single digits, punctuation runs, whitespace.
PRETOKENIZE_PATTERN: Final = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
#: SentencePiece's whitespace mark; the reference turns it into a space before any BPE.
SP_SPACE: Final = "\u2581"
#: Joins segments into one Rust call. An added token is cut out before normalisation and
#: pre-tokenisation, so the text on either side is tokenised exactly as if encoded alone, and its
#: id marks where one segment's ids end. Private-use characters: not expected in real text, and
#: texts that do contain it are encoded segment by segment instead.
SEGMENT_SEPARATOR: Final = "\U0010fffd\U000f1a7e\U0010fffd"
#: Segments per joined string: enough to amortise a call, few enough to spread over threads.
_SEGMENTS_PER_CALL: Final = 256


@lru_cache(maxsize=1)
def byte_alphabet() -> tuple[str, ...]:
    """The printable character GPT-2-style byte-level BPE writes for each byte value 0..255.

    Printable Latin-1 bytes stand for themselves; the others (controls, space, soft hyphen, ...)
    are moved, in byte order, to code points from 256 upwards.
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("\xa1"), ord("\xac") + 1),
        *range(ord("\xae"), ord("\xff") + 1),
    ]
    kept = set(printable)
    chars: list[str] = []
    moved = 0
    for byte in range(256):
        if byte in kept:
            chars.append(chr(byte))
        else:
            chars.append(chr(256 + moved))
            moved += 1
    return tuple(chars)


def build_rust_bpe(
    vocab_file: str | Path, merges_file: str | Path, separator: str | None = None
) -> Tokenizer:
    """A `tokenizers` BPE with Qwen2's pre-tokenizer and the reference's `▁` -> space rewrite,
    plus `separator`, if given, as its only added token."""
    tokenizer = Tokenizer(models.BPE.from_file(str(vocab_file), str(merges_file)))
    tokenizer.normalizer = normalizers.Replace(SP_SPACE, " ")
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    if separator is not None:
        tokenizer.add_special_tokens([AddedToken(separator, special=True, normalized=False)])
    return tokenizer


class ByteLevelBPE:
    """Vocabulary lookups plus batched Rust encoding of many text segments in one call."""

    def __init__(self, vocab_file: str | Path, merges_file: str | Path) -> None:
        self.vocab_file = Path(vocab_file)
        self.merges_file = Path(merges_file)
        with open(vocab_file, encoding="utf-8") as handle:
            self.encoder: dict[str, int] = json.load(handle)
        self.decoder: dict[int, str] = {index: token for token, index in self.encoder.items()}
        self.rust = build_rust_bpe(vocab_file, merges_file)
        self._joining = build_rust_bpe(vocab_file, merges_file, SEGMENT_SEPARATOR)
        self._separator_id = self._joining.token_to_id(SEGMENT_SEPARATOR)

    def encode_many(self, segments: Sequence[str]) -> list[list[int]]:
        """Ids of every segment, each tokenised on its own, in as few Rust calls as possible."""
        if not segments:
            return []
        step = _SEGMENTS_PER_CALL
        groups = [segments[i : i + step] for i in range(0, len(segments), step)]
        joined = [SEGMENT_SEPARATOR.join(group) for group in groups]
        if any(
            text.count(SEGMENT_SEPARATOR) != len(group) - 1
            for text, group in zip(joined, groups, strict=True)
        ):
            encodings = self.rust.encode_batch_fast(list(segments), add_special_tokens=False)
            return [encoding.ids for encoding in encodings]
        encodings = self._joining.encode_batch_fast(joined, add_special_tokens=False)
        out: list[list[int]] = []
        separator = self._separator_id
        for group, encoding in zip(groups, encodings, strict=True):
            ids = encoding.ids
            start = 0
            for _ in range(len(group) - 1):
                end = ids.index(separator, start)
                out.append(ids[start:end])
                start = end + 1
            out.append(ids[start:])
        return out

    def clear(self) -> None:
        """Empty the Rust BPE word caches (where this `tokenizers` version exposes them)."""
        for tokenizer in (self.rust, self._joining):
            clear = getattr(tokenizer.model, "_clear_cache", None)
            if clear is not None:
                clear()

    def tokens(self, ids: Sequence[int]) -> list[str]:
        """The token strings of BPE ids."""
        decoder = self.decoder
        return [decoder[i] for i in ids]
