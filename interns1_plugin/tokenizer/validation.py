"""Whether an auto-detected SMILES candidate is accepted: RDKit's parser, or the hand-written rules.

The reference uses RDKit whenever it is importable and the rules otherwise, and the two disagree on
some texts, so the ids of such texts depend on whether the `[chem]` extra is installed. The choice
is made once per tokenizer (`use_rdkit`), so a process can also pin it either way.
"""

from __future__ import annotations

import importlib.util
from contextlib import AbstractContextManager, nullcontext
from functools import lru_cache
from typing import Any

from .smiles_rules import ascii_letter_count, rules_accept

MIN_LETTERS = 5
#: Verdicts remembered per validator: the same molecules recur throughout a document or corpus,
#: and an RDKit parse costs tens of microseconds. Cleared when full.
CACHE_SIZE = 1 << 16


@lru_cache(maxsize=1)
def rdkit_available() -> bool:
    """True when RDKit can be imported (the `[chem]` extra)."""
    try:
        return importlib.util.find_spec("rdkit") is not None
    except (ImportError, ValueError):  # e.g. a module blocked by `sys.modules["rdkit"] = None`
        return False


@lru_cache(maxsize=1)
def _rdkit() -> tuple[Any, Any]:
    from rdkit import Chem, rdBase

    return Chem, rdBase


class SmilesValidator:
    """Callable candidate check; a plain object (not a closure) so tokenizers stay picklable."""

    def __init__(self, use_rdkit: bool | None = None) -> None:
        if use_rdkit is None:
            use_rdkit = rdkit_available()
        if use_rdkit and not rdkit_available():
            raise ImportError("use_rdkit=True needs RDKit: pip install 'interns1-plugin[chem]'")
        self.use_rdkit = use_rdkit
        self._verdicts: dict[str, bool] = {}

    def __call__(self, candidate: str) -> bool:
        verdict = self._verdicts.get(candidate)
        if verdict is None:
            verdict = self._check(candidate)
            if len(self._verdicts) >= CACHE_SIZE:
                self._verdicts.clear()
            self._verdicts[candidate] = verdict
        return verdict

    def clear(self) -> None:
        self._verdicts.clear()

    def _check(self, candidate: str) -> bool:
        if ascii_letter_count(candidate) < MIN_LETTERS:
            return False
        if not self.use_rdkit:
            return rules_accept(candidate)
        chem, rd_base = _rdkit()
        # RDKit logs every parse failure and most candidates in prose fail: silence the call
        # only, rather than switching RDKit's logging off for the whole process.
        quiet: AbstractContextManager[Any] = getattr(rd_base, "BlockLogs", nullcontext)()
        with quiet:
            return chem.MolFromSmiles(candidate) is not None
