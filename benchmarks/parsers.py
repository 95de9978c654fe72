"""Streaming cost of the `intern-s1` parsers against the engines' built-in parser pairs.

Why: vLLM's legacy parsers re-read the whole output on every token, so a long reasoning trace
followed by one large tool call costs quadratic time per response. This script streams
synthetic Intern-S1 outputs (~half reasoning, ~half one big tool call) token by token through
each engine's real composition path and reports µs per token, the growth exponent, the ratio of
ours to each other pair, and whether each pair extracted the call correctly.

    python benchmarks/parsers.py [--sizes 1000 4000 16000] [--out benchmarks/results/parsers.png]
                                 [--quick]

Writes a Markdown table to stdout, a log-log PNG to --out and the numbers as JSON beside it.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402  (the script's own directory, put on the path just above)
    Deadline,
    Stopwatch,
    growth_exponent,
    loglog_at,
    machine_info,
    markdown_table,
    median,
    save_figure,
    write_json,
)

from interns1_plugin import formats  # noqa: E402

DEFAULT_SIZES = (1000, 4000, 16000)
QUICK_SIZES = (600, 1500)
#: Where ratios are compared; measured as an extra size unless --quick.
RATIO_AT = 5000
DEFAULT_OUT = Path("benchmarks/results/parsers.png")
ACTION = "action"
TOOL_CALL = "tool_call"
TOOL_NAME = "submit_analysis"
CHAT_TEMPLATE_KWARGS: dict[str, Any] = {"enable_thinking": True}
OURS = "ours"

# Targets the report is printed against.
TARGET_RATIO_VS_RECIPE = 0.05
TARGET_EXPONENT = 1.1


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------


def build_tokenizer(corpus: Sequence[str], vocab_size: int = 3000) -> Any:
    """A tiny byte-level BPE with the Intern-S1 markers as added tokens.

    Trained on the synthetic text itself so tokens are multi-character as in a real vocabulary
    (a character-level stream would flatter parsers whose cost is per call, not per byte). The
    vLLM parsers look their markers up in the vocabulary, so those must be single tokens.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(corpus, trainer)
    plain = (formats.THINK_START, formats.THINK_END, formats.TOOL_CALL_START, formats.TOOL_CALL_END)
    special = (
        formats.ACTION_START,
        formats.ACTION_END,
        formats.PLUGIN,
        formats.IM_START,
        formats.IM_END,
    )
    backend.add_tokens([AddedToken(t, special=False, normalized=False) for t in plain])
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        clean_up_tokenization_spaces=False,
        eos_token=formats.IM_END,
    )


def token_deltas(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    """The text each generated token adds, as an engine's incremental detokenizer hands it over.

    A token ending inside a multi-byte character adds "" until the character completes. Decoding
    only the short window since the last complete character keeps this linear.
    """
    backend = tokenizer.backend_tokenizer
    deltas: list[str] = []
    start = 0
    for end in range(1, len(ids) + 1):
        text = backend.decode(list(ids[start:end]), skip_special_tokens=False)
        if text.endswith("\ufffd") and end - start < 4:
            deltas.append("")
            continue
        deltas.append(text)
        start = end
    return deltas


# --------------------------------------------------------------------------------------------
# Synthetic Intern-S1 outputs
# --------------------------------------------------------------------------------------------

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
    return len(tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).ids)


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
    ids = tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).ids
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


# --------------------------------------------------------------------------------------------
# What a pair extracted, and whether it is right
# --------------------------------------------------------------------------------------------


@dataclass
class Extracted:
    """A stream's deltas joined per channel, the way a client assembles them."""

    reasoning_parts: list[str] = field(default_factory=list)
    content_parts: list[str] = field(default_factory=list)
    calls: dict[int, list[str]] = field(default_factory=dict)  # index -> [name, arguments]

    @property
    def reasoning(self) -> str:
        return "".join(self.reasoning_parts)

    @property
    def content(self) -> str:
        return "".join(self.content_parts)

    def add(self, reasoning: str | None, content: str | None, tool_calls: Any) -> None:
        if reasoning:
            self.reasoning_parts.append(reasoning)
        if content:
            self.content_parts.append(content)
        for call in tool_calls or ():
            function = call.function
            if isinstance(function, dict):
                name, arguments = function.get("name"), function.get("arguments")
            elif function is not None:
                name, arguments = function.name, function.arguments
            else:
                name = arguments = None
            slot = self.calls.setdefault(call.index, ["", ""])
            if name and not slot[0]:
                slot[0] = name
            slot[1] += arguments or ""


