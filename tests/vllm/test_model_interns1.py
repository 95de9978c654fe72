"""The plugin's Intern-S1 model on vLLM against transformers' native InternVL, token by token.

Both tiny checkpoints (`mini`: Qwen3 + LayerNorm ViT with attention bias; `s1`: Qwen3-MoE +
RMSNorm ViT with qk-norm) run text, one multi-tile image, two images (both orders), a video and
an image with a video. vLLM runs in a child process (this file run as a script), so its engine
state never meets the other tests; the reference runs here. The comparison is vLLM's
`check_logprobs_close` rule (tokens equal up to the first divergence, where each side's token is
in the other's top 5) plus closeness of the chosen tokens' logprobs, and the prompt token ids must
be identical (the placeholder expansion is the same on both sides).
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

pytestmark = pytest.mark.vllm

ARCHITECTURE = "InternS1ForConditionalGeneration"
MODEL_CLASS = "interns1_plugin.vllm.models.interns1:InternS1ForConditionalGeneration"
MAX_TOKENS = 8
TOP_LOGPROBS = 5
#: float32 on both sides: differences come from kernel order only.
LOGPROB_ATOL = 1e-3


def _inputs() -> dict[str, Any]:
    """Deterministic pixels: a 2x1-grid image, a 1x2-grid image, a 3-frame raw video."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    wide = Image.fromarray(rng.integers(0, 256, (300, 600, 3), dtype=np.uint8))
    tall = Image.fromarray(rng.integers(0, 256, (512, 256, 3), dtype=np.uint8))
    video = rng.integers(0, 256, (3, 240, 320, 3), dtype=np.uint8)
    return {"wide": wide, "tall": tall, "video": video}


#: name -> (user message parts, images by name, videos by name); parts are chat-template parts.
CASES: dict[str, tuple[list[dict[str, str]], list[str], list[str]]] = {
    "text": ([{"type": "text", "text": "Name three noble gases."}], [], []),
    "image": ([{"type": "image"}, {"type": "text", "text": "Describe it."}], ["wide"], []),
    "two_images": (
        [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "Compare."}],
        ["wide", "tall"],
        [],
    ),
    "two_images_swapped": (
        [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "Compare."}],
        ["tall", "wide"],
        [],
    ),
    "video": ([{"type": "video"}, {"type": "text", "text": "What happens?"}], [], ["video"]),
    "image_and_video": (
        [{"type": "image"}, {"type": "video"}, {"type": "text", "text": "Same scene?"}],
        ["tall"],
        ["video"],
    ),
}


def _prompt(tokenizer: Any, parts: list[dict[str, str]]) -> str:
    """The checkpoint's chat template: each image becomes `<IMG_CONTEXT>`, each video `<video>`."""
    messages = [{"role": "user", "content": parts}]
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
    )


def _result(prompt_ids: list[int], tokens: list[int], tops: list[dict[int, float]]) -> dict:
    return {
        "prompt_ids": prompt_ids,
        "tokens": tokens,
        "top": [{str(k): v for k, v in top.items()} for top in tops],
    }


def run_vllm(model_dir: Path, *, builtin: bool = False) -> dict[str, dict]:
    """Greedy generation with logprobs through `vllm.LLM`, in this (child) process.

    `builtin` keeps vLLM's own Intern-S1 model (it imports torchvision: GPU machines only).
    """
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    if builtin:
        from interns1_plugin.vllm.models import KEEP_BUILTIN_ENV

        os.environ[KEEP_BUILTIN_ENV] = "1"
    from vllm import LLM, ModelRegistry, SamplingParams

    from interns1_plugin.configs import register_with_transformers

    register_with_transformers()
    if not builtin:
        ModelRegistry.register_model(ARCHITECTURE, MODEL_CLASS)
    llm = LLM(
        model=str(model_dir),
        dtype="float32",
        enforce_eager=True,
        max_model_len=4096,
        max_num_seqs=2,
        kv_cache_memory_bytes=64 << 20,
        limit_mm_per_prompt={"image": 2, "video": 1},
        seed=0,
    )
    tokenizer = llm.get_tokenizer()
    pixels = _inputs()
    requests = []
    for parts, images, videos in CASES.values():
        data: dict[str, Any] = {}
        if images:
            data["image"] = [pixels[name] for name in images]
        if videos:
            data["video"] = [pixels[name] for name in videos]
        requests.append({"prompt": _prompt(tokenizer, parts), "multi_modal_data": data})
    params = SamplingParams(temperature=0.0, max_tokens=MAX_TOKENS, logprobs=TOP_LOGPROBS)
    outputs = llm.generate(requests, params, use_tqdm=False)
    results = {}
    for name, output in zip(CASES, outputs, strict=True):
        completion = output.outputs[0]
        tops = [{tok: lp.logprob for tok, lp in step.items()} for step in completion.logprobs]
        results[name] = _result(list(output.prompt_token_ids), list(completion.token_ids), tops)
    return results


