"""Fuzzed outputs through vLLM's paths to the `intern-s1` parsers.

Two paths: vLLM's parser composition (`ParserManager.get_parser`, `parse` and `parse_delta`, as
`OpenAIServingChat` calls them) for the bulk, and, for a share of the outputs, the real chat
handler over a scripted engine, up to the JSON the client receives. Invariants and generator:
`interns1_plugin.testing.fuzz_outputs`. `INTERNS1_FUZZ_N` sets the number of outputs,
`INTERNS1_FUZZ_SEED` the base seed; the `stress` tests run a bigger number when selected.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

pytest.importorskip("vllm")

from vllm.entrypoints.openai.chat_completion.protocol import (  # noqa: E402
    ChatCompletionRequest,
    ChatCompletionResponse,
)
from vllm.entrypoints.serve.engine.protocol import ErrorResponse  # noqa: E402
from vllm.parser.parser_manager import ParserManager  # noqa: E402

from interns1_plugin import formats  # noqa: E402
from interns1_plugin.parsers import parse_output  # noqa: E402
from interns1_plugin.testing import fuzz_outputs as fz  # noqa: E402
from interns1_plugin.vllm import register as plugin_register  # noqa: E402

if TYPE_CHECKING:
    from conftest import Served

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.filterwarnings("ignore:max_tokens is deprecated:DeprecationWarning"),
]

#: Default sizes: together with the LMDeploy file, more than 10,000 outputs in well under a
#: minute per engine on two busy cores.
PARSER_N = fz.fuzz_count(6000)
SERVING_N = max(1, PARSER_N // 12)
BASE_SEED = fz.base_seed()

#: Left out of every run here: vLLM drops Unicode-only whitespace content next to calls from
#: whole responses but not from streams (pinned by the last xfail of this file).
VLLM_EXCLUDE = fz.OPEN_DEFECTS | {fz.UNICODE_SPACE}

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def thinking_kwargs(thinking: bool) -> dict[str, Any]:
    return {"enable_thinking": thinking}


class CorePath:
    """The engine-free parser: what every engine path must agree with."""

    name = "core"

    def parse(self, text: str, thinking: bool) -> fz.Split:
        result = parse_output(text, thinking=thinking)
        return fz.Split(result.reasoning or "", result.content, calls_of(result.tool_calls))

    def stream(self, pieces: list[str], thinking: bool) -> fz.Split:
        raise NotImplementedError("only used as a reference for whole outputs")


CORE = CorePath()


def calls_of(calls: Any) -> tuple[tuple[str, str], ...]:
    return tuple((call.name, call.arguments) for call in calls or [])


class ParserPath:
    """vLLM's `DelegatingParser` around our reasoning and tool parsers, one per response."""

    name = "vllm-parser"

    def __init__(self, parser_cls: Any, tokenizer: Any) -> None:
        self.parser_cls = parser_cls
        self.tokenizer = tokenizer
        self.requests = {
            thinking: ChatCompletionRequest(
                model="m",
                messages=[{"role": "user", "content": "hi"}],
                tools=TOOLS,
                chat_template_kwargs=thinking_kwargs(thinking),
            )
            for thinking in (True, False)
        }

    def _parser(self, thinking: bool) -> Any:
        return self.parser_cls(
            self.tokenizer, TOOLS, chat_template_kwargs=thinking_kwargs(thinking)
        )

    def parse(self, text: str, thinking: bool) -> fz.Split:
        request = self.requests[thinking]
        reasoning, content, calls = self._parser(thinking).parse(
            text, request, enable_auto_tools=True
        )
        return fz.Split(reasoning or "", content or "", calls_of(calls))

    def stream(self, pieces: list[str], thinking: bool) -> fz.Split:
        request = self.requests[thinking]
        parser = self._parser(thinking)
        reasoning, content, calls = "", "", {}
        for i, piece in enumerate(pieces):
            delta = parser.parse_delta(
                piece, [], request, prompt_token_ids=None, finished=i == len(pieces) - 1
            )
            if delta is None:
                continue
            reasoning += delta.reasoning or ""
            content += delta.content or ""
            for call in delta.tool_calls:
                assert call.id and call.type == "function", call
                assert call.index not in calls, "a call must arrive whole, once"
                calls[call.index] = (call.function.name, call.function.arguments)
        assert sorted(calls) == list(range(len(calls))), calls
        return fz.Split(reasoning, content, tuple(calls[i] for i in sorted(calls)))


