"""A block-FP8 Intern-S1 checkpoint generates like the bfloat16 checkpoint it was quantized from.

The FP8 tiny checkpoint and a bfloat16 checkpoint of the same seeded weights (same widths, via
`fp8_variant`) run the same greedy requests, text and one image, through `vllm.LLM` with the
plugin's model, each in its own child process (this file run as a script). FP8 rounds the
language model's weights and activations, so tokens may part: the rule is vLLM's
`check_logprobs_close` (equal up to the first divergence, where each side's token is in the
other's top 5). The child also reports which linear method the language model got, so a run
that silently fell back to unquantized layers fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("vllm")

pytestmark = [pytest.mark.gpu, pytest.mark.vllm]

MAX_TOKENS = 8
TOP_LOGPROBS = 5
CASES: dict[str, tuple[str, bool]] = {
    "text": ("Name three noble gases.", False),
    "image": ("Describe it.", True),
}


def _image() -> Any:
    """A 2x1-grid image: two tiles plus the thumbnail."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (300, 600, 3), dtype=np.uint8))


def _layer_methods(model: Any) -> dict[str, str]:
    """Linear method and weight dtype of the first attention projection (runs in the worker)."""
    qkv = model.language_model.model.layers[0].self_attn.qkv_proj
    return {"method": type(qkv.quant_method).__name__, "dtype": str(qkv.weight.dtype)}


def run_vllm(model_dir: Path) -> dict[str, Any]:
    """Greedy generation with top-5 logprobs through `vllm.LLM`, in this (child) process."""
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    from vllm import LLM, SamplingParams

    llm = LLM(
        model=str(model_dir),
        dtype="bfloat16",
        enforce_eager=True,
        max_model_len=4096,
        max_num_seqs=2,
        gpu_memory_utilization=0.3,
        limit_mm_per_prompt={"image": 1, "video": 0},
        seed=0,
    )
    tokenizer = llm.get_tokenizer()
    requests = []
    for text, with_image in CASES.values():
        parts = [{"type": "image"}] if with_image else []
        parts.append({"type": "text", "text": text})
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": parts}],
            tokenize=False,
            add_generation_prompt=True,
            enable_thinking=False,
        )
        request: dict[str, Any] = {"prompt": prompt}
        if with_image:
            request["multi_modal_data"] = {"image": _image()}
        requests.append(request)
    params = SamplingParams(
        temperature=0.0, max_tokens=MAX_TOKENS, logprobs=TOP_LOGPROBS, ignore_eos=True
    )
    outputs = llm.generate(requests, params, use_tqdm=False)
    results: dict[str, Any] = {"layer": llm.apply_model(_layer_methods)[0]}
    for name, output in zip(CASES, outputs, strict=True):
        completion = output.outputs[0]
        results[name] = {
            "prompt_ids": list(output.prompt_token_ids),
            "tokens": list(completion.token_ids),
            "top": [{str(t): lp.logprob for t, lp in step.items()} for step in completion.logprobs],
        }
    return results


def _generate(model_dir: Path, out: Path) -> dict[str, Any]:
    child = subprocess.run(
        [sys.executable, __file__, str(model_dir), str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert child.returncode == 0, child.stderr[-6000:]
    return json.loads(out.read_text())


def check_top5_close(reference: dict, tested: dict, name: str) -> int:
    """vLLM's rule; returns how many leading tokens are identical."""
    pairs = zip(reference["tokens"], tested["tokens"], strict=True)
    for step, (ref_tok, test_tok) in enumerate(pairs):
        if ref_tok != test_tok:
            ref_top, test_top = reference["top"][step], tested["top"][step]
            assert str(ref_tok) in test_top and str(test_tok) in ref_top, (
                f"{name}: step {step} chose {ref_tok} (bfloat16) vs {test_tok} (FP8), "
                f"not in each other's top {TOP_LOGPROBS}"
            )
            return step
    return len(reference["tokens"])


@pytest.mark.parametrize("variant", ["mini", "s1"])
def test_fp8_greedy_tokens_follow_bf16(variant: str, tmp_path: Path) -> None:
    from interns1_plugin.testing.tiny_interns1 import VARIANTS, build_tiny_interns1, fp8_variant

    fp8_dir = build_tiny_interns1(tmp_path / "fp8", variant, fp8=True)
    bf16_dir = build_tiny_interns1(tmp_path / "bf16", fp8_variant(VARIANTS[variant]))
    reference = _generate(bf16_dir, tmp_path / "bf16.json")
    tested = _generate(fp8_dir, tmp_path / "fp8.json")

    assert reference["layer"]["method"] == "UnquantizedLinearMethod"
    assert tested["layer"]["method"] == "Fp8LinearMethod", tested["layer"]
    assert tested["layer"]["dtype"] == "torch.float8_e4m3fn"
    for name in CASES:
        ref, test = reference[name], tested[name]
        assert test["prompt_ids"] == ref["prompt_ids"], f"{name}: prompts differ"
        assert len(test["tokens"]) == MAX_TOKENS
        check_top5_close(ref, test, name)


if __name__ == "__main__":
    Path(sys.argv[2]).write_text(json.dumps(run_vllm(Path(sys.argv[1]))))
