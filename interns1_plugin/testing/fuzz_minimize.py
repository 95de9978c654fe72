"""Shrinking a failing output to a small one that fails the same way, for the failure report.

Markers are kept whole: cutting one in two would turn the failure into a different one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from interns1_plugin.testing.fuzz_markers import marker_spans


def _atoms(text: str) -> list[str]:
    atoms, pos = [], 0
    for start, end in marker_spans(text):
        atoms.extend(text[pos:start])
        atoms.append(text[start:end])
        pos = end
    atoms.extend(text[pos:])
    return atoms


def minimize(
    text: str, fails: Callable[[str], bool], *, budget: int = 2000, seconds: float = 60.0
) -> str:
    """A smaller text that still fails: delta debugging over markers and single characters.

    Stops after `budget` tries or `seconds`, whichever comes first, with the smallest so far.
    """
    atoms = _atoms(text)
    parts = 2
    deadline = time.monotonic() + seconds
    while len(atoms) >= 2 and budget > 0 and time.monotonic() < deadline:
        size = -(-len(atoms) // parts)
        for start in range(0, len(atoms), size):
            candidate = atoms[:start] + atoms[start + size :]
            budget -= 1
            if fails("".join(candidate)):
                atoms = candidate
                parts = max(parts - 1, 2)
                break
            if budget <= 0 or time.monotonic() >= deadline:
                break
        else:
            if parts >= len(atoms):
                break
            parts = min(parts * 2, len(atoms))
    return "".join(atoms)
