"""Fuzzed outputs through LMDeploy 0.18's serving path to the `intern-s1` parsers.

Parsers configured as `api_server` does (`validate_parser_names`, `set_parsers`), each response
run through `ChatRunner` over a scripted engine: `collect()` for the whole reply, `stream()` for
the streamed one, the finish flag on the last piece or on a trailing empty step. Invariants and
generator: `interns1_plugin.testing.fuzz_outputs`. `INTERNS1_FUZZ_N` sets the number of outputs,
`INTERNS1_FUZZ_SEED` the base seed; the `stress` test runs a bigger number when selected.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("lmdeploy.serve.parsers", exc_type=ImportError)

from interns1_plugin import formats  # noqa: E402
from interns1_plugin.parsers import parse_output  # noqa: E402
from interns1_plugin.testing import fuzz_outputs as fz  # noqa: E402

pytestmark = [
    pytest.mark.lmdeploy,
    pytest.mark.filterwarnings("ignore:max_tokens is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning"),
]

#: Default size: with the vLLM file, more than 10,000 outputs, each engine well under a minute.
N = fz.fuzz_count(6000)
BASE_SEED = fz.base_seed()

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
]


def calls_of(calls: Any) -> tuple[tuple[str, str], ...]:
    return tuple((name, arguments) for name, arguments in calls)


class CorePath:
    """The engine-free parser: what the engine path must agree with."""

    name = "core"

    def parse(self, text: str, thinking: bool) -> fz.Split:
        result = parse_output(text, thinking=thinking)
        calls = calls_of((c.name, c.arguments) for c in result.tool_calls)
        return fz.Split(result.reasoning or "", result.content, calls)

    def stream(self, pieces: list[str], thinking: bool) -> fz.Split:
        raise NotImplementedError("only used as a reference for whole outputs")


class ChatRunnerPath:
    """`api_server`'s parser setup and `ChatRunner`, with a scripted engine behind."""

    name = "lmdeploy-chat-runner"

    def __init__(self, server: Any) -> None:
        self.server = server
        self._streams = 0

    @staticmethod
    def _request(thinking: bool) -> Any:
        from lmdeploy.serve.openai.protocol import ChatCompletionRequest

        return ChatCompletionRequest(
            model="intern-s1",
            messages=[{"role": "user", "content": "hi"}],
            tools=TOOLS,
            enable_thinking=thinking,
        )

    def parse(self, text: str, thinking: bool) -> fz.Split:
        reply = self.server.complete(self._request(thinking), [text])
        return fz.Split(reply.reasoning or "", reply.content or "", calls_of(reply.calls))

    def stream(self, pieces: list[str], thinking: bool) -> fz.Split:
        # Alternate where the finish flag comes: on the last piece, or on an empty step after.
        self._streams += 1
        reply = self.server.stream(
            self._request(thinking), pieces, trailing_empty=self._streams % 2 == 0
        )
        return fz.Split(reply.reasoning or "", reply.content or "", calls_of(reply.calls))


@pytest.fixture
def path(lmdeploy_server: Any) -> ChatRunnerPath:
    return ChatRunnerPath(lmdeploy_server(formats.PARSER_NAME, formats.PARSER_NAME))


def test_fuzz_lmdeploy_chat_runner(path: ChatRunnerPath) -> None:
    run = fz.fuzz(
        path, base_seed=BASE_SEED + 10, count=N, streams_per_output=2, reference=CorePath()
    )
    run.assert_clean()


@pytest.mark.stress
def test_fuzz_lmdeploy_chat_runner_stress(path: ChatRunnerPath, stress_n: int) -> None:
    run = fz.fuzz(
        path, base_seed=BASE_SEED + 11, count=stress_n, streams_per_output=2, reference=CorePath()
    )
    run.assert_clean()


def test_lone_surrogate_escape_reaches_the_client(path: ChatRunnerPath) -> None:
    text = (
        f'{formats.ACTION_START}{formats.PLUGIN}\n{{"name": "f", "parameters": {{"x": "\\ud800"}}}}'
        f"\n{formats.ACTION_END}"
    )
    assert fz.split_problems(text, True, path.stream([text], True)) == []
