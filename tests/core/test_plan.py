"""`python -m interns1_plugin.plan`: parameter counts, bytes per rank and verdicts by hand.

The fixtures below restate the published shapes (model cards) as the config.json keys the planner
reads. Every expected number is derived here with the arithmetic written out, tensor by tensor,
so a wrong sharding rule or a missing tensor shows as a mismatch, not as a rounding difference.
"""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from interns1_plugin import plan as P
from interns1_plugin.plan.presets import PRESETS, preset

ROOT = Path(__file__).resolve().parents[2]
GIB = 1 << 30

FP8 = {"quant_method": "fp8", "fmt": "e4m3", "weight_block_size": [128, 128]}

MINI_TEXT = {
    "model_type": "qwen3",
    "hidden_size": 4096,
    "num_hidden_layers": 36,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "intermediate_size": 12288,
    "vocab_size": 153216,
    "max_position_embeddings": 40960,
    "rope_theta": 1000000,
    "tie_word_embeddings": False,
}
MINI_VISION = {
    "hidden_size": 1024,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "intermediate_size": 4096,
    "norm_type": "layer_norm",
    "attention_bias": True,
    "use_qk_norm": False,
    "image_size": [448, 448],
    "patch_size": [14, 14],
    "use_mean_pooling": True,
}
S1_TEXT = MINI_TEXT | {
    "model_type": "qwen3_moe",
    "num_hidden_layers": 94,
    "num_attention_heads": 64,
    "num_key_value_heads": 4,
    "num_experts": 128,
    "num_experts_per_tok": 8,
    "moe_intermediate_size": 1536,
    "decoder_sparse_step": 1,
    "mlp_only_layers": [],
}
S1_VISION = MINI_VISION | {
    "hidden_size": 3200,
    "num_hidden_layers": 45,
    "num_attention_heads": 25,
    "intermediate_size": 12800,
    "norm_type": "rms_norm",
    "attention_bias": False,
    "use_qk_norm": True,
}
PRO_TEXT = {
    "hidden_size": 4096,
    "num_hidden_layers": 94,
    "num_attention_heads": 64,
    "num_key_value_heads": 4,
    "head_dim": 128,
    "num_experts": 512,
    "num_experts_per_tok": 8,
    "moe_intermediate_size": 1536,
    "router_n_groups": 8,
    "vocab_size": 155008,
    "max_position_embeddings": 262144,
    "rope_theta": 5000000,
    "rope_scaling": {
        "rope_type": "default",
        "fope_init_factor": 0.5,
        "fope_sep_head": True,
        "num_inv_freq": None,
    },
    "tie_word_embeddings": False,
}
PRO_VISION = {
    "depth": 24,
    "hidden_size": 1024,
    "num_heads": 16,
    "intermediate_size": 4096,
    "patch_size": 16,
    "temporal_patch_size": 2,
    "spatial_merge_size": 2,
    "out_hidden_size": 4096,
    "in_channels": 3,
    "num_position_embeddings": 2304,
}


def interns1(text: dict[str, Any], vision: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "model_type": "interns1",
        "downsample_ratio": 0.5,
        "text_config": copy.deepcopy(text),
        "vision_config": copy.deepcopy(vision),
    } | extra


MINI = interns1(MINI_TEXT, MINI_VISION)
S1 = interns1(S1_TEXT, S1_VISION)
S1_FP8 = interns1(S1_TEXT, S1_VISION, quantization_config=FP8)
PRO = {"model_type": "interns1_pro", "text_config": PRO_TEXT, "vision_config": PRO_VISION}
PRO_FP8 = PRO | {"quantization_config": FP8}

# --- hand arithmetic ---------------------------------------------------------------------------

H = 4096  # text hidden
HD = 128  # head_dim
BLOCKS = 128

# mini: Qwen3-8B
MINI_EMBED = 153216 * 4096
MINI_LAYER = (
    4096 * 4096  # q_proj: 32 heads x 128 = 4096 out
    + 4096 * 1024  # k_proj: 8 kv heads x 128
    + 4096 * 1024  # v_proj
    + 4096 * 4096  # o_proj
    + 3 * 4096 * 12288  # gate, up, down
    + 2 * 4096  # input / post-attention RMSNorm
    + 2 * 128  # q_norm, k_norm
)
MINI_LM = MINI_EMBED + 36 * MINI_LAYER + 4096 + 153216 * 4096  # + final norm + lm_head

