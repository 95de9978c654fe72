"""The scripted Qwen3 checkpoint: tokenizer shape, determinism, and greedy output in transformers.

The live-server tests trust that this checkpoint says its script; these checks prove it without
an engine, in a few seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interns1_plugin.formats import (
    ACTION_START,
    IM_END,
    IM_START,
    PLUGIN,
    THINK_END,
    THINK_START,
    TOOL_CALL_START,
)
from interns1_plugin.testing.scripted_checkpoint import (
    ANSWER_SCRIPT,
    PLAIN_ADDED_TOKENS,
    PRO_TOOL_CALL_SCRIPT,
    SPECIAL_TOKENS,
    WEATHER_TOOL_CALL_SCRIPT,
    Script,
    build_script_tokenizer,
    build_scripted_qwen3,
    chatml_prompt,
    script_token_ids,
)

pytest.importorskip("tokenizers")
pytest.importorskip("safetensors")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

SCRIPTS = [WEATHER_TOOL_CALL_SCRIPT, PRO_TOOL_CALL_SCRIPT, ANSWER_SCRIPT]


@pytest.fixture(scope="module", params=SCRIPTS, ids=lambda s: s.name)
def checkpoint(request, tmp_path_factory) -> tuple[Script, Path]:
    script: Script = request.param
    return script, build_scripted_qwen3(tmp_path_factory.mktemp(script.name), script)


def test_scripts_end_with_eos_and_keep_the_formats() -> None:
    assert WEATHER_TOOL_CALL_SCRIPT.segments[4:6] == (ACTION_START, PLUGIN)
    assert TOOL_CALL_START in PRO_TOOL_CALL_SCRIPT.segments
    for script in SCRIPTS:
        assert script.trigger == THINK_START
        assert THINK_END in script.segments
        assert script.segments[-1] == IM_END
        assert script.text == script.served_text + IM_END


@pytest.mark.parametrize(
    "segments",
    [("a", "b"), ("again", "again", IM_END), ("", IM_END), (THINK_START, IM_END)],
)
def test_script_rejects_unwalkable_chains(segments: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        Script(name="bad", trigger=THINK_START, segments=segments)


def test_segment_that_decoding_would_change_is_rejected() -> None:
    # Made only of byte-level alphabet characters, so the decoder would read "é" as one byte.
    with pytest.raises(ValueError, match="byte-level"):
        build_script_tokenizer(Script(name="bad", trigger=THINK_START, segments=("é!", IM_END)))


def test_tokenizer_marks_special_tokens_like_the_real_one() -> None:
    tokenizer = build_script_tokenizer(WEATHER_TOOL_CALL_SCRIPT)
    added = {t.content: t.special for t in tokenizer.get_added_tokens_decoder().values()}
    assert all(added[token] for token in SPECIAL_TOKENS)
    assert not any(added[token] for token in PLAIN_ADDED_TOKENS)
    assert tokenizer.get_vocab_size(with_added_tokens=False) == 256  # bytes only, no merges
    ids = script_token_ids(tokenizer, WEATHER_TOOL_CALL_SCRIPT)
    assert len(set(ids)) == len(ids) == len(WEATHER_TOOL_CALL_SCRIPT.chain)
    decoded = tokenizer.decode(ids[1:], skip_special_tokens=False)
    assert decoded == WEATHER_TOOL_CALL_SCRIPT.text


def test_build_is_deterministic(tmp_path: Path) -> None:
    first = build_scripted_qwen3(tmp_path / "a", ANSWER_SCRIPT, seed=7)
    second = build_scripted_qwen3(tmp_path / "b", ANSWER_SCRIPT, seed=7)
    for name in ("model.safetensors", "tokenizer.json", "config.json", "tokenizer_config.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_config_is_qwen3_shaped(checkpoint: tuple[Script, Path]) -> None:
    _, path = checkpoint
    config = json.loads((path / "config.json").read_text())
    tokenizer = json.loads((path / "tokenizer.json").read_text())
    ids = {t["content"]: t["id"] for t in tokenizer["added_tokens"]}
    assert config["model_type"] == "qwen3"
    assert config["architectures"] == ["Qwen3ForCausalLM"]
    assert config["head_dim"] in (32, 64, 80, 96, 112, 128)
    assert config["eos_token_id"] == ids[IM_END]
    assert config["vocab_size"] % 64 == 0 and config["vocab_size"] >= max(ids.values()) + 1


def _greedy(path: Path, prompt: str) -> str:
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModelForCausalLM.from_pretrained(path)
    input_ids = tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        output = model.generate(input_ids, max_new_tokens=32, do_sample=False)
    return tokenizer.decode(output[0, input_ids.shape[1] :], skip_special_tokens=False)


def test_greedy_generation_follows_the_script(checkpoint: tuple[Script, Path]) -> None:
    script, path = checkpoint
    prompt = chatml_prompt("weather in Tokyo?", script)
    assert prompt.startswith(IM_START) and prompt.endswith(script.trigger)
    assert _greedy(path, prompt) == script.text


def test_greedy_generation_from_the_shipped_chat_template(checkpoint: tuple[Script, Path]) -> None:
    script, path = checkpoint
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    if not tokenizer.chat_template:
        pytest.skip(f"chat template {script.template} not available")
    messages = [{"role": "user", "content": "weather in Tokyo?"}]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert prompt.endswith(script.trigger)
    assert _greedy(path, prompt) == script.text
