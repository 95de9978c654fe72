"""Synthetic Intern-S1 outputs: ~half reasoning, then `</think>`, an answer and one large call.

Seeded, so every run (and every engine pair) streams the same text; the call's arguments are
deep, multilingual JSON, as a real structured tool call is.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from _parsers_tokenizer import encode_ids, token_deltas

from interns1_plugin import formats

ACTION = "action"
TOOL_CALL = "tool_call"
TOOL_NAME = "submit_analysis"

_WORDS = (
    "the molecule binds protein energy barrier transition state solvent we compute estimate "
    "because therefore check again assume ligand pocket residue hydrogen bond enthalpy entropy "
    "kinetic rate constant temperature pressure sample spectrum peak shift coupling orbital "
    "reaction yield catalyst substrate concentration equilibrium dataset model predicts error "
    "first second next then so thus however also note that this value seems plausible"
).split()
_UNICODE = ("ΔG", "µm", "°C", "→", "≈", "±", "Å", "分子", "蛋白质", "α-helix", "β-sheet", "½", "√2")
_SMILES = ("CC(=O)Oc1ccccc1C(=O)O", "C1=CC=C(C=C1)O", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C", "O=C=O")


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 18))]
    if rng.random() < 0.5:
        words.insert(rng.randrange(len(words)), rng.choice(_UNICODE))
    if rng.random() < 0.3:
        words.insert(rng.randrange(len(words)), f"{rng.uniform(-50, 400):.2f}")
    if rng.random() < 0.1:
        # A bare "<" makes tag-scanning parsers hold text back, as real reasoning does.
        words.insert(rng.randrange(len(words)), f"k1 < k{rng.randint(2, 9)}")
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice((".", ".", ".", "?", ":"))


def _paragraph(rng: random.Random) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(2, 5)))


def _section(rng: random.Random, index: int) -> dict[str, Any]:
    # Mostly short strings, now and then a long one (a parser must not choke on either).
    sentences = rng.randint(8, 12) if rng.random() < 0.15 else rng.randint(1, 3)
    body = " ".join(_sentence(rng) for _ in range(sentences))
    body += f' Quoted: "{rng.choice(_WORDS)}"\nnext line\t{rng.choice(_UNICODE)} \\ done 🧪'
    return {
        "id": index,
        "heading": f"Section {index}: {rng.choice(_WORDS)} {rng.choice(_UNICODE)}",
        "body": body,
        "values": [round(rng.uniform(-1e3, 1e3), 4) for _ in range(rng.randint(2, 4))],
        "smiles": rng.choice(_SMILES),
        "meta": {
            "confidence": round(rng.random(), 3),
            "verified": rng.random() < 0.5,
            "refs": [f"doi:10.{rng.randint(1000, 9999)}/{rng.randint(10**5, 10**6)}"],
            "note": None,
            "nested": {"depth": 2, "items": [{"k": rng.choice(_WORDS), "v": rng.randint(0, 99)}]},
        },
    }


@dataclass(frozen=True)
class Sample:
    """One synthetic response: its text, its token stream and what a parser must extract."""

    fmt: str
    target: int
    text: str
    token_ids: list[int]
    deltas: list[str]
    reasoning: str
    answer: str
    arguments: dict[str, Any]

    @property
    def tokens(self) -> int:
        return len(self.token_ids)


def _count(tokenizer: Any, text: str) -> int:
    return len(encode_ids(tokenizer, text))


def _compose(fmt: str, reasoning: str, answer: str, arguments: dict[str, Any]) -> str:
    """The model's output after a prompt ending in `<think>`: no opening tag."""
    if fmt == ACTION:
        call = json.dumps({"name": TOOL_NAME, "parameters": arguments}, ensure_ascii=False)
        block = f"{formats.ACTION_START}{formats.PLUGIN}\n{call}\n{formats.ACTION_END}"
    else:
        call = json.dumps({"name": TOOL_NAME, "arguments": arguments}, ensure_ascii=False)
        block = f"{formats.TOOL_CALL_START}\n{call}\n{formats.TOOL_CALL_END}"
    return f"\n{reasoning}\n{formats.THINK_END}\n\n{answer}\n{block}"


def make_sample(tokenizer: Any, fmt: str, target: int, seed: int = 0) -> Sample:
    """~`target` tokens: half reasoning, then `</think>`, a short answer and one large call."""
    rng = random.Random(f"{seed}-{target}")
    half = target // 2
    # Each loop stops where the next piece would overshoot its budget by more than half itself.
    paragraphs: list[str] = []
    used = 0
    while True:
        paragraph = _paragraph(rng)
        size = _count(tokenizer, paragraph) + 1
        if paragraphs and used + size / 2 > half:
            break
        paragraphs.append(paragraph)
        used += size
    reasoning = "\n\n".join(paragraphs)
    answer = "I will submit the full analysis with the tool now."
    sections: list[dict[str, Any]] = []
    budget = target - used - 60  # the answer, the markers and the call's envelope
    used = 0
    while True:
        section = _section(rng, len(sections))
        size = _count(tokenizer, json.dumps(section, ensure_ascii=False)) + 1
        if sections and used + size / 2 > budget:
            break
        sections.append(section)
        used += size
    arguments = {
        "query": f"Summarise the {rng.choice(_WORDS)} study — 结果 and ΔG values",
        "report": {"title": "Binding analysis ✓", "sections": sections},
        "options": {"units": "kJ/mol", "precision": 4, "locale": "zh-CN", "dry_run": False},
    }
    text = _compose(fmt, reasoning, answer, arguments)
    ids = encode_ids(tokenizer, text)
    deltas = token_deltas(tokenizer, ids)
    if "".join(deltas) != text:
        raise RuntimeError("incremental detokenisation does not reproduce the sample text")
    return Sample(fmt, target, text, ids, deltas, reasoning, answer, arguments)


def training_corpus() -> list[str]:
    """Text in the samples' style (a different seed) for the tokenizer to learn merges from."""
    rng = random.Random("corpus")
    lines = [_paragraph(rng) for _ in range(600)]
    lines += [json.dumps(_section(rng, i), ensure_ascii=False) for i in range(300)]
    return lines