class ServingPath:
    """vLLM's `OpenAIServingChat` over a scripted engine, read back from the client's JSON."""

    name = "vllm-serving"

    def __init__(self, served: Served) -> None:
        self.served = served

    def _request(self, thinking: bool, *, stream: bool) -> ChatCompletionRequest:
        return ChatCompletionRequest(
            model=self.served.model_name,
            messages=[{"role": "user", "content": "hi"}],
            tools=TOOLS,
            stream=stream,
            chat_template_kwargs=thinking_kwargs(thinking),
        )

    def parse(self, text: str, thinking: bool) -> fz.Split:
        self.served.engine.script = [text]
        request = self._request(thinking, stream=False)
        response = asyncio.run(self.served.serving.create_chat_completion(request))
        assert isinstance(response, ChatCompletionResponse), response
        # What goes on the wire, read back as a client does.
        message = json.loads(response.model_dump_json())["choices"][0]["message"]
        calls = tuple(
            (c["function"]["name"], c["function"]["arguments"])
            for c in message.get("tool_calls") or []
        )
        return fz.Split(message.get("reasoning") or "", message["content"] or "", calls)

    def stream(self, pieces: list[str], thinking: bool) -> fz.Split:
        self.served.engine.script = pieces
        request = self._request(thinking, stream=True)

        async def collect() -> list[str]:
            generator = await self.served.serving.create_chat_completion(request)
            assert not isinstance(generator, ChatCompletionResponse | ErrorResponse), generator
            return [event async for event in generator]

        events = asyncio.run(collect())
        assert events[-1] == "data: [DONE]\n\n", events[-1]
        reasoning, content = "", ""
        calls: dict[int, list[str]] = {}
        for event in events[:-1]:
            chunk = json.loads(event.removeprefix("data: "))
            assert "error" not in chunk, chunk
            for choice in chunk["choices"]:
                delta = choice["delta"]
                reasoning += delta.get("reasoning") or ""
                content += delta.get("content") or ""
                for call in delta.get("tool_calls") or []:
                    function = call.get("function") or {}
                    parts = calls.setdefault(call["index"], ["", ""])
                    parts[0] += function.get("name") or ""
                    parts[1] += function.get("arguments") or ""
        assert sorted(calls) == list(range(len(calls))), calls
        return fz.Split(reasoning, content, tuple(tuple(calls[i]) for i in sorted(calls)))


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    """Byte-level BPE with the think tags added, as in the real Intern-S1 tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend)
    tok.add_special_tokens(
        {"additional_special_tokens": [formats.ACTION_START, formats.ACTION_END, formats.PLUGIN]}
    )
    tok.add_tokens([formats.THINK_START, formats.THINK_END])
    return tok


@pytest.fixture(scope="module")
def parser_path(tokenizer: Any) -> ParserPath:
    plugin_register.register()
    parser_cls = ParserManager.get_parser(
        tool_parser_name=formats.PARSER_NAME,
        reasoning_parser_name=formats.PARSER_NAME,
        enable_auto_tools=True,
        tokenizer=tokenizer,
    )
    return ParserPath(parser_cls, tokenizer)


@pytest.fixture(scope="module")
def serving_path(make_serving: Callable[..., Served]) -> ServingPath:
    return ServingPath(make_serving())


def test_fuzz_vllm_parser_path(parser_path: ParserPath) -> None:
    run = fz.fuzz(
        parser_path,
        base_seed=BASE_SEED,
        count=PARSER_N,
        streams_per_output=3,
        reference=CORE,
        exclude=VLLM_EXCLUDE,
    )
    run.assert_clean()


def test_fuzz_vllm_serving_path(serving_path: ServingPath) -> None:
    run = fz.fuzz(
        serving_path,
        base_seed=BASE_SEED + 1,
        count=SERVING_N,
        streams_per_output=1,
        reference=CORE,
        exclude=VLLM_EXCLUDE,
    )
    run.assert_clean()


@pytest.mark.stress
def test_fuzz_vllm_parser_path_stress(parser_path: ParserPath, stress_n: int) -> None:
    run = fz.fuzz(
        parser_path,
        base_seed=BASE_SEED + 2,
        count=stress_n,
        streams_per_output=3,
        reference=CORE,
        exclude=VLLM_EXCLUDE,
    )
    run.assert_clean()


@pytest.mark.stress
def test_fuzz_vllm_serving_path_stress(serving_path: ServingPath, stress_n: int) -> None:
    run = fz.fuzz(
        serving_path,
        base_seed=BASE_SEED + 3,
        count=stress_n // 10,
        reference=CORE,
        exclude=VLLM_EXCLUDE,
    )
    run.assert_clean()


# -- unrepresentable arguments, as clients of vLLM see them ------------------------------------


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "stream"])
def test_lone_surrogate_escape_reaches_the_client(
    serving_path: ServingPath, streamed: bool
) -> None:
    text = '<tool_call>{"name": "f", "arguments": {"x": "\\ud800"}}</tool_call>'
    split = serving_path.stream([text], False) if streamed else serving_path.parse(text, False)
    assert fz.split_problems(text, False, split) == []


def test_overflowing_number_reaches_the_client_as_text(parser_path: ParserPath) -> None:
    text = '<tool_call>{"name": "f", "arguments": {"x": 1e400}}</tool_call>'
    assert fz.split_problems(text, False, parser_path.parse(text, False)) == []


UNICODE_SPACE_AFTER_CALL = '<tool_call>{"name": "f"}</tool_call>\u3000'


@pytest.mark.xfail(
    strict=True,
    reason=(
        "vLLM path bug: content made only of whitespace the core keeps (U+3000, U+00A0, U+000B) "
        "next to a call comes back when streamed but is dropped from the whole response, "
        "because vLLM's DelegatingParser._extract_tool_calls sets content to None when "
        "content.strip() is empty; repro, thinking off: "
        '\'<tool_call>{"name": "f"}</tool_call>\' + U+3000 gives content None from '
        "parse() and U+3000 from parse_delta(). When fixed, drop UNICODE_SPACE from VLLM_EXCLUDE"
    ),
)
def test_unicode_space_content_next_to_a_call_is_kept_whole(parser_path: ParserPath) -> None:
    text = UNICODE_SPACE_AFTER_CALL
    problems = fz.output_problems(parser_path, text, False, fz.all_chunkings(text), CORE)
    assert problems == []
