"""Intern-S1-Pro prompt placeholders: find them in rendered text and expand them in order.

The chat template writes one placeholder per item: `<|vision_start|><|image_pad|><|vision_end|>`
per image, `<|vision_start|><|video_pad|><|vision_end|>` per video and
`<|ts_start|><|ts_token|><|ts_end|>` per time series. vLLM's path swaps each for its expansion
after tokenizing; a transformers processor does it on the text before tokenizing. The
placeholders are special tokens, which the tokenizer never merges with their neighbours, so the
two give the same ids.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from interns1_plugin.formats import (
    IMAGE_PAD,
    TS_END,
    TS_START,
    TS_TOKEN,
    VIDEO_PAD,
    VISION_END,
    VISION_START,
)

#: Item kind (vLLM's modality name) -> the placeholder the template writes for one item.
PLACEHOLDERS: dict[str, str] = {
    "image": VISION_START + IMAGE_PAD + VISION_END,
    "video": VISION_START + VIDEO_PAD + VISION_END,
    "time_series": TS_START + TS_TOKEN + TS_END,
}
_KIND_OF = {text: kind for kind, text in PLACEHOLDERS.items()}
_PATTERN = re.compile("|".join(re.escape(text) for text in PLACEHOLDERS.values()))


def placeholder_kinds(text: str) -> list[str]:
    """The kinds of the placeholders in `text`, in order of appearance."""
    return [_KIND_OF[match.group()] for match in _PATTERN.finditer(text)]


def count_placeholders(texts: Sequence[str]) -> dict[str, int]:
    """How many placeholders of each kind a batch of prompts holds."""
    kinds = [kind for text in texts for kind in placeholder_kinds(text)]
    return {kind: kinds.count(kind) for kind in PLACEHOLDERS}


def check_counts(texts: Sequence[str], given: Mapping[str, int]) -> None:
    """Fail before any media work when placeholders and items do not pair up."""
    wanted = count_placeholders(texts)
    given = {kind: given.get(kind, 0) for kind in PLACEHOLDERS}
    if wanted != given:
        have = ", ".join(f"{n} {kind}" for kind, n in wanted.items())
        got = ", ".join(f"{n} {kind}" for kind, n in given.items())
        raise ValueError(f"the prompt has placeholders for {have} items, but {got} were given")


def expand_placeholders(texts: Sequence[str], expansions: Mapping[str, Sequence[str]]) -> list[str]:
    """Replace the n-th placeholder of each kind, across the batch, by `expansions[kind][n]`."""
    check_counts(texts, {kind: len(items) for kind, items in expansions.items()})
    queues = {kind: iter(expansions.get(kind, ())) for kind in PLACEHOLDERS}
    return [_PATTERN.sub(lambda m: next(queues[_KIND_OF[m.group()]]), text) for text in texts]


__all__ = [
    "PLACEHOLDERS",
    "check_counts",
    "count_placeholders",
    "expand_placeholders",
    "placeholder_kinds",
]