def check(sample: Sample, got: Extracted) -> str:
    """'ok', or 'wrong: <first problem>' (the call first: that is what a client acts on)."""
    calls = [got.calls[i] for i in sorted(got.calls)]
    if len(calls) != 1:
        return f"wrong: {len(calls)} tool calls"
    name, arguments = calls[0]
    if name != TOOL_NAME:
        return f"wrong: tool name {name!r}"
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return f"wrong: arguments not JSON ({len(arguments)} chars)"
    if parsed != sample.arguments:
        return "wrong: arguments differ"
    if got.reasoning.strip() != sample.reasoning.strip():
        return "wrong: reasoning differs"
    content = got.content.strip()
    if content != sample.answer.strip():
        return f"wrong: content {content[:40]!r}"
    return "ok"


# --------------------------------------------------------------------------------------------
# Parser pairs, each driven through its engine's own streaming path
# --------------------------------------------------------------------------------------------


class Timing(NamedTuple):
    """Seconds one streaming run took: this thread's CPU time and wall-clock time."""

    cpu: float
    wall: float


#: One timed streaming run and what it extracted; None when the deadline passed first.
RunResult = tuple[Timing, Extracted] | None


@dataclass
class Pair:
    key: str
    label: str
    engine: str
    fmt: str
    run: Callable[[Sample, Deadline], RunResult]


def _tool_schema() -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": TOOL_NAME,
            "description": "Submit a structured analysis report.",
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string"},
                    "report": {"type": "object"},
                    "options": {"type": "object"},
                },
                "required": ["query", "report"],
            },
        },
    }


def _messages() -> list[dict[str, str]]:
    return [{"role": "user", "content": "Analyse the binding data and submit a report."}]


def prompt_ids(tokenizer: Any) -> list[int]:
    """A rendered prompt ending in `<think>`, as the Intern-S1 template leaves it (thinking on)."""
    prompt = (
        f"{formats.IM_START}user\nAnalyse the binding data and submit a report.{formats.IM_END}\n"
        f"{formats.IM_START}assistant\n{formats.THINK_START}"
    )
    return tokenizer.backend_tokenizer.encode(prompt, add_special_tokens=False).ids


def vllm_pair(
    key: str, label: str, reasoning: str, tool: str, fmt: str, tokenizer: Any, prompt: list[int]
) -> Pair:
    """A reasoning + tool parser pair composed as vLLM's chat server composes it."""
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
    from vllm.parser.parser_manager import ParserManager

    parser_cls = ParserManager.get_parser(
        tool_parser_name=tool,
        reasoning_parser_name=reasoning,
        enable_auto_tools=True,
        tokenizer=tokenizer,
    )
    if parser_cls is None:
        raise RuntimeError(f"vLLM composed no parser for {reasoning} + {tool}")

    def run(sample: Sample, deadline: Deadline) -> RunResult:
        request = ChatCompletionRequest(
            model="intern-s1",
            messages=_messages(),
            tools=[_tool_schema()],
            tool_choice="auto",
            stream=True,
            chat_template_kwargs=dict(CHAT_TEMPLATE_KWARGS),
        )
        parser = parser_cls(
            tokenizer, request.tools, chat_template_kwargs=dict(CHAT_TEMPLATE_KWARGS)
        )
        request = parser.adjust_request(request)
        parser.set_prompt_token_ids(prompt)
        parse_delta = parser.parse_delta
        deltas = sample.deltas
        id_lists = [[token_id] for token_id in sample.token_ids]
        last = len(deltas) - 1
        out: list[Any] = []
        with Stopwatch() as watch:
            for i, text in enumerate(deltas):
                out.append(parse_delta(text, id_lists[i], request, prompt, finished=i == last))
                if not i & 63 and deadline.passed():
                    return None
        got = Extracted()
        for message in out:
            if message is not None:
                got.add(message.reasoning, message.content, message.tool_calls)
        return Timing(watch.cpu, watch.wall), got

    return Pair(key, label, "vLLM", fmt, run)


