"""Engine items of the plugin's LMDeploy models: from a request's items to a step's positions.

A request's items are checked once, when the engine takes the request in
(`ItemsInputProcessor`); in each step the engine hands over the items lying inside it, whose
prompt positions `sequence_items` turns into flat step positions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from lmdeploy.pytorch.engine.input_process import BaseModelInputProcessor, PreprocessInputResult
from lmdeploy.pytorch.model_inputs import StepContext
from lmdeploy.pytorch.multimodal.data_type import MultiModalData

#: Packed items by modality name, as the engine keeps them per sequence.
Packed = dict[str, list[MultiModalData]]


class ItemsInputProcessor(BaseModelInputProcessor):
    """Checks and packs the preprocessing's items into the engine's `MultiModalData`.

    A subclass implements `pack` (check each item against the config and the prompt); this
    refuses items whose prompt positions overlap.
    """

    #: What the overlap error calls the items.
    item_kind = "multimodal"

    def __init__(self, dtype: torch.dtype | None) -> None:
        self.dtype = dtype

    def preprocess_input(
        self,
        input_ids: list[int],
        input_multimodals: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> PreprocessInputResult:
        """ValueError for items that do not fit the model or the prompt."""
        if not input_multimodals:
            return PreprocessInputResult(input_ids=input_ids, input_multimodals=None)
        packed = self.pack(input_ids, input_multimodals)
        spans = sorted((d.start, d.end) for items in packed.values() for d in items)
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            if start < end:
                raise ValueError(f"two {self.item_kind} items cover the same prompt positions")
        return PreprocessInputResult(input_ids=input_ids, input_multimodals=packed)

    def pack(self, input_ids: list[int], items: list[dict[str, Any]]) -> Packed:
        """Each item checked and converted, grouped by modality name."""
        raise NotImplementedError

    def in_model_dtype(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels if self.dtype is None else pixels.to(self.dtype)


def sequence_items(context: StepContext) -> Iterator[tuple[Packed, torch.Tensor]]:
    """Each sequence's items in the step, with the shift from prompt to flat step positions.

    An item's `start`/`end` are prompt positions; in the step they sit at the sequence's query
    start plus the offset past its history (tokens already in the cache).
    """
    if context.input_multimodals is None:
        return
    history = context.kv_seqlens - context.q_seqlens
    for seq, inputs in enumerate(context.input_multimodals):
        yield inputs or {}, context.q_start_loc[seq] - history[seq]


def step_positions(data: MultiModalData, shift: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The flat step positions of one item's placeholder tokens."""
    return torch.arange(data.start, data.end, device=device) + shift


def describe(value: Any) -> str:
    """What an item field holds, for error messages: a tensor's shape, else its type."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return type(value).__name__


__all__ = [
    "ItemsInputProcessor",
    "Packed",
    "describe",
    "sequence_items",
    "step_positions",
]
