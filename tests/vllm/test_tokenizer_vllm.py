"""The dynamic tokenizer inside vLLM: streaming detokenisation and xgrammar structured output.

Streaming rule checked here (vLLM's own, which the tokenizer must not break): after each token the
text streamed so far equals the full decode of the ids so far, except that a decode ending inside
a multi-byte character (trailing U+FFFD) is held back until the character completes; so the
streamed text is that decode with its trailing U+FFFD removed, and the final text is the full
decode exactly.

"Full decode" is the tokenizer's `decode` with the request's `skip_special_tokens`, except where
vLLM has its own convention: with `spaces_between_special_tokens` (vLLM's default) its slow
detokenizer joins every added token that is kept to its neighbours with a space, named special
tokens included, whatever the tokenizer's `decode` does, and the prompt's last piece counts as a
neighbour of the first output token. `_expected` applies that convention over prompt + output; it
is vLLM's behaviour for every slow tokenizer, not this one's. Without the spaces the streamed text
is compared with the tokenizer's own `decode` of the output ids directly.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("vllm")
xgr = pytest.importorskip("xgrammar")

from interns1_plugin.testing.tiny_interns1 import write_dynamic_tokenizer  # noqa: E402
from interns1_plugin.tokenizer import register_with_transformers  # noqa: E402

#: Texts mixing prose, CJK, emoji, explicit and auto-detected scientific spans and chat tokens.
TEXTS: tuple[str, ...] = (
    "The answer is 42. 中文字符 and 日本語 😀👍🏽 done.",
    "Aspirin is <SMILES>CC(=O)Oc1ccccc1C(=O)O</SMILES>, caffeine "
    "<SMILES>CN1C=NC2=C1C(=O)N(C(=O)N2C)C</SMILES>.",
    "Auto-detected: CC(=O)Oc1ccccc1C(=O)O and protein MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ end.",
    "<IUPAC>2-acetyloxybenzoic acid</IUPAC> is <SELFIES>[C][C]</SELFIES> 分子 🧪",
    "<think>hmm 思考</think>\n<tool_call>\n"
    '{"name": "f", "arguments": {"x": "é"}}\n</tool_call><|im_end|>',
    "<|im_start|>assistant\n<img><IMG_CONTEXT></img> ✓ <|action_start|><|plugin|>x<|action_end|>",
)


def _spec_vocab() -> Path | None:
    default = Path(__file__).resolve().parents[2].parent / "shared" / "spec"
    folder = Path(os.environ.get("INTERNS1_SPEC_DIR", default)) / "tokenizer" / "vocab"
    return folder if (folder / "vocab.json").is_file() else None


@pytest.fixture(scope="module", params=["generated", "spec"])
def tokenizer_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated toy vocabulary, and the worked-example one where it is available."""
    out = tmp_path_factory.mktemp(f"tok-{request.param}")
    if request.param == "generated":
        write_dynamic_tokenizer(out)
        return out
    spec = _spec_vocab()
    if spec is None:
        pytest.skip("worked-example vocabulary not found (set INTERNS1_SPEC_DIR)")
    for item in spec.iterdir():
        shutil.copyfile(item, out / item.name)
    return out


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir: Path) -> Any:
    """Loaded the way vLLM loads it (its registry, then its caching proxy)."""
    from vllm.tokenizers import get_tokenizer

    register_with_transformers()
    return get_tokenizer(str(tokenizer_dir))


def _expected(tokenizer: Any, ids: list[int], skip_special: bool, spaces: bool) -> str:
    """The full decode vLLM's slow detokenizer converges to (see the module docstring)."""
    if not spaces:
        return tokenizer.decode(ids, skip_special_tokens=skip_special)
    added = {index: token.content for index, token in tokenizer.added_tokens_decoder.items()}
    skipped = set(tokenizer.all_special_ids) if skip_special else set()
    pieces: list[str] = []
    run: list[int] = []
    for token_id in ids:
        if token_id in skipped:
            continue
        if token_id in added:
            if run:
                pieces.append(tokenizer.decode(run))
                run = []
            pieces.append(added[token_id])
        else:
            run.append(token_id)
    if run:
        pieces.append(tokenizer.decode(run))
    return " ".join(pieces)


def _request(prompt_ids: list[int], skip_special: bool, spaces: bool) -> Any:
    from vllm import SamplingParams
    from vllm.v1.engine import EngineCoreRequest

    params = SamplingParams(
        max_tokens=10_000,
        skip_special_tokens=skip_special,
        spaces_between_special_tokens=spaces,
    )
    return EngineCoreRequest(
        request_id="r",
        prompt_token_ids=prompt_ids,
        mm_features=None,
        sampling_params=params,
        pooling_params=None,
        arrival_time=time.time(),
        lora_request=None,
        cache_salt=None,
        data_parallel_rank=None,
    )


