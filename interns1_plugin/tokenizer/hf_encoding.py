"""Transformers' encode entry points routed to the batched engine.

`encode`, `__call__` and batch calls on strings go to `DynamicEncoder` in one batch, then through
transformers' own truncation, special tokens and padding (`prepare_for_model`, `pad`); anything
else (pre-tokenized input, pairs of lists of words, ...) takes transformers' generic path, which
ends in `tokenize` + `convert_tokens_to_ids` and gives the same ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from transformers import BatchEncoding
from transformers.tokenization_utils_base import TruncationStrategy
from transformers.utils import PaddingStrategy

if TYPE_CHECKING:
    from .engine import DynamicEncoder

_STR_ENCODE_KWARGS: Final = frozenset({"split_special_tokens"})


class EngineEncodingMixin:
    """Mixed into `InternS1Tokenizer` ahead of `PreTrainedTokenizer`; needs `self._engine`."""

    _engine: DynamicEncoder
    split_special_tokens: bool

    def encode_batch(
        self, texts: Sequence[str], split_special_tokens: bool | None = None
    ) -> list[list[int]]:
        """Ids of many texts at once, sub-models and BPE each run once for the whole batch."""
        split = self.split_special_tokens if split_special_tokens is None else split_special_tokens
        return self._engine.encode_batch(texts, split)

    def encode(
        self,
        text: Any,
        text_pair: Any = None,
        add_special_tokens: bool = True,
        padding: Any = False,
        truncation: Any = None,
        max_length: int | None = None,
        stride: int = 0,
        padding_side: str | None = None,
        return_tensors: Any = None,
        **kwargs: Any,
    ) -> list[int]:
        """Straight to the engine for the plain case; everything else through transformers."""
        plain = (
            isinstance(text, str)
            and text_pair is None
            and not padding
            and not truncation
            and max_length is None
            and return_tensors is None
            and _STR_ENCODE_KWARGS.issuperset(kwargs)
        )
        if not plain:
            return super().encode(
                text,
                text_pair=text_pair,
                add_special_tokens=add_special_tokens,
                padding=padding,
                truncation=truncation,
                max_length=max_length,
                stride=stride,
                padding_side=padding_side,
                return_tensors=return_tensors,
                **kwargs,
            )
        split = kwargs.get("split_special_tokens", self.split_special_tokens)
        ids = self._engine.encode(text, split)
        if add_special_tokens:
            ids = self.build_inputs_with_special_tokens(ids)
        self._eventual_warn_about_too_long_sequence(ids, None, True)
        return ids

    def _encode_plus(
        self,
        text: Any,
        text_pair: Any = None,
        add_special_tokens: bool = True,
        padding_strategy: PaddingStrategy = PaddingStrategy.DO_NOT_PAD,
        truncation_strategy: TruncationStrategy = TruncationStrategy.DO_NOT_TRUNCATE,
        max_length: int | None = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: Any = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_length: bool = False,
        verbose: bool = True,
        **kwargs: Any,
    ) -> BatchEncoding:
        """Strings (single or batched) are encoded by the engine in one batch; ids then go
        through transformers' own truncation, special tokens and padding."""
        options = dict(
            add_special_tokens=add_special_tokens,
            max_length=max_length,
            stride=stride,
            return_token_type_ids=return_token_type_ids,
            return_overflowing_tokens=return_overflowing_tokens,
            return_special_tokens_mask=return_special_tokens_mask,
            return_length=return_length,
            verbose=verbose,
        )
        if kwargs.pop("return_offsets_mapping", False):
            raise NotImplementedError(
                "return_offsets_mapping is not available: InternS1Tokenizer is a slow tokenizer, "
                "like the reference"
            )
        split = kwargs.get("split_special_tokens", self.split_special_tokens)
        if not is_split_into_words and isinstance(text, str):
            if text_pair is None or isinstance(text_pair, str):
                first, *rest = self._engine.encode_batch(
                    [text] if text_pair is None else [text, text_pair], split
                )
                return self.prepare_for_model(
                    first,
                    pair_ids=rest[0] if rest else None,
                    padding=padding_strategy.value,
                    pad_to_multiple_of=pad_to_multiple_of,
                    padding_side=padding_side,
                    return_tensors=return_tensors,
                    prepend_batch_axis=True,
                    return_attention_mask=return_attention_mask,
                    truncation=truncation_strategy.value,
                    **options,
                )
        if _is_batch_of_strings(text, text_pair, is_split_into_words):
            count = len(text)
            pairs = list(text_pair) if text_pair is not None else []
            encoded = self._engine.encode_batch(list(text) + pairs, split)
            seconds: list[list[int] | None] = list(encoded[count:]) if pairs else [None] * count
            outputs: dict[str, list[Any]] = {}
            for first, second in zip(encoded[:count], seconds, strict=True):
                one = self.prepare_for_model(
                    first,
                    pair_ids=second,
                    padding=PaddingStrategy.DO_NOT_PAD.value,
                    return_attention_mask=False,
                    truncation=truncation_strategy.value,
                    **options,
                )
                for key, value in one.items():
                    outputs.setdefault(key, []).append(value)
            if return_tensors and return_overflowing_tokens:
                outputs.pop("overflowing_tokens", None)
                outputs.pop("num_truncated_tokens", None)
            padded = self.pad(
                outputs,
                padding=padding_strategy.value,
                max_length=max_length,
                pad_to_multiple_of=pad_to_multiple_of,
                padding_side=padding_side,
                return_attention_mask=return_attention_mask,
            )
            return BatchEncoding(padded, tensor_type=return_tensors)
        return super()._encode_plus(
            text,
            text_pair=text_pair,
            padding_strategy=padding_strategy,
            truncation_strategy=truncation_strategy,
            is_split_into_words=is_split_into_words,
            pad_to_multiple_of=pad_to_multiple_of,
            padding_side=padding_side,
            return_tensors=return_tensors,
            return_attention_mask=return_attention_mask,
            **options,
            **kwargs,
        )


def _is_batch_of_strings(text: Any, text_pair: Any, is_split_into_words: bool) -> bool:
    if is_split_into_words or not isinstance(text, list | tuple) or not text:
        return False
    if not all(isinstance(t, str) for t in text):
        return False
    if text_pair is None:
        return True
    return (
        isinstance(text_pair, list | tuple)
        and len(text_pair) == len(text)
        and all(isinstance(t, str) for t in text_pair)
    )