def lmdeploy_pair(key: str, label: str, response_parser_cls: type, fmt: str) -> Pair:
    """A configured LMDeploy ResponseParser class, driven as its api_server's chat runner does."""
    from lmdeploy.serve.openai.protocol import ChatCompletionRequest

    def run(sample: Sample, deadline: Deadline) -> RunResult:
        request = ChatCompletionRequest(
            model="intern-s1",
            messages=_messages(),
            tools=[_tool_schema()],
            tool_choice="auto",
            stream=True,
            chat_template_kwargs=dict(CHAT_TEMPLATE_KWARGS),
        )
        parser = response_parser_cls(request)
        stream_chunk = parser.stream_chunk
        deltas = sample.deltas
        id_lists = [[token_id] for token_id in sample.token_ids]
        last = len(deltas) - 1
        out: list[Any] = []
        with Stopwatch() as watch:
            for i, text in enumerate(deltas):
                out.append(stream_chunk(text, id_lists[i], final=i == last))
                if not i & 63 and deadline.passed():
                    return None
        got = Extracted()
        for chunk in out:
            for message, _ in chunk:
                got.add(message.reasoning_content, message.content, message.tool_calls)
        return Timing(watch.cpu, watch.wall), got

    return Pair(key, label, "LMDeploy", fmt, run)


def lmdeploy_builtin_parser(tokenizer: Any) -> type:
    """LMDeploy 0.18's own parsers for `--reasoning-parser intern-s1 --tool-call-parser intern-s1`.

    Configured on a subclass so the registry's shared class is left untouched. If something
    (our adapter) has re-registered those names, LMDeploy's own classes are used directly, so this
    row always measures the built-ins.
    """
    from lmdeploy.serve.parsers import ResponseParserManager
    from lmdeploy.serve.parsers.reasoning_parser.reasoning_parser import ReasoningParser
    from lmdeploy.serve.parsers.response_parser import BaseResponseParser
    from lmdeploy.serve.parsers.tool_parser.internlm2_tool_parser import Internlm2ToolParser

    base = ResponseParserManager.get("default")
    if not _is_lmdeploy_own(base):
        base = BaseResponseParser

    class BuiltinResponseParser(base):  # type: ignore[misc, valid-type]
        pass

    BuiltinResponseParser.set_parsers(
        reasoning_parser_name=formats.PARSER_NAME,
        tool_parser_name=formats.PARSER_NAME,
        tokenizer=tokenizer,
    )
    if not _is_lmdeploy_own(BuiltinResponseParser.reasoning_parser_cls):
        BuiltinResponseParser.reasoning_parser_cls = ReasoningParser
    if not _is_lmdeploy_own(BuiltinResponseParser.tool_parser_cls):
        BuiltinResponseParser.tool_parser_cls = Internlm2ToolParser
    return BuiltinResponseParser


def _is_lmdeploy_own(cls: Any) -> bool:
    return cls is not None and cls.__module__.startswith("lmdeploy.")


def ours_via_lmdeploy_parser(tokenizer: Any) -> type | None:
    """The plugin's LMDeploy adapter configured as `api_server` would; None if there is none.

    The adapter's `register()` (run by its import hook when the wheel's .pth is installed, called
    here otherwise) puts our parsers into LMDeploy's registries under `intern-s1`. The names are
    then resolved exactly as `lmdeploy serve api_server --reasoning-parser intern-s1
    --tool-call-parser intern-s1` resolves them; the row is measured only if that reaches our code.
    """
    register = _adapter_register()
    if register is None:
        return None
    register()
    from lmdeploy.serve.parsers import ResponseParserManager

    base = ResponseParserManager.get("default")

    class OursResponseParser(base):  # type: ignore[misc, valid-type]
        pass

    OursResponseParser.set_parsers(
        reasoning_parser_name=formats.PARSER_NAME,
        tool_parser_name=formats.PARSER_NAME,
        tokenizer=tokenizer,
    )
    resolved = (base, OursResponseParser.reasoning_parser_cls, OursResponseParser.tool_parser_cls)
    if not any(c is not None and c.__module__.startswith("interns1_plugin") for c in resolved):
        return None
    return OursResponseParser