# Intern-S1: Qwen3-235B-A22B
S1_ATTN_LINEAR = 4096 * 8192 + 4096 * 512 + 4096 * 512 + 8192 * 4096  # q, k, v, o
S1_EXPERTS_LINEAR = 128 * 3 * 4096 * 1536
S1_LAYER = S1_ATTN_LINEAR + S1_EXPERTS_LINEAR + 2 * 4096 + 2 * 128 + 4096 * 128  # + router
S1_LM = 2 * 153216 * 4096 + 94 * S1_LAYER + 4096

# Intern-S1-Pro: 512 experts, vocab 155008, FoPE coefficients
# FoPE keeps the frequencies base^(-2i/128), i < 64, above 2*pi/262144:
#   i < 64 * ln(262144 / (2*pi)) / ln(5e6) = 64 * 10.639 / 15.425 = 44.1  ->  i = 0..44: 45
PRO_FOPE_FREQS = 45
PRO_LAYER = (
    S1_ATTN_LINEAR + 512 * 3 * 4096 * 1536 + 2 * 4096 + 2 * 128 + 4096 * 512  # router 512 wide
)
PRO_LM = 2 * 155008 * 4096 + 94 * PRO_LAYER + 4096 + 2 * 4 * 45 * 45  # + sin/cos coefficients

# InternViT-300M (LayerNorm, attention bias) + projector 4096 -> 4096 -> 4096
h, inner = 1024, 4096
MINI_VIT = (
    h  # CLS token
    + (32 * 32 + 1) * h  # position embeddings: 1024 patches + CLS
    + h * 3 * 14 * 14 + h  # patch conv + bias
    + 24
    * (
        3 * h * h + 3 * h  # q, k, v + biases
        + h * h + h  # projection + bias
        + 2 * h * inner + inner + h  # fc1, fc2 + biases
        + 2 * h  # lambda_1, lambda_2
        + 2 * 2 * h  # two LayerNorms, weight + bias
    )
)
MINI_PROJECTOR = 2 * 4096 + 4096 * 4096 + 4096 + 4096 * 4096 + 4096

# InternViT-6B (RMSNorm, qk-norm over the full width, no bias) + projector 12800 -> 4096 -> 4096
h, inner = 3200, 12800
S1_VIT = (
    h
    + (32 * 32 + 1) * h
    + h * 3 * 14 * 14 + h
    + 45
    * (
        3 * h * h  # q, k, v
        + 2 * h  # q_norm, k_norm
        + h * h + h
        + 2 * h * inner + inner + h
        + 2 * h
        + 2 * h  # two RMSNorms, weight only
    )
)
S1_PROJECTOR = 2 * 12800 + 12800 * 4096 + 4096 + 4096 * 4096 + 4096

# Qwen3-VL-style ViT of Pro
h, inner = 1024, 4096
PRO_VIT = (
    h * 3 * 2 * 16 * 16 + h  # Conv3d patch embedding + bias
    + 2304 * h  # position embeddings
    + 24 * (4 * h + 3 * h * h + 3 * h + h * h + h + inner * h + inner + h * inner + h)
    + 2 * h + 4096 * 4096 + 4096 + 4096 * 4096 + 4096  # merger: LayerNorm(1024), fc1, fc2
)
del h, inner


def shape(config: dict[str, Any]) -> P.ModelShape:
    return P.parse_config(copy.deepcopy(config))


def plan(config: dict[str, Any], layout: P.Layout, **budget: Any) -> P.Plan:
    return P.make_plan(shape(config), layout, P.Budget(**budget))


# --- parameter counts --------------------------------------------------------------------------


def test_mini_parameters_exact():
    model = shape(MINI)
    assert model.language_params == MINI_LM == 8_201_221_120
    assert model.vision_params == MINI_VIT + MINI_PROJECTOR
    assert model.other_params == 0
    assert model.checkpoint_bytes == 2 * (MINI_LM + MINI_VIT + MINI_PROJECTOR)


def test_intern_s1_parameters_exact():
    model = shape(S1)
    assert model.language_params == S1_LM
    assert model.vision_params == S1_VIT + S1_PROJECTOR
    # The published sizes: 235B MoE language model + 6B-class InternViT, 241B in all.
    assert round(model.language_params / 1e9) == 235
    assert round(model.total_params / 1e9) == 241
    assert 470e9 < model.checkpoint_bytes < 490e9  # BF16


def test_intern_s1_pro_parameters_exact():
    model = shape(PRO)
    assert model.text.fope_freqs == PRO_FOPE_FREQS
    assert PRO_FOPE_FREQS == math.floor(64 * math.log(262144 / (2 * math.pi)) / math.log(5e6)) + 1
    assert model.language_params == PRO_LM
    assert model.vision_params == PRO_VIT
    assert 0.9e12 < model.total_params < 1e12  # "~1T"
    assert any("ts_config" in note for note in model.notes)


