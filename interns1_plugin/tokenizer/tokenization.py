"""`InternS1Tokenizer`: the checkpoints' tokenizer class, without remote code.

A transformers slow-tokenizer (`PreTrainedTokenizer`) subclass, because that is what the reference
is and what the engines already drive token by token (vLLM's incremental detokenizer uses
`convert_ids_to_tokens` / `convert_tokens_to_string` for such tokenizers). The text work itself is
delegated: byte-level BPE runs in Rust (`tokenizers`), the sub-models in `sentencepiece`, and the
span splitting and id stitching in `engine.DynamicEncoder`, which batches both.

Ids, tokens and decoded text match the reference `InternS1Tokenizer` (transformers
`models/interns1/tokenization_interns1.py`), quirks included. Auto-detected SMILES are validated
with RDKit when it is importable and with hand-written rules otherwise, like the reference: the two
accept different candidates, so some texts get different ids with and without the `[chem]` extra.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from transformers import AddedToken, PreTrainedTokenizer

from .bpe import ByteLevelBPE
from .decoding import IdDecoder, token_bytes, tokens_to_string
from .engine import DynamicEncoder, nfc
from .hf_encoding import EngineEncodingMixin
from .layout import MERGES_FILE, SUB_MODELS, VOCAB_FILE, compute_layout
from .splitting import SpanSplitter
from .submodels import PieceModel
from .validation import SmilesValidator

VOCAB_FILES_NAMES: Final = {
    "vocab_file": VOCAB_FILE,
    "merges_file": MERGES_FILE,
    **{model.init_arg: model.filename for model in SUB_MODELS},
}
#: The reference's fallback when a token is in no vocabulary (absent from real vocabularies: None).
_UNK_PIECE: Final = "<unk>"


class InternS1Tokenizer(EngineEncodingMixin, PreTrainedTokenizer):
    """Byte-level BPE plus SMILES / IUPAC / FASTA SentencePiece models switched by tags.

    Args beyond the usual slow-tokenizer ones:
        sp_model_SMILES / sp_model_IUPAC / sp_model_FASTA: model files (default: next to vocab).
        use_rdkit: validate auto-detected SMILES with RDKit (None: when importable, as the
            reference does); ids of some texts differ between the two.
    """

    vocab_files_names = VOCAB_FILES_NAMES
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(
        self,
        vocab_file: str,
        merges_file: str,
        sp_model_SMILES: str | None = None,  # noqa: N803 - the reference's keyword names
        sp_model_IUPAC: str | None = None,  # noqa: N803
        sp_model_FASTA: str | None = None,  # noqa: N803
        errors: str = "replace",
        unk_token: str | AddedToken | None = "<|endoftext|>",
        bos_token: str | AddedToken | None = None,
        eos_token: str | AddedToken | None = "<|endoftext|>",
        pad_token: str | AddedToken | None = "<|endoftext|>",
        clean_up_tokenization_spaces: bool = False,
        split_special_tokens: bool = False,
        use_rdkit: bool | None = None,
        **kwargs: Any,
    ) -> None:
        self.errors = errors
        self._bpe = ByteLevelBPE(vocab_file, merges_file)
        folder = Path(vocab_file).parent
        given = {
            "sp_model_SMILES": sp_model_SMILES,
            "sp_model_IUPAC": sp_model_IUPAC,
            "sp_model_FASTA": sp_model_FASTA,
        }
        paths = [given[m.init_arg] or folder / m.filename for m in SUB_MODELS]
        self._models = [PieceModel(m.name, p, 0) for m, p in zip(SUB_MODELS, paths, strict=True)]
        self._layout = compute_layout(len(self._bpe.encoder), [m.size for m in self._models])
        for model, offset in zip(self._models, self._layout.piece_offsets, strict=True):
            model.offset = offset
        self._validator = SmilesValidator(use_rdkit)
        self._fixed_size = len(self._bpe.encoder) + sum(m.size for m in self._models)
        self._new_at_init = 0
        self._initialised = False
        super().__init__(
            errors=errors,
            unk_token=unk_token,
            bos_token=bos_token,
            eos_token=eos_token,
            pad_token=pad_token,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            split_special_tokens=split_special_tokens,
            **kwargs,
        )
        # The layout decides the tags' ids, whatever the saved config says (as the reference).
        for tag, index in self._layout.tag_ids.items():
            self._added_tokens_encoder[tag] = index
            self._added_tokens_decoder[index] = AddedToken(
                tag, lstrip=False, rstrip=False, normalized=False, single_word=False, special=True
            )
        # The reference counts added tokens (and, twice, specials it had to add while loading).
        self._size = self._fixed_size + len(self._added_tokens_decoder) + self._new_at_init
        self._build_static()
        self._initialised = True
        self._refresh_added()

    # -- derived state --------------------------------------------------------------------------

    def _build_static(self) -> None:
        """What depends only on the files: model switching, id -> token table, byte table."""
        pushes: dict[str, int] = {}
        pops: set[str] = set()
        for index, model in enumerate(SUB_MODELS):
            for open_tag, close_tag in list(model.tags) + ([model.auto] if model.auto else []):
                pushes[open_tag] = index
                pops.add(close_tag)
        self._pushes = pushes
        self._pops = frozenset(pops)
        self._logical = frozenset(m for model in SUB_MODELS if model.auto for m in model.auto)
        table: list[str | None] = [None] * max(self._size, self._layout.fixed_end)
        for token, index in self._bpe.encoder.items():
            table[index] = token
        for model in self._models:
            table[model.offset : model.offset + model.size] = model.pieces
        self._id_to_token = table
        self._id_decoder = IdDecoder(table)
        self._engine = DynamicEncoder(
            self._bpe,
            self._models,
            self._splitter(),
            self._added_tokens_encoder,
            pushes,
            self._pops,
        )

    def _splitter(self) -> SpanSplitter:
        added = {
            content: self._added_tokens_decoder[index]
            for content, index in self._added_tokens_encoder.items()
            if index in self._added_tokens_decoder
        }
        return SpanSplitter(added, self._validator)

    def _refresh_added(self) -> None:
        """Rebuild what depends on the added tokens (the splitter and `get_vocab`)."""
        if not getattr(self, "_initialised", False):
            return
        self._engine.splitter = self._splitter()
        self._vocab = dict(self._bpe.encoder, **self._added_tokens_encoder)

    # -- sizes and vocabularies -----------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """Every id, sub-model pieces and added tokens included (the reference's definition)."""
        return getattr(self, "_size", 0) or len(self._bpe.encoder)

    def __len__(self) -> int:
        return self.vocab_size

    def _update_total_vocab_size(self) -> None:
        """Called by transformers after added tokens change. The size itself is tracked by
        `_add_tokens` (the reference's rule), not by counting `get_vocab()`."""
        self._refresh_added()

    def get_vocab(self) -> dict[str, int]:
        """BPE tokens and added tokens (sub-model pieces share strings with them; see
        `convert_ids_to_tokens` for those)."""
        vocab = getattr(self, "_vocab", None)
        if vocab is None or not self._initialised:
            return dict(self._bpe.encoder, **self._added_tokens_encoder)
        return vocab

    def clear_caches(self) -> None:
        """Forget remembered SMILES verdicts, sub-model encodings and BPE words (memory, or a
        benchmark that must not reuse them)."""
        self._validator.clear()
        for model in self._models:
            model.clear()
        self._bpe.clear()

    @property
    def uses_rdkit(self) -> bool:
        """Whether auto-detected SMILES are validated with RDKit (else the hand-written rules)."""
        return self._validator.use_rdkit

    def _add_tokens(
        self, new_tokens: Sequence[str | AddedToken] | None, special_tokens: bool = False
    ) -> int:
        """New tokens get ids after everything else, and the size grows by the number added."""
        if not new_tokens:
            return 0
        current = self.get_vocab().copy()
        next_id = max(current.values()) + 1
        added = 0
        for token in new_tokens:
            if not isinstance(token, str | AddedToken):
                raise TypeError(f"Token {token} is not a string but a {type(token)}.")
            if str(token) == "":
                continue
            if isinstance(token, str):
                if token in self._added_tokens_encoder:
                    continue
                is_special = token in self.all_special_tokens or special_tokens
                token = AddedToken(
                    token, rstrip=False, lstrip=False, normalized=not is_special, special=is_special
                )
            elif special_tokens:
                token.__setstate__({"special": True, "normalized": token.normalized})
            if token.content in current:
                index = current[token.content]
            else:
                index = next_id + added
                current[token.content] = index
                added += 1
            if token.special and str(token) not in self.all_special_tokens:
                self._extra_special_tokens.append(token)
            self._added_tokens_decoder[index] = token
            self._added_tokens_encoder[token.content] = index
        if self._initialised:
            self._size += added
        else:
            self._new_at_init += added
        self._update_trie()
        self._refresh_added()
        return added

    # -- tokens <-> ids -------------------------------------------------------------------------

    def prepare_for_tokenization(
        self, text: str, is_split_into_words: bool = False, **kwargs: Any
    ) -> tuple[str, dict[str, Any]]:
        return nfc(text), kwargs

    def tokenize(self, text: str, **kwargs: Any) -> list[str]:
        """Token strings, including the zero-id `<SMILES_AUTO_DETECT>`-style markers."""
        split = kwargs.pop("split_special_tokens", self.split_special_tokens)
        text, _ = self.prepare_for_tokenization(text, **kwargs)
        return self._engine.tokenize(text, split)

    def _tokenize(self, text: str, **kwargs: Any) -> list[str]:
        """Plain byte-level BPE of `text` (no tags, no sub-models)."""
        return self._bpe.tokens(self._bpe.encode_many([text])[0])

    def _convert_token_to_id(self, token: str) -> int | None:
        encoder = self._bpe.encoder
        return encoder.get(token, encoder.get(_UNK_PIECE))

    def _convert_id_to_token(self, index: int) -> str | None:
        table = self._id_to_token
        return table[index] if 0 <= index < len(table) else None

    def convert_tokens_to_ids(self, tokens: str | Sequence[str] | None) -> int | list[int] | None:
        """Token strings to ids the reference's way: the tags and markers in the list switch the
        sub-model, and while one is active a string is looked up in its pieces first."""
        if tokens is None:
            return None
        if isinstance(tokens, str):
            return self._convert_token_to_id_with_added_voc(tokens)
        added = self._added_tokens_encoder
        ids: list[int] = []
        stack: list[int] = []
        for token in tokens:
            if token not in self._logical:
                if token in added:
                    ids.append(added[token])
                else:
                    local = self._models[stack[-1]].known.get(token) if stack else None
                    if local is None:
                        ids.append(self._convert_token_to_id(token))  # type: ignore[arg-type]
                    else:
                        ids.append(local + self._models[stack[-1]].offset)
            model = self._pushes.get(token)
            if model is not None:
                stack.append(model)
            elif token in self._pops and stack:
                stack.pop()
        return ids

    def byte_vocab(self) -> list[bytes]:
        """The bytes each id decodes to, `len(self)` entries (b"" for ids that stand for nothing).

        `get_vocab()` cannot hold sub-model pieces (their strings repeat BPE ones); grammar
        engines such as xgrammar need every id's text, and can take it from here.
        """
        table = self._id_decoder.table()
        table += [b""] * (len(self) - len(table))
        for index, token in self._added_tokens_decoder.items():
            if 0 <= index < len(table):
                table[index] = token.content.encode("utf-8")
        return table[: len(self)]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """Join and read through the byte-level alphabet (`▁` is a space)."""
        return tokens_to_string(tokens, self.errors)

    # -- decoding -------------------------------------------------------------------------------

    def _decode(
        self,
        token_ids: int | list[int],
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
        spaces_between_special_tokens: bool = False,
        **kwargs: Any,
    ) -> str:
        """Byte runs decoded together; added tokens that are not named special tokens are kept
        as separate pieces (joined by a space only if `spaces_between_special_tokens`)."""
        ids = [token_ids] if isinstance(token_ids, int) else [int(i) for i in token_ids]
        if skip_special_tokens:
            skip = set(self.all_special_ids)
            ids = [i for i in ids if i not in skip]
        named = set(self.all_special_tokens)
        added = self._added_tokens_decoder
        table = self._id_decoder
        pieces: list[str] = []
        run: list[bytes] = []
        start = 0  # ids[start:i] are plain ids not yet in `run`
        for i, token_id in enumerate(ids):
            token = added.get(token_id)
            if token is None:
                continue
            run.append(table.byte_run(ids[start:i]))
            start = i + 1
            if token.content in named:
                run.append(token_bytes(token.content))
                continue
            if any(run):
                pieces.append(b"".join(run).decode("utf-8", errors=self.errors))
            run = []
            pieces.append(token.content)
        run.append(table.byte_run(ids[start:]))
        if any(run):
            pieces.append(b"".join(run).decode("utf-8", errors=self.errors))
        text = (" " if spaces_between_special_tokens else "").join(pieces)
        if clean_up_tokenization_spaces:
            text = self.clean_up_tokenization(text)
        return text

    # -- saving ---------------------------------------------------------------------------------

    def save_vocabulary(
        self, save_directory: str, filename_prefix: str | None = None
    ) -> tuple[str, ...]:
        """vocab.json, merges.txt and the three sub-model files."""
        if not os.path.isdir(save_directory):
            raise ValueError(f"Vocabulary path ({save_directory}) should be a directory")
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        vocab_path = os.path.join(save_directory, prefix + VOCAB_FILE)
        merges_path = os.path.join(save_directory, prefix + MERGES_FILE)
        with open(vocab_path, "w", encoding="utf-8") as handle:
            handle.write(
                json.dumps(self._bpe.encoder, indent=2, sort_keys=True, ensure_ascii=False)
            )
            handle.write("\n")
        if Path(merges_path).resolve() != self._bpe.merges_file.resolve():
            shutil.copyfile(self._bpe.merges_file, merges_path)
        written = [vocab_path, merges_path]
        for spec, model in zip(SUB_MODELS, self._models, strict=True):
            path = os.path.join(save_directory, prefix + spec.filename)
            with open(path, "wb") as handle:
                handle.write(model.serialized())
            written.append(path)
        return tuple(written)