def _adapter_register() -> Callable[[], None] | None:
    """`register` of `interns1_plugin.lmdeploy` (package or its `register` module), if present."""
    for name in ("interns1_plugin.lmdeploy.register", "interns1_plugin.lmdeploy"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        register = getattr(module, "register", None)
        if callable(register):
            return register
    return None


#: vLLM rows: key, label, reasoning parser, tool parser, output format.
VLLM_PAIRS: tuple[tuple[str, str, str, str, str], ...] = (
    (OURS, "intern-s1 + intern-s1 (ours)", formats.PARSER_NAME, formats.PARSER_NAME, ACTION),
    (
        "ours_tool_call",
        "intern-s1 + intern-s1 (ours, <tool_call>)",
        formats.PARSER_NAME,
        formats.PARSER_NAME,
        TOOL_CALL,
    ),
    # The pair vLLM's Intern-S1 recipe serves with.
    (
        "deepseek_r1_internlm",
        "deepseek_r1 + internlm (vLLM recipe)",
        "deepseek_r1",
        "internlm",
        ACTION,
    ),
    # hermes reads `<tool_call>` JSON: the fair comparison for Pro's simpler format.
    ("qwen3_hermes", "qwen3 + hermes", "qwen3", "hermes", TOOL_CALL),
)


def build_pairs(tokenizer: Any, prompt: list[int]) -> tuple[list[Pair], dict[str, str]]:
    """Every pair that can be set up here; the others come back as key -> why not."""
    pairs: list[Pair] = []
    missing: dict[str, str] = {}

    def attempt(key: str, make: Callable[[], Pair | None]) -> None:
        try:
            pair = make()
        except Exception as exc:  # a missing engine must not stop the other rows
            missing[key] = f"unavailable: {type(exc).__name__}: {exc}"[:160]
            return
        if pair is None:
            missing[key] = "unavailable: not provided yet"
        else:
            pairs.append(pair)

    try:
        from vllm.plugins import load_general_plugins

        load_general_plugins()  # registers our parsers under `intern-s1`
    except Exception as exc:
        missing["vllm"] = f"unavailable: {type(exc).__name__}: {exc}"[:160]
    else:
        for row in VLLM_PAIRS:
            attempt(row[0], functools.partial(vllm_pair, *row, tokenizer, prompt))

    # The built-ins first: registering our adapter may shadow their names.
    attempt(
        "lmdeploy_builtin",
        lambda: lmdeploy_pair(
            "lmdeploy_builtin",
            "default + intern-s1 (LMDeploy 0.18 built-in)",
            lmdeploy_builtin_parser(tokenizer),
            ACTION,
        ),
    )

    def ours_lmdeploy() -> Pair | None:
        cls = ours_via_lmdeploy_parser(tokenizer)
        label = "intern-s1 + intern-s1 (ours via LMDeploy)"
        return None if cls is None else lmdeploy_pair("ours_lmdeploy", label, cls, ACTION)

    attempt("ours_lmdeploy", ours_lmdeploy)
    return pairs, missing


# --------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------


CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.thread_time, "wall": time.perf_counter}


@dataclass
class Point:
    target: int
    tokens: int
    clock: str
    status: str = "ok"  # "ok" | "skipped (too slow)"
    runs: list[Timing] = field(default_factory=list)
    check: str = ""
    #: When skipped: what µs/token is known to exceed (a run hit the limit), else None.
    lower_bound_us: float | None = None

    @property
    def seconds(self) -> float | None:
        """Median over the repeats, on the clock the report uses."""
        return median([getattr(run, self.clock) for run in self.runs]) if self.runs else None

    @property
    def us_per_token(self) -> float | None:
        s = self.seconds
        return None if s is None else s / self.tokens * 1e6


@dataclass
class Limits:
    """How long one run may take, how much repeating a size or one pair may cost, how many repeats.

    A quadratic parser at the largest size can take minutes; these keep the whole run to a few.
    `run_s` is on the reported clock, so a run cut short proves a lower bound on that clock.
    """

    run_s: float
    size_s: float
    pair_s: float
    repeats: int
    clock: str


