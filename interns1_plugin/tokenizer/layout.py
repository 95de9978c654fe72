"""Which sub-model serves which tags, and where each one's ids start.

The id layout is fixed by the published checkpoints, not by the files alone: after the byte-level
BPE vocabulary come 26 reserved Qwen special-token slots, then for each sub-model its pieces
followed by its explicit tags, then every other added token:

    [BPE] [26 Qwen] [SMILES pieces] <SMILES> </SMILES> <SELFIES> </SELFIES>
    [IUPAC pieces] <IUPAC> </IUPAC> [FASTA pieces] [other added tokens]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from .. import formats

#: Qwen special-token slots between the BPE vocabulary and the first sub-model.
RESERVED_QWEN_SLOTS: Final = 26

VOCAB_FILE: Final = "vocab.json"
MERGES_FILE: Final = "merges.txt"


#: Content between these is kept away from auto-detection (the tags themselves are plain text).
PROTECT_OPEN: Final = formats.MOLFORMULA_START
PROTECT_CLOSE: Final = formats.MOLFORMULA_END

SMILES_AUTO_OPEN: Final = formats.SMILES_AUTO_DETECT
SMILES_AUTO_CLOSE: Final = formats.SMILES_AUTO_DETECT_END
FASTA_AUTO_OPEN: Final = formats.FASTA_AUTO_DETECT
FASTA_AUTO_CLOSE: Final = formats.FASTA_AUTO_DETECT_END


@dataclass(frozen=True)
class SubModel:
    """One SentencePiece model and the tags that switch to it."""

    name: str
    init_arg: str  # the tokenizer's __init__ keyword for the file, as the reference names it
    filename: str
    tags: tuple[tuple[str, str], ...]  # explicit (open, close) pairs: real tokens with ids
    auto: tuple[str, str] | None  # zero-id (open, close) markers for auto-detected spans


SUB_MODELS: Final[tuple[SubModel, ...]] = (
    SubModel(
        "SMILES",
        "sp_model_SMILES",
        "tokenizer_SMILES.model",
        ((formats.SMILES_START, formats.SMILES_END), (formats.SELFIES_START, formats.SELFIES_END)),
        (SMILES_AUTO_OPEN, SMILES_AUTO_CLOSE),
    ),
    SubModel(
        "IUPAC",
        "sp_model_IUPAC",
        "tokenizer_IUPAC.model",
        ((formats.IUPAC_START, formats.IUPAC_END),),
        None,
    ),
    SubModel(
        "FASTA", "sp_model_FASTA", "tokenizer_FASTA.model", (), (FASTA_AUTO_OPEN, FASTA_AUTO_CLOSE)
    ),
)


@dataclass(frozen=True)
class IdLayout:
    """First id of each sub-model's pieces, the id of each explicit tag, and the fixed-part size."""

    piece_offsets: tuple[int, ...]  # parallel to SUB_MODELS
    tag_ids: dict[str, int]
    fixed_end: int  # one past the last sub-model piece: where "other added tokens" start


def compute_layout(bpe_size: int, piece_counts: Sequence[int]) -> IdLayout:
    """Place each sub-model's pieces and tags after the BPE vocabulary and the Qwen slots."""
    cursor = bpe_size + RESERVED_QWEN_SLOTS
    offsets: list[int] = []
    tag_ids: dict[str, int] = {}
    for model, count in zip(SUB_MODELS, piece_counts, strict=True):
        offsets.append(cursor)
        cursor += count
        for open_tag, close_tag in model.tags:
            tag_ids[open_tag] = cursor
            tag_ids[close_tag] = cursor + 1
            cursor += 2
    return IdLayout(tuple(offsets), tag_ids, cursor)
