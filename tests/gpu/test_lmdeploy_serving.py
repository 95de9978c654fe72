"""`lmdeploy serve api_server --backend pytorch` runs the plugin's models like vLLM does (GPU only).

For each tiny checkpoint (Intern-S1-mini, Intern-S1, Intern-S1-Pro; bfloat16) the same chat
requests go to `vllm serve` and then to `lmdeploy serve api_server` with the `intern-s1`
parsers, each bound to 127.0.0.1 and stopped by its process id before the other starts: text,
an image, a video, a request with tools, thinking off (and, for Pro, a time series). Each is sent
streaming and not; the streamed deltas must join to the non-streaming message, and the greedy
tokens and their logprobs must follow vLLM's (vLLM's rule: equal tokens up to the first
divergence, where each side's token is in the other's top 5; chosen logprobs within bfloat16
noise). A scripted Pro checkpoint whose greedy output is reasoning, a sentence and a
`<tool_call>` block checks the parsed tool call end to end.
"""

from __future__ import annotations

import base64
import importlib.util
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from interns1_plugin.demo import WEATHER_TOOL
from interns1_plugin.testing.http import collect_stream, post_json, stream_events

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.lmdeploy,
    pytest.mark.vllm,
    pytest.mark.server,
    pytest.mark.skipif(
        importlib.util.find_spec("lmdeploy") is None or importlib.util.find_spec("vllm") is None,
        reason="needs LMDeploy and vLLM",
    ),
]

MODEL = "tiny-intern-s1"
MAX_TOKENS = 8
TOP_LOGPROBS = 5
#: Two engines' bfloat16 kernels: the chosen tokens' logprobs agree to this.
LOGPROB_ATOL = 0.1
PARSERS = ["--reasoning-parser", "intern-s1", "--tool-call-parser", "intern-s1"]
VLLM_ARGS = [
    *PARSERS,
    "--enable-auto-tool-choice",
    "--dtype",
    "bfloat16",
    "--max-model-len",
    "4096",
    "--gpu-memory-utilization",
    "0.3",
    "--served-model-name",
    MODEL,
]
LMDEPLOY_ARGS = [*PARSERS, "--dtype", "bfloat16", "--model-name", MODEL]


# ----------------------------------------------------------------------------- media


def _png_url(seed: int, shape: tuple[int, int]) -> str:
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _mp4_url(path: Path) -> str:
    import cv2

    rng = np.random.default_rng(3)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (96, 64))
    for _ in range(20):
        writer.write(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8))
    writer.release()
    return "data:video/mp4;base64," + base64.b64encode(path.read_bytes()).decode()


def _series_values() -> np.ndarray:
    t = np.arange(6000, dtype=np.float32)
    return np.sin(t / 37.0) + 0.1 * np.random.default_rng(4).standard_normal(6000)


def _npy_url(values: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, values.astype(np.float32))
    return "data:application/x-npy;base64," + base64.b64encode(buffer.getvalue()).decode()


# ----------------------------------------------------------------------------- requests


def _parts(case: str, engine: str, media: dict[str, str]) -> list[dict[str, Any]]:
    """The user message of a case in each engine's spelling (they differ for time series)."""
    text = {"type": "text", "text": "Describe what you see."}
    if case == "image":
        return [{"type": "image_url", "image_url": {"url": media["image"]}}, text]
    if case == "video":
        return [{"type": "video_url", "video_url": {"url": media["video"]}}, text]
    if case == "time_series":
        if engine == "vllm":
            values = _series_values().tolist()
            return [{"type": "time_series", "time_series": {"values": values}}, text]
        url = _npy_url(_series_values())
        return [{"type": "time_series_url", "time_series_url": {"url": url}}, text]
    return [{"type": "text", "text": "Name three noble gases."}]


def _body(case: str, engine: str, media: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": _parts(case, engine, media)}],
        "temperature": 0,
        "max_tokens": MAX_TOKENS,
        "logprobs": True,
        "top_logprobs": TOP_LOGPROBS,
    }
    if case == "tools":
        body["tools"] = [WEATHER_TOOL]
    if case != "thinking_on":
        # LMDeploy reads a top-level switch, vLLM the chat template's.
        if engine == "lmdeploy":
            body["enable_thinking"] = False
        else:
            body["chat_template_kwargs"] = {"enable_thinking": False}
    return body


CASES = ("text", "image", "video", "tools", "thinking_on")
MODELS = {"mini": CASES, "s1": CASES, "pro": (*CASES, "time_series")}


def _reply(server: Any, body: dict[str, Any]) -> dict[str, Any]:
    """Non-streaming and streaming answers to the same request."""
    url = server.base_url + "/v1/chat/completions"
    full = post_json(url, body, timeout=600)
    streamed = collect_stream(stream_events(url, body, timeout=600))
    return {"full": full, "streamed": streamed}


def _serve_all(server: Any, engine: str, cases: tuple[str, ...], media: dict[str, str]) -> dict:
    return {case: _reply(server, _body(case, engine, media)) for case in cases}


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("media")
    return {"image": _png_url(0, (300, 600)), "video": _mp4_url(root / "video.mp4")}


