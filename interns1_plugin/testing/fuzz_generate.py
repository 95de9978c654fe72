"""Whole fuzzed outputs, each reproducible from its seed alone (`generate(seed)`).

30% are clean (text and well-formed blocks, so the expected split is known), 10% clean but
truncated, the rest noisy: random parts in any order, broken blocks and stray tags included.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from interns1_plugin import formats as f
from interns1_plugin.testing.fuzz_builder import Builder
from interns1_plugin.testing.fuzz_call_json import decoded_call
from interns1_plugin.testing.fuzz_features import CLEAN, NOISY, OPEN_DEFECTS, TRUNCATED
from interns1_plugin.testing.fuzz_markers import visible
from interns1_plugin.testing.fuzz_random import RandomSource, chance, pick


@dataclass(frozen=True, slots=True)
class Expected:
    """The split an output of well-formed parts must give: visible text and decoded calls."""

    reasoning: str
    content: str
    calls: tuple[tuple[str, Any], ...]


@dataclass(frozen=True, slots=True)
class FuzzOutput:
    """One generated model output; `expected` is set when every part of it is well-formed."""

    seed: int
    text: str
    thinking: bool
    features: frozenset[str]
    expected: Expected | None = None


def generate(
    seed: int, *, exclude: frozenset[str] = OPEN_DEFECTS, rng: RandomSource | None = None
) -> FuzzOutput:
    """The output for `seed` (or drawn from `rng`, e.g. hypothesis' `st.randoms()`)."""
    rng = rng if rng is not None else random.Random(seed)
    roll = rng.random()
    if roll < 0.3:
        return _clean_output(seed, rng, exclude)
    if roll < 0.4:
        whole = _clean_output(seed, rng, exclude)
        cut = rng.randint(0, len(whole.text))
        features = whole.features | {TRUNCATED}
        return FuzzOutput(seed, whole.text[:cut], whole.thinking, features - {CLEAN})
    builder = Builder(rng, exclude, clean=False)
    builder.features.add(NOISY)
    thinking = chance(rng, 0.75)
    head = pick(rng, ("", "\n", "<think>\n", "  <think>", "\n<think>", "<think><think>"))
    parts = [head] + [builder.noisy_part() for _ in range(rng.randint(1, 14))]
    return FuzzOutput(seed, "".join(parts), thinking, frozenset(builder.features))


def _clean_output(seed: int, rng: RandomSource, exclude: frozenset[str]) -> FuzzOutput:
    """Text and well-formed blocks, reasoning (maybe unfinished) first: the split is known.

    A well-formed block whose call has no faithful rendering (too deep, `1e400`, a lone
    surrogate) is planned as text, so these outputs also pin that such blocks come through
    verbatim.
    """
    builder = Builder(rng, exclude, clean=True)
    builder.features.add(CLEAN)
    thinking = chance(rng, 0.75)
    calls: list[tuple[str, Any]] = []

    def channel(count: int, *, last: bool) -> tuple[str, str]:
        """(raw text, the part of it that stays text) of one channel's random parts."""
        raw, prose = [], []
        for index in range(count):
            if chance(rng, 0.4):
                payload = builder.payload()
                decoded = decoded_call(payload)
                # What the generator meant and what the checker reads must agree, or one of the
                # two is wrong about the rules.
                if (decoded is None) != bool(builder.spoilers):
                    raise RuntimeError(
                        f"generator and checker disagree (spoilers {sorted(builder.spoilers)}, "
                        f"decoded {decoded is not None}): {payload!a}"
                    )
                # A stop string may eat the last call's end marker.
                eaten = last and index == count - 1 and chance(rng, 0.3)
                block = builder.block(payload, terminated=not eaten)
                raw.append(block)
                if decoded is None:
                    prose.append(block)  # unrepresentable or too deep: the block is text
                else:
                    calls.append(decoded)
            else:
                text = builder.text()
                raw.append(text)
                prose.append(text)
        return "".join(raw), "".join(prose)

    if not thinking:
        raw, content = channel(rng.randint(1, 6), last=True)
        expected = Expected("", visible(content), tuple(calls))
        return FuzzOutput(seed, raw, thinking, frozenset(builder.features), expected)
    closed = chance(rng, 0.85)
    opening = pick(rng, ("", "", "<think>", "<think>\n", "\n"))
    raw, reasoning = channel(rng.randint(0, 5), last=not closed)
    text, content = opening + raw, ""
    if closed:
        text += pick(rng, ("", "\n")) + f.THINK_END + pick(rng, ("", "\n\n", " "))
        raw, content = channel(rng.randint(0, 5), last=True)
        text += raw
    expected = Expected(visible(reasoning), visible(content), tuple(calls))
    return FuzzOutput(seed, text, thinking, frozenset(builder.features), expected)


def generate_many(base_seed: int, count: int, **kwargs: Any) -> Iterator[FuzzOutput]:
    """`count` outputs whose seeds follow from `base_seed`, so any one can be rebuilt alone."""
    for index in range(count):
        yield generate(output_seed(base_seed, index), **kwargs)


def output_seed(base_seed: int, index: int) -> int:
    return base_seed * 1_000_003 + index
