"""The plugin's Intern-S1 model split over two CPU ranks gives the single-rank tokens and logprobs.

Both tiny checkpoints (`mini`: dense Qwen3 + LayerNorm ViT; `s1`: Qwen3-MoE + RMSNorm ViT with
full-width qk-norm), built with `divisible_by=2` (2 key/value and 4 query heads, so the KV heads
are split rather than replicated; 4 experts and 2 vision heads already divide), decode a text
prompt and a 2:1 image prompt (several tiles) greedily in float32 under each layout, through
vLLM's multiprocessing executor (one process per rank, one core each). What each layout splits:

- tensor parallel 2: the language model's attention (q/k/v heads, o_proj), dense MLP and every
  expert's gate/up/down are sharded by vLLM's parallel linears; embeddings and `lm_head` are
  split over the vocabulary; the MoE router and the norms are replicated. The InternViT tower
  is sharded as well, because its 2 heads divide 2: q/k/v and fc1 by columns, the output
  projection and fc2 by rows, and the full-width qk-norm all-gathers its input (with heads
  that do not divide, e.g. InternViT-6B's 25, every rank runs the whole tower on its share of
  the tiles instead). The projector's linears are column- then row-parallel; its LayerNorm,
  the patch embedding, CLS/position embeddings, ViT norms and layer scales are replicated.
- pipeline parallel 2: vLLM's Qwen3 model keeps the token embeddings and layer 0 on the first
  stage, layer 1, the final norm and `lm_head` on the second; each stage holds placeholders
  for the other's layers, whose weights are skipped at load. The vision tower and projector
  are built and loaded on both stages but run only on the first, where the image embeddings
  are merged into the input embeddings; the second stage receives hidden states and residual.
- tensor parallel 2 with expert parallelism (MoE only): each rank holds 2 of the 4 experts
  whole instead of half of every expert; attention stays tensor parallel. Skipped on CPU,
  where vLLM's MoE kernel does not support it (see `CPU_UNSUPPORTED`).

Each layout must choose the same tokens as the single-rank run and agree on the chosen tokens'
logprobs to `LOGPROB_ATOL`. vLLM never runs in the test process: the single-rank reference runs
once per model in a child of its own, and the layouts run one after another in a second child
(one vLLM import for all). Each child leads its own process group, so a timeout kills its ranks.
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
    chat_requests,
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
#: Layouts that only mean something for the MoE model.
MOE_LAYOUTS = frozenset({"tp2_ep"})
#: Layouts vLLM's CPU backend cannot run, and why; skipped there, run elsewhere.
CPU_UNSUPPORTED: dict[str, str] = {
    "tp2_ep": cpu_expert_parallel_crash(
        2, 4, "SIGSEGV in cpu_fused_moe.cpp (vLLM's own Qwen3MoeForCausalLM crashes the same way)"
    ),
}

#: name -> chat-template user parts; an image part becomes one 2:1 image (several tiles).
PROMPTS: dict[str, list[dict[str, str]]] = {
    "text": [{"type": "text", "text": "Name three noble gases."}],
    "image": [{"type": "image"}, {"type": "text", "text": "Describe it."}],
}


def _image() -> Any:
    """Wider than tall, so the processor cuts several tiles."""
    return noise_image(300, 600)


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
        "limit_mm_per_prompt": {"image": 1, "video": 0},
        "seed": 0,
    }
    if layout:
        engine_args |= layout_engine_args(layout)
        os.environ.update(cpu_rank_env(layout_ranks(layout)))
    llm = LLM(**engine_args)
    try:
        loaded = time.monotonic()
        params = SamplingParams(temperature=0.0, max_tokens=MAX_TOKENS, logprobs=TOP_LOGPROBS)
        requests = chat_requests(llm.get_tokenizer(), PROMPTS.values(), _image)
        outputs = llm.generate(requests, params, use_tqdm=False)
        done = time.monotonic()
    finally:
        llm.llm_engine.engine_core.shutdown()  # stop this layout's ranks before the next starts
    results: dict[str, Any] = {"seconds": {"start": loaded - started, "generate": done - loaded}}
    for name, output in zip(PROMPTS, outputs, strict=True):
        results[name] = completion_record(output)
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


@pytest.fixture(scope="module", params=["mini", "s1"])
def variant(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def checkpoint(variant: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from interns1_plugin.testing.tiny_interns1 import build_tiny_interns1

    root = tmp_path_factory.mktemp(f"interns1-{variant}-dist")
    return build_tiny_interns1(root / "model", variant, dtype="float32", divisible_by=2)


def _skip_reason(variant: str, layout: str) -> str | None:
    if layout in MOE_LAYOUTS and variant != "s1":
        return "expert parallelism needs the MoE model"
    return cpu_skip_reason(layout, CPU_UNSUPPORTED)


@pytest.fixture(scope="module")
def single_rank(checkpoint: Path) -> dict[str, Any]:
    """The reference: the same prompts on one rank, in a child of its own."""
    return run_in_child(checkpoint, {"single": {}}, checkpoint.parent / "single.json")["single"]


@pytest.fixture(scope="module")
def parallel_runs(variant: str, checkpoint: Path) -> dict[str, Any]:
    """Every layout this model and platform can run, one after another in one child."""
    layouts = {name: args for name, args in LAYOUTS.items() if not _skip_reason(variant, name)}
    return run_in_child(checkpoint, layouts, checkpoint.parent / "parallel.json")


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_layout_matches_single_rank(
    variant: str, layout: str, request: pytest.FixtureRequest
) -> None:
    reason = _skip_reason(variant, layout)
    if reason:
        pytest.skip(reason)
    reference = request.getfixturevalue("single_rank")
    tested = request.getfixturevalue("parallel_runs")[layout]
    worst = assert_same_decoding(reference, tested, layout, PROMPTS, LOGPROB_ATOL)
    print(
        f"{variant}/{layout}: max logprob gap {worst:.2e}; seconds {tested['seconds']}, "
        f"children {reference['child_seconds']:.0f} (single rank), "
        f"{tested['child_seconds']:.0f} (all layouts)"
    )


if __name__ == "__main__":
    child_main(lambda model_dir, layouts: run_layouts(run_vllm, model_dir, layouts))