def measure(pair: Pair, samples: dict[int, Sample], limits: Limits) -> list[Point]:
    """Ascending sizes; a size that hits the run limit ends the pair (larger ones are slower).

    One untimed warm-up run first, so lazy imports and first-call set-up are not billed to the
    smallest size.
    """
    clock = CLOCKS[limits.clock]
    pair_deadline = Deadline(limits.pair_s)
    try:
        pair.run(samples[min(samples)], Deadline(limits.run_s, clock))
    except Exception:  # the timed run below fails the same way and reports it
        pass
    points: list[Point] = []
    too_slow = False
    for target in sorted(samples):
        sample = samples[target]
        point = Point(target, sample.tokens, limits.clock)
        points.append(point)
        if too_slow or pair_deadline.passed():
            point.status = "skipped (too slow)"
            if too_slow:
                point.lower_bound_us = limits.run_s / sample.tokens * 1e6
            continue
        spent = 0.0
        while len(point.runs) < limits.repeats:
            # The first run always gets the full run limit, so a bound means "slower than that".
            budget = limits.run_s if not point.runs else min(limits.run_s, pair_deadline.left())
            deadline = Deadline(budget, clock)
            try:
                result = pair.run(sample, deadline)
            except Exception as exc:  # report, never abort the other pairs
                point.check = f"error: {type(exc).__name__}: {exc}"[:160]
                break
            if result is None:
                if not point.runs:
                    point.status = "skipped (too slow)"
                    point.lower_bound_us = deadline.seconds / sample.tokens * 1e6
                    too_slow = True
                break
            timing, got = result
            if not point.runs:
                point.check = check(sample, got)
            point.runs.append(timing)
            spent += timing.wall
            if spent + timing.wall > limits.size_s or pair_deadline.passed():
                break
    return points


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def summarise(
    pairs: list[Pair], results: dict[str, list[Point]], sizes: Sequence[int], ratio_at: int
) -> dict[str, dict[str, Any]]:
    """Exponent, µs/token at `ratio_at` and ours ÷ pair there, per pair."""
    rows: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        points = results[pair.key]
        timed = [p for p in points if p.seconds is not None and p.target in sizes]
        at = _at_target(points, ratio_at)
        checks = {p.check for p in points if p.check}
        rows[pair.key] = {
            "exponent": growth_exponent([(float(p.tokens), p.seconds) for p in timed]),
            "us_per_token_at_ratio": at,
            "check": next((c for c in sorted(checks) if c != "ok"), "ok" if checks else "n/a"),
        }
    ours = rows.get(OURS, {}).get("us_per_token_at_ratio")
    for pair in pairs:
        row = rows[pair.key]
        theirs = row["us_per_token_at_ratio"]
        row["ratio_ours_over_pair"] = ours / theirs if ours and theirs else None
        bound = _bound_at_target(results[pair.key], ratio_at)
        # A pair too slow to finish still gives an upper bound on ours ÷ pair.
        row["ratio_upper_bound"] = ours / bound if ours and bound and theirs is None else None
    return rows


def _at_target(points: Sequence[Point], target: int) -> float | None:
    exact = [p.us_per_token for p in points if p.target == target and p.us_per_token]
    if exact:
        return exact[0]
    curve = [(float(p.target), p.us_per_token) for p in points if p.us_per_token is not None]
    return loglog_at(curve, float(target))


def _bound_at_target(points: Sequence[Point], target: int) -> float | None:
    return next((p.lower_bound_us for p in points if p.target == target and p.lower_bound_us), None)


def _fmt_us(point: Point | None) -> str:
    if point is None:
        return "-"
    if point.us_per_token is not None:
        return f"{point.us_per_token:.1f}" + ("" if point.check == "ok" else " †")
    if point.lower_bound_us is not None:
        return f"skipped (too slow, >{point.lower_bound_us:.0f})"
    return point.check or point.status


def _fmt_ratio(row: dict[str, Any]) -> str:
    if row["ratio_ours_over_pair"] is not None:
        return f"{row['ratio_ours_over_pair']:.3f}x"
    if row["ratio_upper_bound"] is not None:
        return f"<{row['ratio_upper_bound']:.3f}x"
    return "n/a"