def test_time_series_encoder_counted_from_ts_config():
    d, ffn, layers, mel, positions, hidden, out = 256, 1024, 2, 80, 1500, 256, 4096
    adapt_in, adapt_out = 256, 256
    ts = {
        "ts_adapt_in_dim": adapt_in,
        "ts_adapt_out_dim": adapt_out,
        "d_model": d,
        "encoder_layers": layers,
        "encoder_ffn_dim": ffn,
        "num_mel_bins": mel,
        "max_source_positions": positions,
        "ts_hidden_dim": hidden,
        "out_hidden_size": out,
    }
    expected = (
        adapt_in * mel + mel + d * adapt_out + adapt_out  # adapters in and out, with biases
        + mel * d * 3 + d + d * d * 3 + d  # two convolutions
        + positions * d
        + layers * (4 * d * d + 4 * d + 2 * d * ffn + ffn + d + 4 * d)
        + 2 * d  # final LayerNorm
        + 2 * hidden + hidden * out + out + out * out + out  # projector
    )
    model = shape(PRO | {"ts_config": ts})
    assert model.other_params == expected
    assert model.total_params == PRO_LM + PRO_VIT + expected


def test_presets_match_the_fixtures():
    pairs = {
        "intern-s1-mini": MINI,
        "intern-s1": S1,
        "intern-s1-fp8": S1_FP8,
        "intern-s1-pro": PRO,
        "intern-s1-pro-fp8": PRO_FP8,
    }
    assert set(pairs) == set(PRESETS)
    for name, fixture in pairs.items():
        ours, theirs = shape(preset(name)), shape(fixture)
        assert ours.total_params == theirs.total_params, name
        assert ours.checkpoint_bytes == theirs.checkpoint_bytes, name


def test_tied_embeddings_counted_once_but_held_by_the_last_stage():
    tied = interns1(MINI_TEXT | {"tie_word_embeddings": True}, MINI_VISION)
    assert shape(tied).language_params == MINI_LM - 153216 * 4096
    one = plan(tied, P.Layout(tp=1, pp=1))
    two = plan(tied, P.Layout(tp=1, pp=2))
    assert one.worst.language_model == 2 * (MINI_LM - 153216 * 4096)
    last = two.stages[1]
    assert last.language_model == 2 * (18 * MINI_LAYER + 4096 + 153216 * 4096)


# --- bytes per rank ----------------------------------------------------------------------------


