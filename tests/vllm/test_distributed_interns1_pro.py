"""The plugin's Intern-S1-Pro split over two CPU ranks gives the single-rank tokens and logprobs.

The tiny Pro checkpoint (FoPE Qwen3-MoE text model with grouped routing, Qwen3-VL vision tower
without deepstack, time-series encoder; 4 query / 2 KV heads, 8 experts in 2 router groups,
4 vision heads, so everything that can be split divides 2) decodes a text prompt, an image
prompt and a time-series prompt greedily in float32 under each layout, through vLLM's
multiprocessing executor (one process per rank, one core each). What each layout splits:

- tensor parallel 2: the language model's attention (q/k/v heads, o_proj) and every expert's
  gate/up/down are sharded by vLLM's parallel linears and fused MoE; embeddings and `lm_head`
  are split over the vocabulary; the router gate, q/k-norms and RMSNorms are replicated. The
  FoPE module's learned `cos_coef`/`sin_coef` are per KV head: each rank builds the module for
  its own KV heads and `FourierRotaryEmbedding`'s weight loader hands it its slice of them
  (with fewer KV heads than ranks it would replicate them instead). The Qwen3-VL vision tower
  shards its heads (the checkpoint's fused `qkv` is cut into each rank's q, k and v heads by
  `QKVParallelLinear`'s loader, `proj` is row-parallel), its MLPs and the merger's two linears
  (column, then row); its norms, patch embedding and position table are replicated. The
  time-series encoder is plain torch, replicated whole on every rank.
- pipeline parallel 2: the first stage runs the token embeddings and layer 0, the second layer
  1, the final norm and `lm_head`; each stage holds a placeholder for the other's layer, whose
  weights are skipped at load (vLLM's Qwen3-MoE body builds the embeddings, final norm and
  `lm_head` on both stages, each used only where it runs). The model-level FoPE module and both
  towers are built and loaded on every stage, but the towers run only on the first, where their
  features replace the placeholder embeddings; the second stage receives hidden states and
  residual and rotates its layer's q/k with its own copy of the coefficients.
- tensor parallel 2 with expert parallelism: each rank holds 4 of the 8 experts whole (one
  router group each) instead of half of every expert; attention and the vision tower stay
  tensor parallel. Skipped on CPU, where vLLM's MoE kernel does not support it (see
  `CPU_UNSUPPORTED`); it runs on GPU machines.

The image and the series expand to many placeholder tokens (`test_prompts_carry_their_media`),
so the towers' features weigh on the logprobs; EOS is ignored so every prompt decodes
`MAX_TOKENS` steps. The comparison has teeth: giving both tensor-parallel ranks the first KV
head's FoPE coefficients moves chosen logprobs by 0.5 to 1.5, and cutting the vision tower's
fused `qkv` into contiguous halves instead of per-head q/k/v moves the image prompt's by 0.2.

Each layout must choose the same tokens as the single-rank run and agree on the chosen tokens'
logprobs to `LOGPROB_ATOL`. vLLM never runs in the test process: the single-rank reference runs
in a child of its own, and the layouts run one after another in a second child (one vLLM import
for all). Each child leads its own process group, so a timeout kills its ranks.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from interns1_plugin.testing.distributed import (
    CPU_LAYOUTS,
    assert_same_decoding,
    child_env,
    child_main,
    completion_record,
    cpu_expert_parallel_crash,
    cpu_rank_env,
    cpu_skip_reason,
    layout_engine_args,
    layout_ranks,
    noise_image,
    run_layouts,
    run_layouts_in_child,
)

pytest.importorskip("vllm")

pytestmark = [pytest.mark.vllm, pytest.mark.distributed]

MAX_TOKENS = 4
TOP_LOGPROBS = 2
#: float32 on every side: only reduction order differs between layouts.
LOGPROB_ATOL = 1e-4
#: Seconds one vLLM run may take (start-up dominates; two ranks share two cores).
RUN_TIMEOUT = 600

#: Engine arguments of each layout, on top of the single-rank ones (pipeline parallel with
#: the CPU runner's warm-up workaround; see `CPU_LAYOUTS`).
LAYOUTS: dict[str, dict[str, Any]] = CPU_LAYOUTS
#: Layouts vLLM's CPU backend cannot run, and why; skipped there, run elsewhere.
CPU_UNSUPPORTED: dict[str, str] = {
    "tp2_ep": cpu_expert_parallel_crash(
        4,
        8,
        "the first step dies with SIGSEGV in cpu_fused_moe.cpp (worker exit -11), "
        "as for Intern-S1's MoE",
    ),
}

IMAGE_PLACEHOLDER = "<|vision_start|><|image_pad|><|vision_end|>"
SERIES_PLACEHOLDER = "<|ts_start|><|ts_token|><|ts_end|>"
#: The tokens the processor repeats once per feature row of an image or a series.
PLACEHOLDER_TOKENS = ("<|image_pad|>", "<|ts_token|>")
#: name -> user message (placeholders where its media go).
PROMPTS: dict[str, str] = {
    "text": "Name three noble gases.",
    "image": f"{IMAGE_PLACEHOLDER}Describe it.",
    "time_series": f"{SERIES_PLACEHOLDER}What does this signal do?",
}


def _image() -> Any:
    """8 x 12 patches (24 merged tokens after the 2 x 2 merge)."""
    return noise_image(128, 192)


def _series() -> dict[str, Any]:
    import numpy as np

    return {"values": np.sin(np.arange(3000) / 7.0), "sampling_rate": 50.0}


def _multi_modal_data(message: str) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if IMAGE_PLACEHOLDER in message:
        data["image"] = _image()
    if SERIES_PLACEHOLDER in message:
        data["time_series"] = _series()
    return data


def _requests() -> list[dict[str, Any]]:
    """Every prompt as a ChatML user turn, with its media where it has some."""
    return [
        {
            "prompt": f"<|im_start|>user\n{message}<|im_end|>\n<|im_start|>assistant\n",
            "multi_modal_data": _multi_modal_data(message),
        }
        for message in PROMPTS.values()
    ]


def run_vllm(model_dir: Path, layout: dict[str, Any]) -> dict[str, Any]:
    """Greedy generation of every prompt in one `generate` call, in this (child) process."""
    from vllm import LLM, SamplingParams

    started = time.monotonic()
    engine_args: dict[str, Any] = {
        "model": str(model_dir),
        "dtype": "float32",
        "enforce_eager": True,
        "max_model_len": 1024,
        "max_num_seqs": len(PROMPTS),
        "kv_cache_memory_bytes": 16 << 20,
        "limit_mm_per_prompt": {"image": 1, "video": 0, "time_series": 1},
        "seed": 0,
    }
    if layout:
        engine_args |= layout_engine_args(layout)
        os.environ.update(cpu_rank_env(layout_ranks(layout)))
    llm = LLM(**engine_args)
    try:
        loaded = time.monotonic()
        params = SamplingParams(
            temperature=0.0, max_tokens=MAX_TOKENS, logprobs=TOP_LOGPROBS, ignore_eos=True
        )
        outputs = llm.generate(_requests(), params, use_tqdm=False)
        done = time.monotonic()
        tokenizer = llm.get_tokenizer()
        placeholder_ids = {tokenizer.convert_tokens_to_ids(t) for t in PLACEHOLDER_TOKENS}
    finally:
        llm.llm_engine.engine_core.shutdown()  # stop this layout's ranks before the next starts
    results: dict[str, Any] = {"seconds": {"start": loaded - started, "generate": done - loaded}}
    for name, output in zip(PROMPTS, outputs, strict=True):
        placeholders = sum(t in placeholder_ids for t in output.prompt_token_ids)
        results[name] = {"placeholders": placeholders, **completion_record(output)}
    return results


def run_in_child(model_dir: Path, layouts: dict[str, dict[str, Any]], out: Path) -> dict[str, Any]:
    """Run this file as a script for `layouts`; fail with its stderr tail if it fails."""
    return run_layouts_in_child(
        __file__,
        model_dir,
        layouts,
        out,
        timeout_per_layout=RUN_TIMEOUT,
        env=child_env(drop=["VLLM_CPU_KVCACHE_SPACE"]),
    )


def _skip_reason(layout: str) -> str | None:
    return cpu_skip_reason(layout, CPU_UNSUPPORTED)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from interns1_plugin.testing.tiny_interns1_pro import build_tiny_interns1_pro

    root = tmp_path_factory.mktemp("interns1-pro-dist")
    return build_tiny_interns1_pro(root / "model", dtype="float32")


@pytest.fixture(scope="module")
def single_rank(checkpoint: Path) -> dict[str, Any]:
    """The reference: the same prompts on one rank, in a child of its own."""
    return run_in_child(checkpoint, {"single": {}}, checkpoint.parent / "single.json")["single"]


@pytest.fixture(scope="module")
def parallel_runs(checkpoint: Path) -> dict[str, Any]:
    """Every layout this platform can run, one after another in one child."""
    layouts = {name: args for name, args in LAYOUTS.items() if not _skip_reason(name)}
    return run_in_child(checkpoint, layouts, checkpoint.parent / "parallel.json")


def test_prompts_carry_their_media(single_rank: dict[str, Any]) -> None:
    """The image and series prompts expand to many feature rows, so the towers really run."""
    counts = {name: single_rank[name]["placeholders"] for name in PROMPTS}
    assert counts["text"] == 0, counts
    assert counts["image"] > 1 and counts["time_series"] > 1, counts


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_layout_matches_single_rank(layout: str, request: pytest.FixtureRequest) -> None:
    reason = _skip_reason(layout)
    if reason:
        pytest.skip(reason)
    reference = request.getfixturevalue("single_rank")
    tested = request.getfixturevalue("parallel_runs")[layout]
    worst = assert_same_decoding(reference, tested, layout, PROMPTS, LOGPROB_ATOL)
    print(
        f"pro/{layout}: max logprob gap {worst:.2e}; seconds {tested['seconds']}, "
        f"children {reference['child_seconds']:.0f} (single rank), "
        f"{tested['child_seconds']:.0f} (all layouts)"
    )


if __name__ == "__main__":
    child_main(lambda model_dir, layouts: run_layouts(run_vllm, model_dir, layouts))
