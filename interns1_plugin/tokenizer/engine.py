"""Events -> ids (or token strings), batching every sub-model and all BPE text into few calls.

Walks the events with a stack of active sub-models, as the reference walks its tokens: text goes
to the active sub-model's SentencePiece, or to byte-level BPE when none is active; a piece the
sub-model does not know falls back to BPE, and inside a span every BPE token whose string is one of
the active sub-model's pieces takes that piece's id. All BPE text of a call is tokenised by one
Rust call, so the Python layer only plans and stitches.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any, Final

from .bpe import ByteLevelBPE
from .events import CLOSE, OPEN, PROTECT, TAG, TEXT, Event
from .splitting import SpanSplitter
from .submodels import PieceModel

# A plan is a list of parts `(kind, a, b)`, in output order:
_ID: Final = 0  # an added token: a = its id, b = its string
_MARK: Final = 1  # a zero-id marker: b = its string (only tokenize() shows it)
_BPE: Final = 2  # a = index of a BPE segment
_SP: Final = 3  # a = model index, b = index of that model's segment
Part = tuple[int, int, Any]
#: A sub-model segment's result: runs of final ids, and indices of BPE segments for unknown pieces.
Chunks = list[list[int] | int]


def nfc(text: str) -> str:
    """The reference normalises every input to NFC first; ASCII is already NFC."""
    if text.isascii() or unicodedata.is_normalized("NFC", text):
        return text
    return unicodedata.normalize("NFC", text)


class _Batch:
    """Segments collected from every text of one call, encoded together at the end."""

    def __init__(self, n_models: int) -> None:
        self.bpe: list[str] = []
        self.bpe_model: list[int] = []  # active model per BPE segment (-1: none)
        self.sp: list[list[str]] = [[] for _ in range(n_models)]

    def add_bpe(self, text: str, model: int) -> int:
        self.bpe.append(text)
        self.bpe_model.append(model)
        return len(self.bpe) - 1

    def add_sp(self, model: int, text: str) -> int:
        self.sp[model].append(text)
        return len(self.sp[model]) - 1


class DynamicEncoder:
    """The reference's dynamic tokenisation, batched."""

    def __init__(
        self,
        bpe: ByteLevelBPE,
        models: Sequence[PieceModel],
        splitter: SpanSplitter,
        added_ids: Mapping[str, int],
        pushes: Mapping[str, int],
        pops: frozenset[str],
    ) -> None:
        self.bpe = bpe
        self.models = list(models)
        self.splitter = splitter
        self.added_ids = added_ids  # live view: tokens added later are seen
        self.pushes = dict(pushes)  # tag or marker -> index of the model it activates
        self.pops = pops  # tags and markers that deactivate the active model
        # Inside a span a BPE token whose string is one of the model's pieces takes its id.
        self._in_span_ids = [
            {
                index: local + model.offset
                for token, index in bpe.encoder.items()
                if (local := model.known.get(token)) is not None
            }
            for model in self.models
        ]

    # -- planning -----------------------------------------------------------------------------

    def _plan(self, events: list[Event], batch: _Batch) -> list[Part]:
        parts: list[Part] = []
        stack: list[int] = []
        for kind, value in events:
            if kind == TEXT:
                if stack:
                    parts.append((_SP, stack[-1], batch.add_sp(stack[-1], value)))
                else:
                    parts.append((_BPE, batch.add_bpe(value, -1), None))
            elif kind == TAG:
                parts.append((_ID, self.added_ids[value], value))
                self._switch(stack, value)
            elif kind == PROTECT:
                parts.append((_BPE, batch.add_bpe(value, stack[-1] if stack else -1), None))
            elif kind == OPEN or kind == CLOSE:
                parts.append((_MARK, 0, value))
                self._switch(stack, value)
        return parts

    def _switch(self, stack: list[int], token: str) -> None:
        model = self.pushes.get(token)
        if model is not None:
            stack.append(model)
        elif token in self.pops and stack:
            stack.pop()  # a mismatched closing tag still pops, as in the reference

    def _plan_batch(
        self, texts: Sequence[str], split_special_tokens: bool
    ) -> tuple[list[list[Part]], list[list[Chunks]], _Batch]:
        """Plans and sub-model results; the BPE segments are left in the batch for one call."""
        batch = _Batch(len(self.models))
        plans = [
            self._plan(self.splitter.split(nfc(text), split_special_tokens), batch)
            for text in texts
        ]
        sp_chunks = [
            [self._sub_model_chunks(index, segment, batch) for segment in segments]
            for index, segments in enumerate(batch.sp)
        ]
        return plans, sp_chunks, batch

    def _prepare(
        self, texts: Sequence[str], split_special_tokens: bool
    ) -> tuple[list[list[Part]], list[list[Chunks]], list[list[int]], list[int]]:
        """Plans, sub-model results, BPE ids and each BPE segment's active model."""
        plans, sp_chunks, batch = self._plan_batch(texts, split_special_tokens)
        return plans, sp_chunks, self.bpe.encode_many(batch.bpe), batch.bpe_model

    def _sub_model_chunks(self, index: int, segment: str, batch: _Batch) -> Chunks:
        model = self.models[index]
        offset = model.offset
        ids, pieces = model.encode(segment)
        if pieces is None:  # every piece known: the common case
            return [[local + offset for local in ids]]
        chunks: Chunks = []
        run: list[int] = []
        for local, piece in zip(ids, pieces, strict=True):
            if local:
                run.append(local + offset)
                continue
            if run:
                chunks.append(run)
                run = []
            # Unknown to the sub-model: byte-level BPE, its tokens looked up in this model.
            chunks.append(batch.add_bpe(piece, index))
        if run:
            chunks.append(run)
        return chunks

    # -- public -------------------------------------------------------------------------------

    def encode_batch(
        self, texts: Sequence[str], split_special_tokens: bool = False
    ) -> list[list[int]]:
        """Ids for each text, as the reference's `convert_tokens_to_ids(tokenize(text))`."""
        plans, sp_chunks, encoded, active = self._prepare(texts, split_special_tokens)
        return self._assemble(plans, sp_chunks, encoded, active)

    def _assemble(
        self,
        plans: list[list[Part]],
        sp_chunks: list[list[Chunks]],
        encoded: list[list[int]],
        active: list[int],
    ) -> list[list[int]]:
        in_span = self._in_span_ids
        bpe_ids = [
            ids if model < 0 else [in_span[model].get(i, i) for i in ids]
            for ids, model in zip(encoded, active, strict=True)
        ]
        results: list[list[int]] = []
        for parts in plans:
            if len(parts) == 1 and parts[0][0] == _BPE:  # plain text
                results.append(list(bpe_ids[parts[0][1]]))
                continue
            ids: list[int] = []
            for kind, a, b in parts:
                if kind == _BPE:
                    ids.extend(bpe_ids[a])
                elif kind == _ID:
                    ids.append(a)
                elif kind == _SP:
                    for chunk in sp_chunks[a][b]:
                        ids.extend(chunk if isinstance(chunk, list) else bpe_ids[chunk])
            results.append(ids)
        return results

    def encode(self, text: str, split_special_tokens: bool = False) -> list[int]:
        return self.encode_batch([text], split_special_tokens)[0]

    def tokenize(self, text: str, split_special_tokens: bool = False) -> list[str]:
        """Token strings, zero-id markers included, as the reference's `tokenize` returns them."""
        (parts,), sp_chunks, bpe_ids, _ = self._prepare([text], split_special_tokens)
        bpe_strings = self.bpe.tokens
        tokens: list[str] = []
        for kind, a, b in parts:
            if kind == _BPE:
                tokens.extend(bpe_strings(bpe_ids[a]))
            elif kind == _ID or kind == _MARK:
                tokens.append(b)
            else:
                model = self.models[a]
                for chunk in sp_chunks[a][b]:
                    if isinstance(chunk, list):
                        tokens.extend(model.pieces[i - model.offset] for i in chunk)
                    else:
                        tokens.extend(bpe_strings(bpe_ids[chunk]))
        return tokens