def test_fp8_saves_one_byte_per_linear_weight_less_the_block_scales():
    bf16, fp8 = shape(S1), shape(S1_FP8)
    linear = S1_ATTN_LINEAR + S1_EXPERTS_LINEAR
    scales = (
        (8192 // BLOCKS) * (4096 // BLOCKS)  # q
        + 2 * (512 // BLOCKS) * (4096 // BLOCKS)  # k, v
        + (4096 // BLOCKS) * (8192 // BLOCKS)  # o
        + 128 * 3 * (1536 // BLOCKS) * (4096 // BLOCKS)  # experts' gate, up, down
    )
    assert bf16.checkpoint_bytes - fp8.checkpoint_bytes == 94 * (linear - 4 * scales)
    assert 235e9 < fp8.checkpoint_bytes < 250e9


def test_mini_tp2_bytes_and_kv():
    p = plan(MINI, P.Layout(tp=2))
    layer = (
        4096 * 2048  # q: 16 heads
        + 2 * 4096 * 512  # k, v: 4 kv heads
        + 2048 * 4096  # o
        + 3 * 4096 * 6144  # MLP half
        + 2 * 4096 + 2 * 128
    )
    lm = 2 * (36 * layer + 2 * (153216 // 2) * 4096 + 4096)
    assert p.worst.language_model == lm
    assert p.worst.vision == 2 * (MINI_VIT + MINI_PROJECTOR)
    assert p.worst.kv_per_token == 2 * 36 * 4 * 128 * 2 == 73_728
    assert p.fits


def test_intern_s1_tp8_replicates_kv_heads():
    p = plan(S1, P.Layout(tp=8))
    assert P.kv_heads_per_rank(shape(S1).text, 8) == 1  # 4 kv heads over 8 ranks
    assert p.worst.kv_per_token == 2 * 94 * 1 * 128 * 2 == 48_128
    assert plan(S1, P.Layout(tp=8), kv_dtype="fp8").worst.kv_per_token == 24_064
    layer = (
        4096 * 1024 + 2 * 4096 * 128 + 1024 * 4096  # q (8 heads), k/v (1 head each), o
        + 128 * 3 * 4096 * 192  # every expert, intermediate split 8 ways
        + 4096 * 128  # router, replicated
        + 2 * 4096 + 2 * 128
    )
    assert p.worst.language_model == 2 * (94 * layer + 2 * (153216 // 8) * 4096 + 4096)


def test_expert_parallel_spreads_whole_experts_over_tp_times_dp():
    tp_only = plan(S1, P.Layout(tp=4, dp=2))
    ep = plan(S1, P.Layout(tp=4, dp=2, ep=True))
    without = 94 * 128 * 3 * 4096 * (1536 // 4) * 2  # every expert, a quarter of its width
    with_ep = 94 * (128 // 8) * 3 * 4096 * 1536 * 2  # 16 whole experts per rank
    assert tp_only.worst.language_model - ep.worst.language_model == without - with_ep
    # At TP8 alone both hold 1/8 of the expert weights: BF16 bytes agree.
    assert (
        plan(S1, P.Layout(tp=8)).worst.language_model
        == plan(S1, P.Layout(tp=8, ep=True)).worst.language_model
    )


def test_fp8_experts_split_below_a_block_are_refused():
    refused = plan(S1_FP8, P.Layout(tp=8))
    assert not refused.fits
    assert any("192" in problem for problem in refused.problems)  # 1536 / 8, not 128-aligned
    assert plan(S1_FP8, P.Layout(tp=8, ep=True)).fits
    assert plan(S1_FP8, P.Layout(tp=4, dp=2)).problems == ()  # 384 = 3 blocks


def test_pipeline_stages_follow_vllm_and_report_the_worst():
    assert P.stage_layer_counts(94, 4) == [23, 24, 24, 23]
    assert P.stage_layer_counts(94, 2) == [47, 47]
    four = plan(S1, P.Layout(tp=2, pp=4))
    layer = (
        4096 * 4096 + 2 * 4096 * 256 + 4096 * 4096  # q (32 heads), k/v (2 heads), o
        + 128 * 3 * 4096 * 768
        + 4096 * 128 + 2 * 4096 + 2 * 128
    )
    embed = (153216 // 2) * 4096
    assert [s.language_model for s in four.stages] == [
        2 * (embed + 23 * layer),
        2 * 24 * layer,
        2 * 24 * layer,
        2 * (23 * layer + 4096 + embed),
    ]
    assert four.worst.stage == 1 and four.worst.layers == 24
    assert four.worst.kv_per_token == 2 * 24 * 2 * 128 * 2
    two = plan(S1, P.Layout(tp=4, pp=2))
    assert two.stages[1].language_model - two.stages[0].language_model == 2 * 4096  # final norm
    assert two.worst.stage == 1


def test_vision_is_on_every_rank():
    p = plan(S1, P.Layout(tp=4, pp=2, ep=True))
    assert {s.vision for s in p.stages} == {2 * (S1_VIT + S1_PROJECTOR)}
    assert any("every rank" in note for note in p.notes)


def test_budget_arithmetic():
    p = plan(MINI, P.Layout(tp=1), gpu_mem_gib=80, utilization=0.9, batch_tokens=8192)
    rank = p.worst
    per_token = 2 * (4 * 4096 + (32 + 2 * 8) * 128 + 3 * 12288)
    assert rank.reserve == 8 * GIB + 2 * GIB + 8192 * per_token
    rope_cache = 40960 * 128 * 2
    assert rank.other == rope_cache
    assert rank.kv_free == 80 * GIB - rank.reserve - rank.weights
    assert rank.kv_tokens == rank.kv_free // (2 * 36 * 8 * 128 * 2)
    assert p.max_model_len == 32768  # 40960 capped


# --- verdicts for the real sizes ---------------------------------------------------------------


def test_intern_s1_bf16_needs_more_than_eight_80gb_cards_to_breathe():
    tight = plan(S1, P.Layout(tp=8), gpu_mem_gib=80)
    assert tight.worst.weights > 65 * GIB  # 55 GiB of language model + 10.4 GiB ViT
    assert tight.worst.kv_free < 5 * GIB
    assert not plan(S1, P.Layout(tp=8), gpu_mem_gib=80, utilization=0.85).fits
    assert not plan(S1, P.Layout(tp=4), gpu_mem_gib=80).fits
    assert plan(S1, P.Layout(tp=8), gpu_mem_gib=141).worst.kv_free > 50 * GIB
    assert plan(S1, P.Layout(tp=8, pp=2), gpu_mem_gib=80).worst.kv_free > 30 * GIB
    assert plan(S1, P.Layout(tp=16), gpu_mem_gib=80).fits


def test_intern_s1_fp8_fits_eight_80gb_cards():
    for layout in (P.Layout(tp=8, ep=True), P.Layout(tp=4, dp=2, ep=True)):
        p = plan(S1_FP8, layout, gpu_mem_gib=80)
        assert p.fits, layout
        assert p.worst.weights < 40 * GIB


def test_pro_needs_many_cards():
    assert not plan(PRO, P.Layout(tp=8), gpu_mem_gib=141).fits
    assert plan(PRO, P.Layout(tp=16), gpu_mem_gib=141).fits
    assert not plan(PRO_FP8, P.Layout(tp=8, ep=True), gpu_mem_gib=80).fits
    assert plan(PRO_FP8, P.Layout(tp=8, ep=True), gpu_mem_gib=141).fits


def test_layout_checks():
    # 64 heads over 16 ranks, 4 KV heads replicated 4 times, experts 1536 / 16 = 96 wide (BF16)
    assert plan(S1, P.Layout(tp=16)).problems == ()
    assert plan(MINI, P.Layout(tp=16)).problems == ()  # 32 heads, 8 KV heads, 12288 / 16
    assert plan(MINI, P.Layout(tp=3)).problems  # 32 heads do not split in 3
    assert plan(MINI, P.Layout(tp=64)).problems  # more ranks than heads
    assert plan(MINI, P.Layout(tp=1), max_model_len=65536).problems  # beyond 40960 positions
    assert plan(S1_FP8, P.Layout(tp=16)).problems  # FP8: 96 is not a whole 128 block


def test_suggest_lists_fitting_layouts_fewest_stages_first():
    fitting, tried = P.suggest(shape(S1_FP8), 8, P.Budget(gpu_mem_gib=80))
    labels = [p.layout.label() for p in fitting]
    assert tried == 18  # TP 1/2/4/8 x PP 1/2/4 dividing 8, each with EP on and off
    assert "TP8 PP1 DP1 EP" in labels and "TP8 PP1 DP1" not in labels
    assert [p.layout.pp for p in fitting] == sorted(p.layout.pp for p in fitting)
    assert all(p.layout.gpus == 8 for p in fitting)


# --- the command -------------------------------------------------------------------------------


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interns1_plugin.plan", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def write(tmp_path: Path, config: Any, name: str = "config.json") -> str:
    path = tmp_path / name
    path.write_text(config if isinstance(config, str) else json.dumps(config), encoding="utf-8")
    return str(path)


def test_cli_json_fits(tmp_path):
    result = run(write(tmp_path, S1_FP8), "--gpus", "8", "--gpu-mem", "80", "--ep", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["fits"] is True
    assert out["model"]["params"]["language_model"] == S1_LM
    assert out["layout"] == {
        "gpus": 8,
        "tp": 8,
        "pp": 1,
        "dp": 1,
        "ep": True,
        "vllm_args": ["--tensor-parallel-size", "8", "--enable-expert-parallel"],
    }
    assert out["worst_rank"]["kv_bytes_per_token"] == 48_128


def test_cli_table_and_not_fitting_exit_1(tmp_path):
    result = run(write(tmp_path, S1), "--gpus", "4", "--gpu-mem", "80")
    assert result.returncode == 1
    assert "fits: no" in result.stdout
    assert "language model" in result.stdout and "vision (replicated)" in result.stdout
    assert "every rank" in result.stdout


def test_cli_preset_and_suggest():
    result = run("--preset", "intern-s1-fp8", "--gpus", "8", "--suggest", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["tried"] == 18 and out["fitting"]
    none = run("--preset", "intern-s1-pro", "--gpus", "8", "--gpu-mem", "80", "--suggest")
    assert none.returncode == 1
    assert "none of" in none.stdout


@pytest.mark.parametrize(
    "config",
    [
        "{not json",
        "[1, 2]",
        {"model_type": "interns1"},
        {"model_type": "llama", "text_config": {}, "vision_config": {}},
        interns1(MINI_TEXT | {"hidden_size": "4096"}, MINI_VISION),
        interns1(S1_TEXT, S1_VISION, quantization_config={"quant_method": "awq"}),
    ],
)
def test_cli_bad_config_exit_2(tmp_path, config):
    result = run(write(tmp_path, config), "--gpus", "1")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr


def test_cli_bad_arguments_exit_2(tmp_path):
    path = write(tmp_path, MINI)
    assert run(path, "--gpus", "8", "--tp", "4").returncode == 2  # tp x pp x dp != gpus
    assert run(path, "--tp", "0").returncode == 2
    assert run().returncode == 2  # neither a config nor a preset
    assert run(str(tmp_path / "missing.json")).returncode == 2
