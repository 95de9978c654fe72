"""Shared fixtures of the LMDeploy tests.

Engine-model tests: `reference_backend` (LMDeploy's operators in plain torch, for a module),
`engine_for` and `front_end_for` (one `EngineSteps` / `LMDeployFrontEnd` per checkpoint).

Parser tests: drive LMDeploy 0.18's own serving path with a scripted engine instead of a model.

`LMDeployServer` configures parsers exactly as `api_server.serve()` does (`validate_parser_names`,
then `api_server.set_parsers` on a `ServerContext`) and runs each request through `ChatRunner`,
the object every chat endpoint uses: `stream()` for streaming, `collect()` for complete replies.
The engine yields the given text pieces, the last one carrying `finish_reason`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from interns1_plugin import formats

THINK_IDS = {formats.THINK_START: 1001, formats.THINK_END: 1002}


class FakeTokenizer:
    """What LMDeploy asks of the HF tokenizer when configuring parsers: the vocab."""

    def get_vocab(self) -> dict[str, int]:
        return dict(THINK_IDS)


class FakeSessions:
    def get(self, *args: Any, **kwargs: Any) -> SimpleNamespace:
        return SimpleNamespace(session_id=1, epoch=0)

    def remove(self, session: Any) -> None:
        pass


@dataclass
class ScriptedEngine:
    """The parts of `AsyncEngine` that `api_server.set_parsers` and `ChatRunner` touch."""

    arch: str = "InternS1ForConditionalGeneration"
    model_name: str = "intern-s1"
    epoch: int = 0
    tokenizer: Any = field(
        default_factory=lambda: SimpleNamespace(model=SimpleNamespace(model=FakeTokenizer()))
    )
    session_mgr: FakeSessions = field(default_factory=FakeSessions)
    script: list[tuple[str, list[int], str | None]] = field(default_factory=list)

    async def preprocess(self, messages: Any, session: Any, **kwargs: Any) -> dict:
        return {}

    def generate(self, preprocessed: Any, stream_response: bool = True):
        return self._results(list(self.script))

    @staticmethod
    async def _results(script: list[tuple[str, list[int], str | None]]):
        for step, (text, token_ids, finish_reason) in enumerate(script, start=1):
            yield SimpleNamespace(
                response=text,
                token_ids=token_ids,
                finish_reason=finish_reason,
                logprobs=None,
                input_token_len=3,
                generate_token_len=step,
                cached_tokens=0,
                routed_experts=None,
                cache_block_ids=None,
            )


@dataclass
class Reply:
    """One response as a client would assemble it."""

    reasoning: str | None
    content: str
    calls: list[tuple[str, str]]
    finish_reason: str | None
    reasoning_tokens: int | None = None

    def calls_as_data(self) -> list[tuple[str, Any]]:
        return [(name, json.loads(arguments)) for name, arguments in self.calls]


class LMDeployServer:
    """`api_server`'s parser setup and per-request `ChatRunner`, over a scripted engine."""

    def __init__(self, reasoning_parser: str | None, tool_parser: str | None) -> None:
        from lmdeploy.serve.openai.api_server import ServerContext, set_parsers
        from lmdeploy.serve.parsers import validate_parser_names

        self.engine = ScriptedEngine()
        self.context = ServerContext()
        self.context.async_engine = self.engine
        reasoning_parser, tool_parser = validate_parser_names(reasoning_parser, tool_parser)
        set_parsers(self.context, reasoning_parser, tool_parser)
        self.parser_cls = self.context.response_parser_cls

    def _prepare(
        self,
        request: Any,
        pieces: list[str],
        token_ids: list[list[int]] | None,
        finish_reason: str,
        trailing_empty: bool,
    ):
        from lmdeploy.serve.core.chat_runner import ChatRunner

        ids = token_ids or [[] for _ in pieces]
        script = [(piece, piece_ids, None) for piece, piece_ids in zip(pieces, ids, strict=True)]
        if trailing_empty or not script:
            script.append(("", [], finish_reason))
        else:
            text, piece_ids, _ = script[-1]
            script[-1] = (text, piece_ids, finish_reason)
        self.engine.script = script
        return ChatRunner.prepare(self.context, request)

    def stream(
        self,
        request: Any,
        pieces: list[str],
        *,
        token_ids: list[list[int]] | None = None,
        finish_reason: str = "stop",
        trailing_empty: bool = False,
        whole_calls: bool = True,
    ) -> Reply:
        async def run():
            runner = await self._prepare(request, pieces, token_ids, finish_reason, trailing_empty)
            return [chunk async for chunk in runner.stream()]

        return assemble_stream(asyncio.run(run()), whole_calls=whole_calls)

    def complete(self, request: Any, pieces: list[str], *, finish_reason: str = "stop") -> Reply:
        async def run():
            runner = await self._prepare(request, pieces, None, finish_reason, False)
            return await runner.collect()

        result = asyncio.run(run())
        calls = [(c.function.name, c.function.arguments) for c in result.tool_calls or []]
        return Reply(
            result.reasoning_content,
            result.text or "",
            calls,
            result.finish_reason,
            result.reasoning_tokens,
        )

    def runner(self, request: Any):
        """A prepared `ChatRunner` (for its parsed request and generation config)."""
        return asyncio.run(self._prepare(request, ["x"], None, "stop", False))


