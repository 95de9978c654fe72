"""The randomness the fuzzer draws from: `random.Random` or hypothesis' stand-in.

Only `random()` and `randint()` are asked of it, so hypothesis' `st.randoms()` can stand in and
shrink a failing draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class RandomSource(Protocol):
    """What the generator needs of its randomness: `random.Random` or hypothesis' stand-in."""

    def random(self) -> float: ...

    def randint(self, a: int, b: int) -> int: ...


def pick(rng: RandomSource, items: Sequence[Any]) -> Any:
    return items[rng.randint(0, len(items) - 1)]


def chance(rng: RandomSource, p: float) -> bool:
    return rng.random() < p
