"""Ways to stream an output: the delta boundaries an engine's detokenizer may produce.

A parser must give the same split whatever the chunking, markers cut in two included.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from interns1_plugin.testing.fuzz_markers import marker_spans
from interns1_plugin.testing.fuzz_random import RandomSource, chance

CHUNKINGS: tuple[str, ...] = ("whole", "chars", "random", "markers", "straddle", "tokens")


def _cut(text: str, points: Iterable[int]) -> list[str]:
    bounds = sorted({0, len(text), *(p for p in points if 0 < p < len(text))})
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)] or [text]


def chunk(text: str, kind: str, rng: RandomSource) -> list[str]:
    """Pieces of `text` as one kind of stream would deliver them.

    whole: one delta; chars: one character each; random: 1-20 characters, now and then an empty
    delta; markers: cut exactly at every marker's two ends; straddle: every marker cut in two;
    tokens: markers whole and other text 1-4 characters, as a detokenizer delivers.
    """
    if kind == "whole":
        return [text]
    if kind == "chars":
        return list(text) or [text]
    if kind == "random":
        pieces, pos = [], 0
        while pos < len(text):
            size = rng.randint(1, 20)
            pieces.append(text[pos : pos + size])
            if chance(rng, 0.05):
                pieces.append("")
            pos += size
        return pieces or [text]
    spans = marker_spans(text)
    if kind == "markers":
        return _cut(text, [p for span in spans for p in span])
    if kind == "straddle":
        return _cut(text, [rng.randint(a + 1, b - 1) for a, b in spans])
    if kind == "tokens":
        points: list[int] = []
        pos = 0
        for a, b in [*spans, (len(text), len(text))]:
            while pos < a:
                points.append(pos)
                pos += rng.randint(1, 4)
            points += [a, b]
            pos = b
        return _cut(text, points)
    raise ValueError(f"unknown chunking {kind!r}")


def all_chunkings(text: str, seed: int = 0) -> list[tuple[str, list[str]]]:
    """Every kind of chunking once (random ones from `seed`): for re-checking one output."""
    rng = random.Random(seed)
    return [(kind, chunk(text, kind, rng)) for kind in CHUNKINGS]
