"""A block-FP8 Intern-S1 split over two GPUs gives the one-GPU tokens, and follows bfloat16.

The CPU distributed tests (`tests/vllm/test_distributed_interns1.py`) prove the plugin's
sharding in float32; CPU has no block-FP8 GEMM, so this file proves the same splits with the
FP8 checkpoint layout (e4m3 weights, one float32 `weight_scale_inv` per 128x128 block, dynamic
activations quantized per token in groups of 128) on two CUDA devices.

Where the FP8 weights split. Every per-rank width of an FP8 weight must be whole 128-blocks:
a shard that ends inside a block needs part of a block's single scale, which vLLM either refuses
or works around. The stock FP8 tiny checkpoint, `build_tiny_interns1(dir, "s1", fp8=True,
divisible_by=2)`, has a 128-wide hidden size, 4 query and 4 key/value heads of 32 (q, k and v
each 128 wide) and 4 experts 128 wide. Under tensor parallel 2 each rank would hold:

- q/k/v: 64 rows of each, half a block. vLLM waives its block check for fused column layers
  (`allow_fp8_block_shape_mismatch`), but each half would still share one block scale;
- o_proj (row-parallel): a 64-wide half of its 128-wide input, which vLLM refuses when it builds
  the layer: "Weight input_size_per_partition = 64 is not divisible by weight quantization
  block_k = 128";
- expert gate/up/down: 64-wide halves of the 128-wide intermediate. vLLM does not refuse these:
  it refines the expert scales to 64x64 blocks, which only its Triton MoE kernels take.

Expert parallelism keeps each expert whole (2 of 4 experts per rank, 128 wide) but leaves
attention tensor parallel, so the o_proj refusal remains: the stock widths cannot run at TP=2
whatever the expert layout. `divisible_by=8` would fix attention (8 + 8 heads, 128 per rank)
but leave the experts split in halves, and give the ViT 8 heads of 8. So this file builds
`fp8_variant(S1)` with 8 query and 8 key/value heads and 256-wide experts (`wide_fp8_s1`).
It keeps hidden 128 and head_dim 32, and its FP8 weights split like this:

    weight (global, out x in)          TP=2, per rank          TP=2 + EP, per rank
    qkv_proj   (256+256+256) x 128     (128+128+128) x 128     same (attention stays TP)
    o_proj     128 x 256               128 x 128               same
    experts    4 x (256+256) x 128     4 x (128+128) x 128     2 x (256+256) x 128
    (gate/up; down is the transpose)

Every shard is whole blocks (`fp8_shard_widths`, checked against the stock widths in
`test_wide_checkpoint_splits_on_whole_blocks`). Hidden-size dimensions (column inputs, row
outputs) are never split. The router, `lm_head`, ViT and projector are not FP8; TP splits them
as on CPU. The BF16 twin is the same variant, seed and bfloat16 weights the FP8 file was
quantized from, built without quantization, so it is the accuracy reference.

Since the shards are whole blocks, each rank's weights and scales are exactly the one-GPU
ones. Activation groups are too: o_proj's and down_proj's 128-groups along the split input are
the ranks' halves. What differs between layouts is only the order of sums: each rank rounds
its partial o_proj/down_proj output to bfloat16 before the all-reduce, instead of one
float32-accumulated GEMM. `LOGPROB_ATOL` allows for that.

Cases (text plus one 2:1 image, greedy, EOS ignored, `MAX_TOKENS` steps), each run in a child
process of its own (this file run as a script, as the CPU distributed tests do):

- FP8 TP=2 against FP8 TP=1: same prompt ids and tokens, chosen-token logprobs within
  `LOGPROB_ATOL`, every rank holding the shard widths above;
- FP8 TP=2 with expert parallelism against FP8 TP=1: the same, with 2 whole experts per rank;
- FP8 TP=1 against BF16 TP=1: FP8 rounds weights and activations, so tokens may part. The test
  reports agreement instead of demanding equality: vLLM's rule at the first divergence (each
  side's token in the other's top 5), and bounds on the agreement (`MIN_BF16_AGREEMENT`) and on
  the logprob gap before it (`BF16_LOGPROB_ATOL`).

The TP=2 cases skip with fewer than two visible CUDA devices; the FP8/BF16 case needs one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from interns1_plugin.testing.distributed import (
    assert_same_decoding,
    chat_requests,
    child_env,
    child_main,
    completion_record,
    layout_engine_args,
    noise_image,
    run_script,
)

if TYPE_CHECKING:
    from interns1_plugin.testing.tiny_interns1 import TinyVariant

pytest.importorskip("vllm")

pytestmark = [pytest.mark.gpu, pytest.mark.vllm, pytest.mark.distributed]

FP8_BLOCK = 128
MAX_TOKENS = 8
TOP_LOGPROBS = 5
#: Seconds one vLLM run may take, start-up included.
RUN_TIMEOUT = 900

#: Chosen-token logprob gap allowed between FP8 layouts. Only the bfloat16 rounding of partial
#: sums differs (see the module docstring). On CPU, the bfloat16 twin at TP=2 against TP=1 moved
#: chosen logprobs by up to 0.0157, one bfloat16 step (2**-6) at the logprobs' magnitude (~3),
#: at half the steps. So 2e-2 would fail as soon as two such steps add up; 5e-2
#: allows three. The bug this must catch is subtler than a crash: emulated in float32, giving
#: rank 1's blocks rank 0's block scales moved chosen logprobs by up to 0.10 (text) and 0.14
#: (image) and changed a text token.
LOGPROB_ATOL = 5e-2
#: FP8 against bfloat16. Emulated in float32 on CPU, FP8 weight rounding alone kept 12 of 16
#: greedy tokens (the text prompt parted where its top-2 margin was 0.06) and moved chosen
#: logprobs on the agreed prefix by up to 0.12. Rounding the activations as well adds noise of
#: the same order. The smallest top-2 margins are 0.06 to 0.09, and the image prompt's first
#: step is one of them, so an honest run may part early. The bounds are therefore a quarter
#: of the tokens, which a run whose FP8 path breaks decoding from the start will miss, and
#: about three times the emulated gap.
MIN_BF16_AGREEMENT = 0.25
BF16_LOGPROB_ATOL = 0.5

#: Engine arguments of each layout, on top of the one-GPU ones.
LAYOUTS: dict[str, dict[str, Any]] = {
    "tp1": {},
    "tp2": {"tensor_parallel_size": 2},
    "tp2_ep": {"tensor_parallel_size": 2, "enable_expert_parallel": True},
}

#: name -> chat-template user parts; an image part becomes one 2:1 image (two tiles + thumbnail).
PROMPTS: dict[str, list[dict[str, str]]] = {
    "text": [{"type": "text", "text": "Name three noble gases."}],
    "image": [{"type": "image"}, {"type": "text", "text": "Describe it."}],
}


def wide_fp8_s1() -> TinyVariant:
    """`fp8_variant(S1)` widened so every TP=2 and EP shard of an FP8 weight is whole blocks.

    8 query and 8 key/value heads of 32 give 128 q, k and v rows per rank; 256-wide experts give
    128 per rank. Hidden size, head_dim, expert count and the ViT stay those of `fp8_variant`.
    """
    from interns1_plugin.testing.tiny_interns1 import S1, fp8_variant

    base = fp8_variant(S1)
    heads = 2 * FP8_BLOCK // base.head_dim
    return replace(base, text_heads=heads, text_kv_heads=heads, moe_intermediate=2 * FP8_BLOCK)


# --- shard widths ------------------------------------------------------------------------------


def fp8_shard_widths(text: Mapping[str, Any], tp: int, ep: bool) -> dict[str, list[int]]:
    """Per-rank width of every split dimension of the FP8 weights, from the text config.

    Keys name the weight and the dimension; hidden-size dimensions are left out because no
    layout splits them. With `ep` the experts are whole and divided between the ranks.
    """
    head_dim = text["head_dim"]
    q = text["num_attention_heads"] * head_dim
    kv = text["num_key_value_heads"] * head_dim
    inner = text["moe_intermediate_size"]
    expert_tp = 1 if ep else tp
    return {
        "qkv_proj rows (q, k, v)": [q // tp, kv // tp, kv // tp],
        "o_proj input": [q // tp],
        "experts gate/up rows, down input": [inner // expert_tp],
    }


def partial_blocks(widths: Mapping[str, list[int]]) -> dict[str, list[int]]:
    """The entries of `fp8_shard_widths` that end inside a 128-block."""
    return {name: w for name, w in widths.items() if any(x % FP8_BLOCK for x in w)}


def expected_rank_shards(text: Mapping[str, Any], tp: int, ep: bool) -> dict[str, Any]:
    """What `_rank_shards` must report on every rank and layer for this layout."""
    widths = fp8_shard_widths(text, tp, ep)
    experts = text["num_experts"]
    return {
        "qkv_out": widths["qkv_proj rows (q, k, v)"],
        "o_in": widths["o_proj input"][0],
        "experts_local": experts // tp if ep else experts,
        "experts_inner": widths["experts gate/up rows, down input"][0],
    }


# --- the child: one vLLM run -----------------------------------------------------------------


def _image() -> Any:
    """Wider than tall, so the processor cuts two tiles plus a thumbnail."""
    return noise_image(300, 600)


def _rank_shards(model: Any) -> list[dict[str, Any]]:
    """Each language-model layer's shard sizes and quantization on this rank (in the worker).

    Reads the layers' logical partition sizes rather than weight shapes, which FP8 kernels may
    re-lay out after loading.
    """
    layers = []
    for layer in model.language_model.model.layers:
        attn = layer.self_attn
        experts = next(
            m for m in layer.mlp.experts.modules() if hasattr(m, "intermediate_size_per_partition")
        )
        w13 = getattr(experts, "w13_weight", None)
        layers.append(
            {
                "qkv_method": type(attn.qkv_proj.quant_method).__name__,
                "qkv_dtype": str(attn.qkv_proj.weight.dtype),
                "qkv_out": list(attn.qkv_proj.output_partition_sizes),
                "o_in": attn.o_proj.input_size_per_partition,
                "experts_method": type(experts.quant_method).__name__,
                "experts_dtype": None if w13 is None else str(w13.dtype),
                "experts_local": experts.local_num_experts,
                "experts_inner": experts.intermediate_size_per_partition,
            }
        )
    return layers


def run_vllm(model_dir: Path, layout: dict[str, Any]) -> dict[str, Any]:
    """Greedy generation of every prompt in one `generate` call, in this (child) process."""
    from vllm import LLM, SamplingParams

    started = time.monotonic()
    engine_args: dict[str, Any] = {
        "model": str(model_dir),
        "dtype": "bfloat16",
        "enforce_eager": True,
        "max_model_len": 4096,
        "max_num_seqs": len(PROMPTS),
        "gpu_memory_utilization": 0.3,
        "limit_mm_per_prompt": {"image": 1, "video": 0},
        "seed": 0,
    } | layout_engine_args(layout)
    llm = LLM(**engine_args)
    try:
        loaded = time.monotonic()
        params = SamplingParams(
            temperature=0.0, max_tokens=MAX_TOKENS, logprobs=TOP_LOGPROBS, ignore_eos=True
        )
        requests = chat_requests(llm.get_tokenizer(), PROMPTS.values(), _image)
        outputs = llm.generate(requests, params, use_tqdm=False)
        done = time.monotonic()
        ranks = llm.apply_model(_rank_shards)
    finally:
        llm.llm_engine.engine_core.shutdown()  # stop the ranks before the child exits
    results: dict[str, Any] = {
        "seconds": {"start": loaded - started, "generate": done - loaded},
        "ranks": ranks,
    }
    for name, output in zip(PROMPTS, outputs, strict=True):
        top = [
            {str(t): lp.logprob for t, lp in step.items()} for step in output.outputs[0].logprobs
        ]
        results[name] = completion_record(output) | {"top": top}
    return results


# --- the parent: children, checkpoints, comparisons --------------------------------------------


def run_in_child(model_dir: Path, layout: dict[str, Any], out: Path) -> dict[str, Any]:
    """Run this file as a script for one layout; fail with its stderr tail if it fails.

    One child per run, so each starts with all GPU memory free. Its ranks are spawned, not
    forked, because the child may have touched CUDA before vLLM starts them.
    """
    return run_script(
        __file__,
        model_dir,
        layout,
        out,
        timeout=RUN_TIMEOUT,
        env=child_env({"VLLM_WORKER_MULTIPROC_METHOD": "spawn"}),
        label=f"{layout} on {model_dir.name}",
    ).result


def quantize_checkpoint(model_dir: Path, variant: TinyVariant) -> None:
    """Turn a bfloat16 tiny checkpoint into the block-FP8 layout in place.

    The same steps `build_tiny_interns1(..., fp8=True)` takes after casting to bfloat16, which
    cannot be asked for these widths: it always applies `fp8_variant`'s.
    """
    from safetensors.torch import load_file

    from interns1_plugin.testing.tiny_interns1 import (
        fp8_quantization_config,
        quantize_fp8_blocks,
        write_shards,
    )

    index = json.loads((model_dir / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    tensors: dict[str, Any] = {}
    for shard in shards:
        tensors |= load_file(str(model_dir / shard))
        (model_dir / shard).unlink()
    ordered = {name: tensors[name] for name in index["weight_map"]}
    write_shards(quantize_fp8_blocks(ordered), model_dir, num_shards=len(shards))
    config = json.loads((model_dir / "config.json").read_text())
    config["quantization_config"] = fp8_quantization_config(variant)
    (model_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def _cuda_devices() -> int:
    import torch

    return torch.cuda.device_count()


def _require_devices(count: int) -> None:
    visible = _cuda_devices()
    if visible < count:
        pytest.skip(f"tensor parallel {count} needs {count} CUDA devices; {visible} visible")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The widened FP8 checkpoint and its bfloat16 twin (same variant, seed and weights)."""
    from interns1_plugin.testing.tiny_interns1 import build_tiny_interns1

    root = tmp_path_factory.mktemp("interns1-fp8-dist")
    variant = wide_fp8_s1()
    bf16 = build_tiny_interns1(root / "bf16", variant, divisible_by=2)
    fp8 = build_tiny_interns1(root / "fp8", variant, divisible_by=2)
    quantize_checkpoint(fp8, variant)
    return {"fp8": fp8, "bf16": bf16}


