"""How many outputs a fuzz test checks and from which seed, set from the environment.

A different seed or a bigger run needs no code change; stress runs only when asked for.
"""

from __future__ import annotations

import os

#: Outputs per fuzz test, base seed, and outputs per stress test (see `stress_count`).
COUNT_ENV = "INTERNS1_FUZZ_N"
SEED_ENV = "INTERNS1_FUZZ_SEED"
STRESS_COUNT_ENV = "INTERNS1_FUZZ_STRESS_N"
DEFAULT_SEED = 20251
DEFAULT_STRESS_COUNT = 100_000


def fuzz_count(default: int) -> int:
    """Outputs per fuzz test: `INTERNS1_FUZZ_N`, else the test file's default."""
    return int(os.environ.get(COUNT_ENV, default))


def base_seed() -> int:
    """`INTERNS1_FUZZ_SEED`, so a run with other outputs needs no code change."""
    return int(os.environ.get(SEED_ENV, DEFAULT_SEED))


def stress_count(markexpr: str) -> int | None:
    """Outputs for a stress test, or None when the run did not ask for stress.

    Stress tests take minutes, so they run only when selected by marker (`-m stress`) or
    sized through `INTERNS1_FUZZ_STRESS_N`, never as part of a plain `pytest`.
    """
    sized = os.environ.get(STRESS_COUNT_ENV)
    selected = "stress" in markexpr and "not stress" not in markexpr
    if sized is None and not selected:
        return None
    return int(sized) if sized is not None else DEFAULT_STRESS_COUNT