def run_transformers(model_dir: Path) -> dict[str, dict]:
    """The same requests through `InternVLForConditionalGeneration` and the plugin's processor."""
    import torch
    from transformers import InternVLForConditionalGeneration

    from interns1_plugin.configs import register_with_transformers
    from interns1_plugin.processing import InternS1Processor

    register_with_transformers()
    processor = InternS1Processor.from_pretrained(model_dir)
    model = InternVLForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()
    pixels = _inputs()
    results = {}
    for name, (parts, images, videos) in CASES.items():
        inputs = processor(
            text=_prompt(processor.tokenizer, parts),
            images=[pixels[n] for n in images] or None,
            videos=[pixels[n] for n in videos] or None,
        )
        with torch.no_grad():
            out = model.generate(
                **inputs,
                max_new_tokens=MAX_TOKENS,
                do_sample=False,
                output_logits=True,
                return_dict_in_generate=True,
            )
        prompt_ids = inputs["input_ids"][0].tolist()
        tokens = out.sequences[0, len(prompt_ids) :].tolist()
        tops = []
        for logits in out.logits:
            logprobs = torch.log_softmax(logits[0].float(), dim=-1)
            top = logprobs.topk(TOP_LOGPROBS)
            tops.append(dict(zip(top.indices.tolist(), top.values.tolist(), strict=True)))
        results[name] = _result(prompt_ids, tokens, tops)
    return results


def check_logprobs_close(reference: dict, tested: dict, name: str) -> int:
    """vLLM's rule, plus the chosen tokens' logprobs; returns how many tokens matched."""
    pairs = zip(reference["tokens"], tested["tokens"], strict=True)
    for step, (ref_tok, test_tok) in enumerate(pairs):
        ref_top, test_top = reference["top"][step], tested["top"][step]
        if ref_tok != test_tok:
            assert str(ref_tok) in test_top and str(test_tok) in ref_top, (
                f"{name}: step {step} chose {ref_tok} (reference) vs {test_tok} (vLLM), "
                f"not in each other's top {TOP_LOGPROBS}"
            )
            return step
        ref_lp, test_lp = ref_top[str(ref_tok)], test_top[str(test_tok)]
        assert abs(ref_lp - test_lp) <= LOGPROB_ATOL, (
            f"{name}: step {step} token {ref_tok} logprob {ref_lp} (reference) vs {test_lp} (vLLM)"
        )
    return len(reference["tokens"])


@pytest.fixture(scope="module", params=["mini", "s1"])
def tiny_checkpoint(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    from interns1_plugin.testing.tiny_interns1 import build_tiny_interns1

    root = tmp_path_factory.mktemp(f"interns1-{request.param}")
    return build_tiny_interns1(root / "model", request.param, dtype="float32")


def test_greedy_logprobs_match_transformers(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "vllm.json"
    child = subprocess.run(
        [sys.executable, __file__, str(tiny_checkpoint), str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert child.returncode == 0, child.stderr[-6000:]
    tested = json.loads(out.read_text())
    reference = run_transformers(tiny_checkpoint)

    for name in CASES:
        ref, test = reference[name], tested[name]
        assert test["prompt_ids"] == ref["prompt_ids"], f"{name}: prompt expansion differs"
        assert check_logprobs_close(ref, test, name) >= 1, f"{name}: first token differs"
    # The pixels and their order reach the logits: swapping two images changes the output.
    first = [reference[n]["top"][0][str(reference[n]["tokens"][0])] for n in CASES]
    assert len({round(lp, 4) for lp in first}) == len(CASES)


def test_registration_takes_over_the_builtin(monkeypatch: pytest.MonkeyPatch) -> None:
    from vllm import ModelRegistry

    from interns1_plugin.vllm.models import KEEP_BUILTIN_ENV, register_models

    saved = ModelRegistry.models.get(ARCHITECTURE)
    try:
        monkeypatch.setenv(KEEP_BUILTIN_ENV, "1")
        assert register_models() == []
        assert ModelRegistry.models.get(ARCHITECTURE) is saved

        monkeypatch.delenv(KEEP_BUILTIN_ENV)
        taken = register_models()
        assert ARCHITECTURE in taken
        assert "InternS1ProForConditionalGeneration" in taken
        entry = ModelRegistry.models[ARCHITECTURE]
        assert f"{entry.module_name}:{entry.class_name}" == MODEL_CLASS
    finally:
        if saved is not None:
            ModelRegistry.models[ARCHITECTURE] = saved


if __name__ == "__main__":
    builtin = sys.argv[3:] == ["builtin"]
    Path(sys.argv[2]).write_text(json.dumps(run_vllm(Path(sys.argv[1]), builtin=builtin)))