@pytest.fixture(scope="module")
def text_config(checkpoints: dict[str, Path]) -> dict[str, Any]:
    return json.loads((checkpoints["fp8"] / "config.json").read_text())["text_config"]


@pytest.fixture(scope="module")
def run(checkpoints: dict[str, Path]) -> Callable[[str, str], dict[str, Any]]:
    """`run(checkpoint, layout)`, each pair run once per module (the FP8 TP=1 run is shared)."""
    done: dict[tuple[str, str], dict[str, Any]] = {}

    def get(checkpoint: str, layout: str) -> dict[str, Any]:
        if (checkpoint, layout) not in done:
            model_dir = checkpoints[checkpoint]
            out = model_dir.parent / f"{checkpoint}-{layout}.json"
            done[checkpoint, layout] = run_in_child(model_dir, LAYOUTS[layout], out)
        return done[checkpoint, layout]

    return get


def assert_fp8_shards(result: dict[str, Any], expected: dict[str, Any], label: str) -> None:
    """Every rank's every layer is FP8 and holds the expected shard widths."""
    for rank, layers in enumerate(result["ranks"]):
        for index, layer in enumerate(layers):
            where = f"{label} rank {rank} layer {index}"
            assert layer["qkv_method"] == "Fp8LinearMethod", (where, layer)
            assert layer["qkv_dtype"] == "torch.float8_e4m3fn", (where, layer)
            assert "Unquantized" not in layer["experts_method"], (where, layer)
            assert layer["experts_dtype"] in (None, "torch.float8_e4m3fn"), (where, layer)
            shards = {key: layer[key] for key in expected}
            assert shards == expected, (where, shards)