def assemble_stream(chunks: list[Any], *, whole_calls: bool = True) -> Reply:
    """Join a stream the way OpenAI clients do; `whole_calls` checks each call is one delta."""
    reasoning, content = [], []
    calls: dict[int, list[str]] = {}
    finish_reason = None
    for chunk in chunks:
        delta = chunk.delta_message
        reasoning.append(delta.reasoning_content or "")
        content.append(delta.content or "")
        for call in delta.tool_calls or []:
            if whole_calls:
                assert call.index not in calls, "each call must arrive in one delta"
                assert call.id and call.type == "function" and call.function is not None
                assert call.function.name and call.function.arguments is not None
            parts = calls.setdefault(call.index, ["", ""])
            parts[0] += call.function.name or ""
            parts[1] += call.function.arguments or ""
        finish_reason = chunk.finish_reason or finish_reason
    assert sorted(calls) == list(range(len(calls)))
    joined_reasoning = "".join(reasoning)
    return Reply(
        joined_reasoning or None,
        "".join(content),
        [(name, args) for name, args in (calls[i] for i in sorted(calls))],
        finish_reason,
        chunks[-1].reasoning_tokens if chunks else None,
    )


@pytest.fixture
def lmdeploy_server():
    """Factory for servers configured like `lmdeploy serve api_server`; restores parser state.

    LMDeploy keeps the configured parser classes on the response parser class itself, and only
    sets the ones named, so each server starts from a clean slate.
    """
    from lmdeploy.serve.parsers import ResponseParserManager

    from interns1_plugin.lmdeploy.register import register

    register()
    touched = []

    def make(reasoning_parser: str | None, tool_parser: str | None) -> LMDeployServer:
        cls = ResponseParserManager.get("default")
        touched.append(
            (cls, cls.__dict__.get("reasoning_parser_cls"), cls.__dict__.get("tool_parser_cls"))
        )
        cls.reasoning_parser_cls = None
        cls.tool_parser_cls = None
        return LMDeployServer(reasoning_parser, tool_parser)

    yield make
    for cls, reasoning_cls, tool_cls in reversed(touched):
        cls.reasoning_parser_cls = reasoning_cls
        cls.tool_parser_cls = tool_cls


# ----------------------------------------------------------------------------- engine models


@pytest.fixture(scope="module")
def reference_backend() -> Iterator[None]:
    """LMDeploy's operators from the plain-torch reference backend, for this module."""
    from interns1_plugin.testing.lmdeploy_reference_backend import use_reference_backend

    with pytest.MonkeyPatch.context() as patch:
        use_reference_backend(patch)
        yield


@pytest.fixture(scope="module")
def engine_for(reference_backend: None) -> Callable[[Path], Any]:
    """`EngineSteps` per checkpoint path, built when first asked for."""
    from interns1_plugin.testing.lmdeploy_engine_steps import EngineSteps

    built: dict[Path, Any] = {}

    def get(path: Path) -> Any:
        if path not in built:
            built[path] = EngineSteps(path)
        return built[path]

    return get


@pytest.fixture(scope="module")
def front_end_for() -> Iterator[Callable[[Path], Any]]:
    """LMDeploy's API-server preprocessing per checkpoint path; media loaders restored after."""
    from interns1_plugin.lmdeploy.media import restore_media_loaders
    from interns1_plugin.testing.lmdeploy_front_end import LMDeployFrontEnd

    built: dict[Path, Any] = {}

    def get(path: Path) -> Any:
        if path not in built:
            built[path] = LMDeployFrontEnd(path)
        return built[path]

    yield get
    restore_media_loaders()