def test_vllm_picks_the_slow_detokenizer(tokenizer: Any) -> None:
    from vllm.v1.engine.detokenizer import IncrementalDetokenizer, SlowIncrementalDetokenizer

    detok = IncrementalDetokenizer.from_new_request(tokenizer, _request([1], True, True))
    assert callable(tokenizer.byte_vocab)  # vLLM's caching proxy keeps the class's methods
    assert isinstance(detok, SlowIncrementalDetokenizer)


@pytest.mark.parametrize("skip_special", [False, True])
@pytest.mark.parametrize("spaces", [False, True])
@pytest.mark.parametrize("text", TEXTS)
def test_streamed_prefixes_match_full_decode(
    tokenizer: Any, text: str, skip_special: bool, spaces: bool
) -> None:
    from vllm.v1.engine.detokenizer import IncrementalDetokenizer

    prompt = tokenizer.encode("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids) == text  # the stream below is of a faithful encoding
    detok = IncrementalDetokenizer.from_new_request(
        tokenizer, _request(prompt, skip_special, spaces)
    )
    before = _expected(tokenizer, prompt, skip_special, spaces)
    streamed = ""
    for n, token_id in enumerate(ids, start=1):
        detok.update([token_id], stop_terminated=False)
        streamed += detok.get_next_output_text(finished=False, delta=True)
        full = _expected(tokenizer, prompt + ids[:n], skip_special, spaces)[len(before) :]
        assert streamed == full.rstrip("\ufffd"), (n, ids[:n])
        if not spaces:  # no vLLM convention involved: exactly the tokenizer's own decode
            own = tokenizer.decode(ids[:n], skip_special_tokens=skip_special)
            assert streamed == own.rstrip("\ufffd"), (n, ids[:n])
    whole = _expected(tokenizer, prompt + ids, skip_special, spaces)[len(before) :]
    assert streamed + detok.get_next_output_text(finished=True, delta=True) == whole
    assert detok.output_token_ids == ids


def test_mixed_ids_stream_like_full_decode(tokenizer: Any) -> None:
    """The model may emit any id sequence, not only encodings: every id once, in a fixed order."""
    from vllm.v1.engine.detokenizer import IncrementalDetokenizer

    ids = [(i * 7919) % len(tokenizer) for i in range(len(tokenizer))]
    detok = IncrementalDetokenizer.from_new_request(tokenizer, _request([1, 2], False, False))
    streamed = ""
    for n, token_id in enumerate(ids, start=1):
        detok.update([token_id], stop_terminated=False)
        streamed += detok.get_next_output_text(finished=False, delta=True)
        if n % 97 == 0 or n == len(ids):
            full = tokenizer.decode(ids[:n])
            assert full.startswith(streamed)
            assert len(full.rstrip("\ufffd")) - len(streamed) <= 8, n
    streamed += detok.get_next_output_text(finished=True, delta=True)
    assert tokenizer.decode(ids).startswith(streamed)


# --- structured output ----------------------------------------------------------------------

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "count": {"type": "integer"}},
    "required": ["name", "count"],
    "additionalProperties": False,
}


def test_xgrammar_rejects_the_class_without_the_hook(tokenizer: Any) -> None:
    """Why the hook exists: if this fails, xgrammar learnt the class and the hook can go."""
    from interns1_plugin.vllm import structured_output

    structured_output.install()
    original = xgr.TokenizerInfo.from_huggingface.__wrapped__
    with pytest.raises(ValueError, match="Unsupported tokenizer type"):
        original(tokenizer)


def test_xgrammar_backend_compiles_over_this_vocabulary(tokenizer: Any) -> None:
    """vLLM's XgrammarBackend compiles a JSON schema, and the grammar accepts a valid answer
    (multi-byte characters and sub-model pieces included) and then the end of the sequence."""
    from vllm.config import VllmConfig
    from vllm.v1.structured_output.backend_types import StructuredOutputOptions
    from vllm.v1.structured_output.backend_xgrammar import XgrammarBackend

    from interns1_plugin.vllm import structured_output

    assert structured_output.install()
    assert structured_output.install()  # idempotent: wraps once
    wrapped = xgr.TokenizerInfo.from_huggingface
    assert not getattr(wrapped.__wrapped__, structured_output._MARK, False)
    model_vocab = -(-len(tokenizer) // 64) * 64
    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=model_vocab)
    assert (info.vocab_type, info.vocab_size) == (xgr.VocabType.RAW, model_vocab)
    assert info.stop_token_ids == [tokenizer.eos_token_id]
    backend = XgrammarBackend(VllmConfig(), tokenizer=tokenizer, vocab_size=model_vocab)
    assert backend.vocab_size == model_vocab
    grammar = backend.compile_grammar(StructuredOutputOptions.JSON, json.dumps(SCHEMA))
    answer = '{"name": "中文 😀 CCO", "count": 3}'
    ids = tokenizer.encode(answer)
    assert tokenizer.decode(ids) == answer
    assert grammar.accept_tokens("r", ids)
    assert grammar.accept_tokens("r", [tokenizer.eos_token_id])
    assert grammar.is_terminated()