@pytest.fixture(scope="module", params=list(MODELS))
def replies(
    request: pytest.FixtureRequest,
    media: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, dict, dict]]:
    """(model, vLLM replies, LMDeploy replies), the servers run one after the other."""
    from interns1_plugin.testing.lmdeploy_server import LMDeployServer
    from interns1_plugin.testing.server import VllmServer
    from interns1_plugin.testing.tiny_interns1 import build_tiny_interns1
    from interns1_plugin.testing.tiny_interns1_pro import build_tiny_interns1_pro

    name = request.param
    root = tmp_path_factory.mktemp(f"serve-{name}")
    if name == "pro":
        model = build_tiny_interns1_pro(root / "model", dtype="bfloat16")
    else:
        model = build_tiny_interns1(root / "model", name, dtype="bfloat16")
    cases = MODELS[name]
    with VllmServer(model, VLLM_ARGS, log_path=root / "vllm.log") as server:
        vllm = _serve_all(server, "vllm", cases, media)
    with LMDeployServer(model, LMDEPLOY_ARGS, log_path=root / "lmdeploy.log") as server:
        lmdeploy = _serve_all(server, "lmdeploy", cases, media)
    yield name, vllm, lmdeploy


# ----------------------------------------------------------------------------- checks


def _message(reply: dict[str, Any]) -> dict[str, Any]:
    """Reasoning, content and tool calls of a non-streaming reply, as `collect_stream` joins
    a stream."""
    choice = reply["choices"][0]
    message = choice["message"]
    calls = message.get("tool_calls") or []
    return {
        "reasoning": message.get("reasoning") or message.get("reasoning_content") or "",
        "content": message.get("content") or "",
        "tool_calls": [(c["function"]["name"], c["function"]["arguments"]) for c in calls],
        "finish_reason": choice["finish_reason"],
    }


def _streamed(stream: dict[str, Any]) -> dict[str, Any]:
    return {
        "reasoning": stream["reasoning"],
        "content": stream["content"],
        "tool_calls": [(c["name"], c["arguments"]) for c in stream["tool_calls"]],
        "finish_reason": stream["finish_reason"],
    }


def _steps(reply: dict[str, Any]) -> list[tuple[str, float, dict[str, float]]]:
    """(token, logprob, top logprobs by token) per generated step."""
    return [
        (
            step["token"],
            step["logprob"],
            {top["token"]: top["logprob"] for top in step["top_logprobs"]},
        )
        for step in reply["choices"][0]["logprobs"]["content"]
    ]


def check_logprobs_close(reference: dict, tested: dict, name: str) -> int:
    """vLLM's rule plus the chosen logprobs; returns how many leading tokens agree."""
    ref_steps, test_steps = _steps(reference), _steps(tested)
    assert ref_steps and test_steps, f"{name}: no logprobs returned"
    for step, ((ref_tok, ref_lp, ref_top), (test_tok, test_lp, test_top)) in enumerate(
        zip(ref_steps, test_steps, strict=False)
    ):
        if ref_tok != test_tok:
            assert ref_tok in test_top and test_tok in ref_top, (
                f"{name}: step {step} chose {ref_tok!r} (vLLM) vs {test_tok!r} (LMDeploy), "
                f"not in each other's top {TOP_LOGPROBS}"
            )
            return step
        assert abs(ref_lp - test_lp) <= LOGPROB_ATOL, (name, step, ref_lp, test_lp)
    return min(len(ref_steps), len(test_steps))


def test_streaming_joins_to_the_full_reply(replies: tuple[str, dict, dict]) -> None:
    name, _, lmdeploy = replies
    for case, reply in lmdeploy.items():
        assert _streamed(reply["streamed"]) == _message(reply["full"]), f"{name}/{case}"


def test_prompts_and_greedy_logprobs_follow_vllm(replies: tuple[str, dict, dict]) -> None:
    name, vllm, lmdeploy = replies
    for case in vllm:
        ref, test = vllm[case]["full"], lmdeploy[case]["full"]
        label = f"{name}/{case}"
        assert test["usage"]["prompt_tokens"] == ref["usage"]["prompt_tokens"], label
        assert check_logprobs_close(ref, test, label) >= 1, f"{label}: first token differs"


def test_thinking_off_answers_without_reasoning(replies: tuple[str, dict, dict]) -> None:
    name, _, lmdeploy = replies
    for case, reply in lmdeploy.items():
        if case == "thinking_on":
            continue
        message = _message(reply["full"])
        assert message["reasoning"] == "", f"{name}/{case}"


# ----------------------------------------------------------------------------- scripted Pro


@pytest.fixture(scope="module")
def scripted_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from interns1_plugin.testing.lmdeploy_server import LMDeployServer
    from interns1_plugin.testing.scripted_checkpoint import PRO_TOOL_CALL_SCRIPT
    from interns1_plugin.testing.tiny_interns1_pro import build_tiny_interns1_pro

    root = tmp_path_factory.mktemp("scripted-pro")
    model = build_tiny_interns1_pro(
        root / "model", script=PRO_TOOL_CALL_SCRIPT, dtype="bfloat16", with_auto_map=True
    )
    with LMDeployServer(model, LMDEPLOY_ARGS, log_path=root / "lmdeploy.log") as server:
        yield server


@pytest.mark.parametrize("with_image", [False, True], ids=["text", "image"])
def test_scripted_tool_call_is_parsed(
    scripted_server: Any, media: dict[str, str], with_image: bool
) -> None:
    parts: list[dict[str, Any]] = [{"type": "text", "text": "Weather in Tokyo?"}]
    if with_image:
        parts.insert(0, {"type": "image_url", "image_url": {"url": media["image"]}})
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": parts}],
        "tools": [WEATHER_TOOL],
        "temperature": 0,
        "max_tokens": 32,
    }
    reply = _reply(scripted_server, body)
    expected = {
        "reasoning": "I need the weather.",
        "content": "Let me check.",
        "tool_calls": [("get_weather", '{"city": "Tokyo"}')],
        "finish_reason": "tool_calls",
    }
    assert _message(reply["full"]) == expected
    assert _streamed(reply["streamed"]) == expected
