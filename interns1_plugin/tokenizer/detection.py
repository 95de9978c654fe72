"""Auto-detection of SMILES and protein runs in untagged text.

Matches the reference exactly: SMILES candidates are runs of at least ten SMILES units (a bracket
atom, an element symbol, an aromatic atom, a digit or bond character) that neither start nor end on
`:`, `.` or `=`, are not glued to an ASCII letter, and pass the validator; protein runs are 27 or
more capitals and are searched again inside every piece, SMILES candidates included.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from .elements import AROMATIC, ELEMENTS
from .events import CLOSE, OPEN, TEXT, Event
from .layout import FASTA_AUTO_CLOSE, FASTA_AUTO_OPEN, SMILES_AUTO_CLOSE, SMILES_AUTO_OPEN

MIN_SMILES_UNITS: Final = 10
MIN_PROTEIN_LENGTH: Final = 27


def _smiles_unit() -> str:
    """One SMILES unit, two-letter symbols preferred, as one alternation per first letter.

    Inside an atomic group the first alternative that matches wins, so `C[adeflmnorsu]?` takes
    `Cl` over `C` exactly as the reference's longest-first list of symbols does; grouping by the
    first letter only makes the engine reject a position faster.
    """
    seconds: dict[str, set[str]] = {}
    for symbol in ELEMENTS:
        if len(symbol) == 2:
            seconds.setdefault(symbol[0], set()).add(symbol[1])
    singles = {s for s in ELEMENTS if len(s) == 1} | set(AROMATIC)
    branches = [r"\[[^\]]+\]"]
    for first in sorted(set(seconds) | singles):
        tail = "".join(sorted(seconds.get(first, ())))
        if not tail:
            branches.append(first)
        else:
            branches.append(f"{first}[{tail}]" + ("?" if first in singles else ""))
    branches.append(r"[()\.=\-#@\d$%*:+/\\]")
    return "|".join(branches)


SMILES_RE: Final = re.compile(rf"(?![:.=])(?>{_smiles_unit()}){{{MIN_SMILES_UNITS},}}(?<![:.=])")
PROTEIN_RE: Final = re.compile(rf"[A-Z]{{{MIN_PROTEIN_LENGTH},}}")

# Prefilter. Outside brackets every SMILES unit is made of the characters below, so when every
# bracket in the text holds only such characters too, a candidate lies inside a run of at least
# ten of them and brackets: scanning only those runs finds exactly the matches a scan of the whole
# text finds, at a fraction of the cost on prose (short words and spaces end a run). A bracket
# holding anything else makes the scan fall back to the whole text.
_UNIT_CHARS: Final = r"A-Za-z\d()=.\-#@$%*:+/\\"
_RUN_RE: Final = re.compile(rf"(?<![{_UNIT_CHARS}\[\]])[{_UNIT_CHARS}\[\]]{{{MIN_SMILES_UNITS},}}")
_OTHER_IN_BRACKET_RE: Final = re.compile(rf"\[[{_UNIT_CHARS}]*+[^\]{_UNIT_CHARS}]")
_TEN_CAPITAL_ATOMS_RE: Final = re.compile(
    "[" + "".join(sorted(s for s in ELEMENTS if len(s) == 1)) + rf"]{{{MIN_SMILES_UNITS}}}"
)


def smiles_matches(text: str) -> list[re.Match[str]]:
    """The matches of SMILES_RE over `text`, in order, less those no validator can accept.

    Runs of lowercase letters only are skipped: a match inside one is made of aromatic atoms with
    no ring-closure digit, which neither RDKit nor the rules accept (a skipped run also cannot
    shift where the scan resumes in another run). Runs of capitals only (proteins) are scanned
    only if they hold ten one-letter element symbols in a row, the only way they can match.
    """
    if "[" in text and _OTHER_IN_BRACKET_RE.search(text):
        return list(SMILES_RE.finditer(text))
    found: list[re.Match[str]] = []
    for run in _RUN_RE.finditer(text):
        chars = run.group()
        if chars.isalpha():
            if chars.islower():
                continue
            if chars.isupper() and not _TEN_CAPITAL_ATOMS_RE.search(chars):
                continue  # capitals only: the only units are one-letter elements
        found.extend(SMILES_RE.finditer(text, run.start(), run.end()))
    return found


def _is_ascii_letter(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z")


def _split_proteins(text: str, out: list[Event]) -> None:
    """Append `text` with every protein run wrapped in the FASTA markers."""
    if len(text) < MIN_PROTEIN_LENGTH:
        out.append((TEXT, text))
        return
    pos = 0
    for match in PROTEIN_RE.finditer(text):
        start, end = match.span()
        if start > pos:
            out.append((TEXT, text[pos:start]))
        out.append((OPEN, FASTA_AUTO_OPEN))
        out.append((TEXT, match.group()))
        out.append((CLOSE, FASTA_AUTO_CLOSE))
        pos = end
    if pos < len(text):
        out.append((TEXT, text[pos:]))


def split_auto(text: str, accept: Callable[[str], bool], out: list[Event]) -> None:
    """Append the events for untagged `text`: SMILES candidates first, then protein runs."""
    if len(text) < MIN_SMILES_UNITS:
        out.append((TEXT, text))
        return
    pos = 0
    size = len(text)
    for match in smiles_matches(text):
        start, end = match.span()
        if start and _is_ascii_letter(text[start - 1]):
            continue
        if end < size and _is_ascii_letter(text[end]):
            continue
        candidate = match.group()
        if not accept(candidate):
            continue
        if start > pos:
            _split_proteins(text[pos:start], out)
        out.append((OPEN, SMILES_AUTO_OPEN))
        _split_proteins(candidate, out)
        out.append((CLOSE, SMILES_AUTO_CLOSE))
        pos = end
    if pos < size:
        _split_proteins(text[pos:], out)