def render_table(
    pairs: list[Pair],
    results: dict[str, list[Point]],
    summary: dict[str, dict[str, Any]],
    missing: dict[str, str],
    targets: Sequence[int],
    ratio_at: int,
) -> str:
    header = ["pair", "engine", "format", *(f"µs/tok ~{_k(t)}" for t in targets)]
    header += ["exponent", f"ours ÷ pair @~{_k(ratio_at)}", "check"]
    rows: list[list[str]] = []
    for pair in pairs:
        by_target = {p.target: p for p in results[pair.key]}
        row = summary[pair.key]
        exponent = row["exponent"]
        rows.append(
            [
                pair.label,
                pair.engine,
                pair.fmt,
                *(_fmt_us(by_target.get(t)) for t in targets),
                "n/a" if exponent is None else f"{exponent:.2f}",
                "1 (reference)" if pair.key == OURS else _fmt_ratio(row),
                row["check"],
            ]
        )
    for key, why in missing.items():
        rows.append([key, "-", "-", *("-" for _ in targets), "-", "-", why])
    return markdown_table(header, rows)


def _k(n: int) -> str:
    return f"{n / 1000:g}k" if n >= 1000 else str(n)


def target_lines(
    summary: dict[str, dict[str, Any]], ratio_at: int
) -> list[tuple[str, bool | None]]:
    """The three targets, each with PASS / FAIL / None (could not be measured)."""
    ours = summary.get(OURS, {})
    recipe = summary.get("deepseek_r1_internlm", {})
    hermes = summary.get("qwen3_hermes", {})
    out: list[tuple[str, bool | None]] = []

    ratio = recipe.get("ratio_ours_over_pair")
    bound = recipe.get("ratio_upper_bound")
    if ratio is not None:
        out.append(
            (
                f"ours ≤ {TARGET_RATIO_VS_RECIPE}x deepseek_r1+internlm µs/token at ~{_k(ratio_at)}"
                f" tokens: {ratio:.4f}x",
                ratio <= TARGET_RATIO_VS_RECIPE,
            )
        )
    elif bound is not None:
        out.append(
            (
                f"ours ≤ {TARGET_RATIO_VS_RECIPE}x deepseek_r1+internlm µs/token at ~{_k(ratio_at)}"
                f" tokens: <{bound:.4f}x (recipe pair hit the time limit)",
                True if bound <= TARGET_RATIO_VS_RECIPE else None,
            )
        )
    else:
        out.append((f"ours vs deepseek_r1+internlm at ~{_k(ratio_at)}: not measured", None))

    ratio = hermes.get("ratio_ours_over_pair")
    out.append(
        (
            f"ours ≤ qwen3+hermes µs/token at ~{_k(ratio_at)} tokens: "
            + ("not measured" if ratio is None else f"{ratio:.3f}x"),
            None if ratio is None else ratio <= 1.0,
        )
    )

    exponent = ours.get("exponent")
    out.append(
        (
            f"ours growth exponent ≤ {TARGET_EXPONENT}: "
            + ("not measured" if exponent is None else f"{exponent:.3f}"),
            None if exponent is None else exponent <= TARGET_EXPONENT,
        )
    )
    return out


