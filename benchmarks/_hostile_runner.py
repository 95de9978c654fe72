"""Sending one hostile case and measuring the answer: status, time, memory, next request.

After every case a normal request must still be served; a server that died is restarted for the
cases that remain, and the case says so.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _hostile_cases import Case, chat_body
from _hostile_payloads import QUESTION, text_part
from _hostile_procfs import RssSampler
from _hostile_servers import MODELS, ServerPool, alive

from interns1_plugin.demo import image_bytes, image_part
from interns1_plugin.testing.http import HTTPStatusError, post_json
from interns1_plugin.testing.server import VllmServer


@dataclass
class Outcome:
    """What one hostile request got back, and whether the server then still served."""

    case: str
    server: str
    expect: tuple[int, ...]
    status: int | str = ""
    wall_s: float = 0.0
    message: str = ""
    rss_baseline_mb: float = 0.0
    rss_peak_mb: float = 0.0
    rss_samples: int = 0
    next_ok: bool = False
    next_detail: str = ""
    server_restarted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in self.expect and bool(self.message) and self.next_ok

    @property
    def rss_delta_mb(self) -> float:
        return self.rss_peak_mb - self.rss_baseline_mb


def error_message(body: str) -> str:
    """The `error.message` of a vLLM error body (the raw body when it is not that JSON)."""
    try:
        error = json.loads(body).get("error", {})
        return str(error.get("message") or body) if isinstance(error, dict) else body
    except (ValueError, AttributeError):
        return body


def reply_summary(reply: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A one-line account of a successful reply, and the fields kept in the JSON."""
    choice = reply["choices"][0]
    message = choice.get("message") or {}
    calls = [c["function"]["name"] for c in message.get("tool_calls") or []]
    fields = {
        "prompt_tokens": reply.get("usage", {}).get("prompt_tokens"),
        "reasoning": message.get("reasoning") or message.get("reasoning_content"),
        "content": message.get("content"),
        "tool_calls": calls,
        "finish_reason": choice.get("finish_reason"),
    }
    text = f"served: {fields['prompt_tokens']} prompt tokens, finish {fields['finish_reason']}"
    # The random-weight mini answers with arbitrary bytes; only the scripted text is worth showing.
    if fields["reasoning"] is not None and fields["reasoning"].isprintable():
        text += f", reasoning {fields['reasoning']!r}"
    if calls:
        text += f", calls {calls}"
    return text, fields


def send(url: str, body: dict[str, Any], timeout: float) -> tuple[int | str, str, dict[str, Any]]:
    """POST one chat request: (status or "timeout"/"error", message, reply fields)."""
    try:
        reply = post_json(url, body, timeout=timeout)
    except HTTPStatusError as err:
        return err.status, error_message(err.body), {}
    except TimeoutError:
        return "timeout", f"no answer within {timeout:.0f} s", {}
    except OSError as err:  # connection reset / refused: the server went away
        return "error", f"{type(err).__name__}: {err}", {}
    text, fields = reply_summary(reply)
    return 200, text, fields


def liveness_body(kind: str, model: str) -> dict[str, Any]:
    """The normal request sent after each case: a small image (mini) or the scripted chat (Pro)."""
    if kind == "mini":
        return chat_body(model, [image_part(image_bytes(64, 64)), text_part()], max_tokens=4)
    return chat_body(model, QUESTION, max_tokens=32)


def check_liveness(kind: str, server: VllmServer, model: str, timeout: float) -> tuple[bool, str]:
    status, message, fields = send(
        server.base_url + "/v1/chat/completions", liveness_body(kind, model), timeout
    )
    if status != 200:
        return False, f"{status}: {message[:200]}"
    if kind == "pro" and fields.get("tool_calls") != ["get_weather"]:
        return False, f"no scripted tool call: {message}"
    return True, message


def run_case(pool: ServerPool, case: Case, kind: str, timeout: float) -> Outcome:
    server = pool.get(kind)
    model = MODELS[kind]
    body = case.build(model)
    outcome = Outcome(case.name, kind, case.expect)
    assert server.pid is not None
    with RssSampler(server.pid) as sampler:
        started = time.perf_counter()
        status, message, fields = send(server.base_url + "/v1/chat/completions", body, timeout)
        outcome.wall_s = time.perf_counter() - started
    outcome.status, outcome.message, outcome.extra = status, message, fields
    outcome.rss_baseline_mb = sampler.baseline / 2**20
    outcome.rss_peak_mb = sampler.peak / 2**20
    outcome.rss_samples = sampler.samples
    if not alive(server):
        outcome.server_restarted = True
        outcome.next_detail = "server process died: " + server.log_tail(5).replace("\n", " | ")
        pool.get(kind)  # restart for the remaining cases
        return outcome
    outcome.next_ok, outcome.next_detail = check_liveness(kind, server, model, timeout)
    return outcome


def run_all(
    cases: Sequence[Case],
    kinds: Sequence[str],
    checkpoints: dict[str, Path],
    workdir: Path,
    env: dict[str, str],
    timeout: float,
) -> tuple[list[Outcome], dict[str, Any]]:
    """Every case on every selected server, one server at a time (they share the CPU)."""
    outcomes: list[Outcome] = []
    pool = ServerPool(checkpoints, workdir, env)
    try:
        for kind in kinds:
            for case in cases:
                if kind in case.servers:
                    outcome = run_case(pool, case, kind, timeout)
                    print(
                        f"  [{kind}] {case.name}: {outcome.status} in {outcome.wall_s:.2f} s, "
                        f"next {'ok' if outcome.next_ok else 'FAILED'}",
                        file=sys.stderr,
                    )
                    outcomes.append(outcome)
            pool.stop(kind)
    finally:
        pool.stop()
    return outcomes, {"startup_s": pool.startup_s}
