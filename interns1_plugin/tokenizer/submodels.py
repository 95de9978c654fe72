"""A SentencePiece sub-model (SMILES, IUPAC or FASTA), placed at its offset in the id space."""

from __future__ import annotations

from pathlib import Path

import sentencepiece as spm

#: Encoded spans remembered per model (the same molecules and sequences recur); cleared when full.
_CACHE_SIZE = 1 << 14


class PieceModel:
    """Encodes spans with SentencePiece and answers the reference's piece lookups.

    `known` maps every piece string except the unknown piece to its local id: the reference looks
    BPE fallback tokens up there first (`piece_to_id`), which is how `s` inside a SMILES span can
    get a SMILES id.
    """

    def __init__(self, name: str, path: str | Path, offset: int) -> None:
        self.name = name
        self.path = Path(path)
        self.offset = offset
        self.sp = spm.SentencePieceProcessor(model_file=str(path))
        if self.sp.unk_id() != 0:
            raise ValueError(f"{path}: the unknown piece must have id 0 (got {self.sp.unk_id()})")
        self.size = self.sp.get_piece_size()
        self.pieces: list[str] = [self.sp.id_to_piece(i) for i in range(self.size)]
        self.known: dict[str, int] = {p: i for i, p in enumerate(self.pieces) if i != 0}
        self._cache: dict[str, tuple[list[int], list[str] | None]] = {}

    def encode(self, text: str) -> tuple[list[int], list[str] | None]:
        """Local ids, plus the pieces when one is unknown (id 0): its text goes to BPE.

        One call per text: sentencepiece's list input costs far more than a loop for the short
        spans found in prose, and the second call is only paid for spans with unknown pieces.
        The result is shared with the cache: callers must not modify it.
        """
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        ids = self.sp.encode(text)
        result = ids, (self.sp.encode(text, out_type=str) if 0 in ids else None)
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        self._cache[text] = result
        return result

    def clear(self) -> None:
        self._cache.clear()

    def serialized(self) -> bytes:
        """The model file's bytes, for `save_pretrained`."""
        return self.sp.serialized_model_proto()