def plot(
    pairs: list[Pair], results: dict[str, list[Point]], out: Path, title: str, clock: str
) -> None:
    """µs per token against tokens, log-log: a linear parser is a flat line, quadratic a slope."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for pair in pairs:
        points = [p for p in results[pair.key] if p.us_per_token is not None]
        if points:
            style = "-" if pair.key.startswith("ours") else "--"
            ax.plot(
                [p.tokens for p in points],
                [p.us_per_token for p in points],
                style,
                marker="o",
                label=pair.label,
            )
        skipped = [p for p in results[pair.key] if p.lower_bound_us is not None]
        if skipped:
            ax.scatter(
                [p.tokens for p in skipped],
                [p.lower_bound_us for p in skipped],
                marker="^",
                s=60,
                color=ax.lines[-1].get_color() if points else None,
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("output tokens (streamed one per step)")
    ax.set_ylabel(f"{'CPU' if clock == 'cpu' else 'wall-clock'} µs per token")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.text(0.01, 0.01, "▲ = lower bound (pair hit the time limit)", fontsize=7, alpha=0.7)
    save_figure(fig, out)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", help="target output lengths in tokens")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG path; JSON goes beside")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (seconds)")
    parser.add_argument("--repeats", type=int, help="timed runs per size (median is reported)")
    parser.add_argument("--run-limit", type=float, help="seconds one streaming run may take")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="cpu",
        help="what µs/token is measured on: this thread's CPU time (default; stable on a busy "
        "machine) or wall-clock time",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns what it wrote to the JSON file."""
    args = parse_args(argv)
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    sizes = sorted(set(args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)))
    ratio_at = sizes[-1] if args.quick else RATIO_AT
    targets = sorted(set(sizes) | {ratio_at})
    limits = Limits(
        run_s=args.run_limit or (5.0 if args.quick else 10.0),
        size_s=2.0 if args.quick else 8.0,
        pair_s=10.0 if args.quick else 40.0,
        repeats=args.repeats or (1 if args.quick else 5),
        clock=args.clock,
    )

    started = time.perf_counter()
    tokenizer = build_tokenizer(training_corpus())
    prompt = prompt_ids(tokenizer)
    samples = {
        fmt: {t: make_sample(tokenizer, fmt, t) for t in targets} for fmt in (ACTION, TOOL_CALL)
    }
    pairs, missing = build_pairs(tokenizer, prompt)
    results: dict[str, list[Point]] = {}
    for pair in pairs:
        results[pair.key] = measure(pair, samples[pair.fmt], limits)
        print(f"measured {pair.label} ({time.perf_counter() - started:.0f}s)", file=sys.stderr)

    summary = summarise(pairs, results, sizes, ratio_at)
    table = render_table(pairs, results, summary, missing, targets, ratio_at)
    goals = target_lines(summary, ratio_at)
    notes = [
        f"µs/tok: {'CPU' if limits.clock == 'cpu' else 'wall-clock'} time, median of up to "
        f"{limits.repeats} runs ÷ output tokens, each token streamed as one delta (parser "
        "construction and request adjustment are outside the timed region).",
        f"exponent: slope of log(time) vs log(tokens) between ~{_k(sizes[0])} and the largest "
        "size the pair finished.",
        "† = the pair extracted something other than the expected reasoning/content/call.",
        "check: the tool call (name and arguments as JSON), then the reasoning and content, "
        "compared after stripping whitespace.",
    ]
    print(table)
    print()
    for text, ok in goals:
        print(f"- {'PASS' if ok else 'FAIL' if ok is False else 'n/a '} {text}")
    print()
    for note in notes:
        print(f"  {note}")

    out: Path = args.out
    title = f"intern-s1 parser streaming cost (up to ~{_k(sizes[-1])} tokens)"
    plot(pairs, results, out, title, limits.clock)
    report = {
        "machine": machine_info(),
        "sizes": sizes,
        "ratio_at": ratio_at,
        "limits": vars(limits),
        "clock": limits.clock,
        "tokens": {fmt: {str(t): s.tokens for t, s in by.items()} for fmt, by in samples.items()},
        "pairs": [
            {
                "key": pair.key,
                "label": pair.label,
                "engine": pair.engine,
                "format": pair.fmt,
                "points": [
                    {
                        "target": p.target,
                        "tokens": p.tokens,
                        "status": p.status,
                        "us_per_token": p.us_per_token,
                        "lower_bound_us_per_token": p.lower_bound_us,
                        "runs_cpu_s": [run.cpu for run in p.runs],
                        "runs_wall_s": [run.wall for run in p.runs],
                        "check": p.check,
                    }
                    for p in results[pair.key]
                ],
                "exponent": summary[pair.key]["exponent"],
                "us_per_token_at_ratio": summary[pair.key]["us_per_token_at_ratio"],
                "ratio_ours_over_pair": summary[pair.key]["ratio_ours_over_pair"],
                "ratio_upper_bound": summary[pair.key]["ratio_upper_bound"],
                "check": summary[pair.key]["check"],
            }
            for pair in pairs
        ],
        "unavailable": missing,
        "targets": [{"text": text, "pass": ok} for text, ok in goals],
        "table": table,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    write_json(out.with_suffix(".json"), report)
    print(f"\nwrote {out} and {out.with_suffix('.json')} in {report['wall_s']}s", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
