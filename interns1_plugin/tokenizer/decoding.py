"""Ids and token strings back to text, the way the reference's slow-tokenizer decode does it.

Every token string (BPE token or SentencePiece piece) is read through the byte-level alphabet after
`▁` -> `Ġ` (space) and newline -> `Ċ`, so sub-model pieces decode with their spaces. Characters
outside that alphabet, on which the reference would raise, are taken as their UTF-8 bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from .bpe import SP_SPACE, byte_alphabet

#: byte-level character -> the Latin-1 character of its byte, so `.encode("latin-1")` gives bytes.
_TO_LATIN1: Final = {ord(ch): chr(byte) for byte, ch in enumerate(byte_alphabet())}
_TO_LATIN1[ord(SP_SPACE)] = " "
_TO_LATIN1[ord("\n")] = "\n"
_ALPHABET: Final = frozenset(byte_alphabet()) | {SP_SPACE, "\n"}


def token_bytes(token: str) -> bytes:
    """The bytes one token string stands for."""
    if all(ch in _ALPHABET for ch in token):
        return token.translate(_TO_LATIN1).encode("latin-1")
    return b"".join(
        ch.translate(_TO_LATIN1).encode("latin-1") if ch in _ALPHABET else ch.encode("utf-8")
        for ch in token
    )


def tokens_to_string(tokens: Iterable[str], errors: str = "replace") -> str:
    """`convert_tokens_to_string`: join, read as bytes, decode UTF-8."""
    return b"".join(token_bytes(t) for t in tokens).decode("utf-8", errors=errors)


class IdDecoder:
    """Bytes of every non-added id precomputed once, so decoding is a join and one UTF-8 decode."""

    def __init__(self, id_to_token: Sequence[str | None]) -> None:
        self._bytes: list[bytes] = [b"" if t is None else token_bytes(t) for t in id_to_token]

    def table(self) -> list[bytes]:
        """A copy of the per-id bytes (added tokens not included)."""
        return list(self._bytes)

    def byte_run(self, ids: Iterable[int]) -> bytes:
        table = self._bytes
        size = len(table)
        return b"".join(table[i] for i in ids if 0 <= i < size)
