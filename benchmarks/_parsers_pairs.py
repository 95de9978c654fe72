"""Parser pairs, each driven through its engine's own streaming path, one token per delta.

A pair is a reasoning parser and a tool parser composed as the engine's chat server composes
them; each `run` streams one sample and returns its timing and what it extracted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from _common import Deadline, Stopwatch
from _parsers_extract import Extracted
from _parsers_lmdeploy import lmdeploy_builtin_parser, ours_via_lmdeploy_parser
from _parsers_samples import ACTION, TOOL_CALL, TOOL_NAME, Sample
from _parsers_tokenizer import encode_ids

from interns1_plugin import formats

CHAT_TEMPLATE_KWARGS: dict[str, Any] = {"enable_thinking": True}
OURS = "ours"
USER_PROMPT = "Analyse the binding data and submit a report."


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


def _chat_request(request_cls: type) -> Any:
    """The streaming chat request both engines' parsers are built from: the tool, thinking on."""
    return request_cls(
        model="intern-s1",
        messages=[{"role": "user", "content": USER_PROMPT}],
        tools=[_tool_schema()],
        tool_choice="auto",
        stream=True,
        chat_template_kwargs=dict(CHAT_TEMPLATE_KWARGS),
    )


def prompt_ids(tokenizer: Any) -> list[int]:
    """A rendered prompt ending in `<think>`, as the Intern-S1 template leaves it (thinking on)."""
    prompt = (
        f"{formats.IM_START}user\n{USER_PROMPT}{formats.IM_END}\n"
        f"{formats.IM_START}assistant\n{formats.THINK_START}"
    )
    return encode_ids(tokenizer, prompt)


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
        request = _chat_request(ChatCompletionRequest)
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
        request = _chat_request(ChatCompletionRequest)
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
            missing[key] = _unavailable(exc)
            return
        if pair is None:
            missing[key] = "unavailable: not provided yet"
        else:
            pairs.append(pair)

    try:
        from vllm.plugins import load_general_plugins

        load_general_plugins()  # registers our parsers under `intern-s1`
    except Exception as exc:
        missing["vllm"] = _unavailable(exc)
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


def _unavailable(exc: Exception) -> str:
    return f"unavailable: {type(exc).__name__}: {exc}"[:160]