def agreed_prefix(reference: dict[str, Any], tested: dict[str, Any], name: str) -> int:
    """Tokens equal before the first divergence, where vLLM's rule must hold: each side's
    token is in the other's top `TOP_LOGPROBS`. Later tokens follow different contexts."""
    pairs = zip(reference["tokens"], tested["tokens"], strict=True)
    for step, (ref_token, test_token) in enumerate(pairs):
        if ref_token != test_token:
            assert str(ref_token) in tested["top"][step], (name, step, ref_token, test_token)
            assert str(test_token) in reference["top"][step], (name, step, ref_token, test_token)
            return step
    return len(reference["tokens"])


# --- tests -----------------------------------------------------------------------------------


def test_wide_checkpoint_splits_on_whole_blocks(text_config: dict[str, Any]) -> None:
    """The widened checkpoint's FP8 shards are whole blocks in every layout; the stock FP8
    widths are not at TP=2 (if they ever are, the widening can go)."""
    from interns1_plugin.testing.tiny_interns1 import S1, fp8_variant

    assert text_config["hidden_size"] == FP8_BLOCK
    for ep in (False, True):
        assert partial_blocks(fp8_shard_widths(text_config, 2, ep)) == {}, ep
    stock = fp8_variant(S1)
    stock_text = {
        "head_dim": stock.head_dim,
        "num_attention_heads": stock.text_heads,
        "num_key_value_heads": stock.text_kv_heads,
        "moe_intermediate_size": stock.moe_intermediate,
    }
    assert partial_blocks(fp8_shard_widths(stock_text, 2, ep=False)) == {
        "qkv_proj rows (q, k, v)": [64, 64, 64],
        "o_proj input": [64],
        "experts gate/up rows, down input": [64],
    }
    assert "o_proj input" in partial_blocks(fp8_shard_widths(stock_text, 2, ep=True))


@pytest.mark.parametrize("layout", ["tp2", "tp2_ep"])
def test_fp8_layout_matches_one_gpu(
    layout: str, run: Callable[[str, str], dict[str, Any]], text_config: dict[str, Any]
) -> None:
    _require_devices(2)
    reference = run("fp8", "tp1")
    tested = run("fp8", layout)
    assert_fp8_shards(reference, expected_rank_shards(text_config, 1, ep=False), "tp1")
    assert len(reference["ranks"]) == 1 and len(tested["ranks"]) == 2
    ep = LAYOUTS[layout].get("enable_expert_parallel", False)
    assert_fp8_shards(tested, expected_rank_shards(text_config, 2, ep), layout)
    worst = assert_same_decoding(reference, tested, layout, PROMPTS, LOGPROB_ATOL)
    print(f"fp8/{layout}: max chosen-logprob gap to tp1 {worst:.2e}; seconds {tested['seconds']}")


def test_fp8_follows_bf16(
    run: Callable[[str, str], dict[str, Any]], text_config: dict[str, Any]
) -> None:
    reference = run("bf16", "tp1")
    tested = run("fp8", "tp1")
    assert reference["ranks"][0][0]["qkv_method"] == "UnquantizedLinearMethod"
    assert_fp8_shards(tested, expected_rank_shards(text_config, 1, ep=False), "tp1")
    agreed, worst = 0, 0.0
    report = []
    for name in PROMPTS:
        ref, test = reference[name], tested[name]
        assert test["prompt_ids"] == ref["prompt_ids"], f"{name}: prompts differ"
        prefix = agreed_prefix(ref, test, name)
        pairs = zip(ref["logprobs"][:prefix], test["logprobs"][:prefix], strict=True)
        gaps = [abs(a - b) for a, b in pairs]
        agreed += prefix
        worst = max(worst, *gaps, 0.0)
        report.append(f"{name} {prefix}/{MAX_TOKENS}")
    share = agreed / (MAX_TOKENS * len(PROMPTS))
    print(f"fp8 vs bf16: tokens agreed {', '.join(report)} ({share:.0%}); gap {worst:.3f}")
    assert share >= MIN_BF16_AGREEMENT, report
    assert worst <= BF16_LOGPROB_ATOL, worst


if __name__ == "__main__":
    child_main(run_vllm)
