"""Memory per GPU rank for serving an Intern-S1 family checkpoint on vLLM.

    python -m interns1_plugin.plan <config.json> --gpus 8 --gpu-mem 80 [--tp 8 --ep ...]

Why: Intern-S1 (235B) and Intern-S1-Pro (~1T) only run across several GPUs, and whether a layout
loads is settled by arithmetic on `config.json` that is easy to get wrong by hand: KV heads
replicated once TP exceeds them, FP8 blocks that TP splits below their width, a vision tower on
every rank. Pure functions over the parsed config; no engine is imported.

What is counted, per rank, with vLLM's semantics:

- weights, tensor by tensor from the config. TP splits attention heads (KV heads are replicated
  when TP exceeds them), the dense MLP, and the experts' intermediate dim when expert parallelism
  is off; with `--ep` whole experts are spread over TP x DP ranks. Embedding and lm_head are split
  by vocab over TP (vocab padded to 64). PP splits the layers as vLLM does (a remainder goes to
  the stages before the last); the first stage holds the embedding, the last the final norm and
  lm_head. The vision tower, projector and time-series encoder are counted whole on every rank.
- FP8 checkpoints (`quant_method: fp8`): language-model linears take 1 byte per parameter plus a
  float32 scale per weight block; embeddings, lm_head, norms, the router and the vision tower stay
  BF16.
- KV cache per token: 2 (K and V) x layers on the rank x KV heads on the rank x head_dim x bytes.
- budget: vLLM may use `gpu_mem x gpu_memory_utilization`. Out of that come a fixed runtime
  reserve (`RUNTIME_RESERVE_GIB`: CUDA graphs, NCCL and allocator buffers, the sampler) and an
  estimate of the activations of one forward pass over `--batch-tokens` tokens; what is left after
  the weights holds KV cache. A layout fits when it loads and the KV cache holds at least
  `--max-model-len` tokens.

Exit status: 0 fits, 1 does not fit, 2 unreadable config or impossible arguments.

Modules, bottom up: `units`, `errors`, `fields` (validated config reads), `shapes` (text shape,
quantisation), `encoders` (vision / time-series counts), `sharding` (layouts and what a rank
holds), `parameters` (tensors per rank), `model` (config.json to `ModelShape`), `runtime` (rope
cache, activations, reserve), `checks` (layouts vLLM refuses), `fit` (the verdict),
`suggestions` (`--suggest`), `presets`, `report` (table and JSON), `cli` (the command).
"""

from __future__ import annotations

from interns1_plugin.plan.checks import layout_problems
from interns1_plugin.plan.cli import build_parser, main, resolve_layout
from interns1_plugin.plan.encoders import (
    internvit_params,
    projector_params,
    qwen3_vl_vision_params,
    time_series_params,
)
from interns1_plugin.plan.errors import PlanError
from interns1_plugin.plan.fit import Budget, Plan, RankPlan, make_plan
from interns1_plugin.plan.model import (
    INTERNS1_TYPES,
    PRO_TYPES,
    ModelShape,
    load_config,
    parse_config,
)
from interns1_plugin.plan.parameters import (
    FP8_SCALE_BYTES,
    VOCAB_PADDING,
    Tensor,
    layer_tensors,
    stage_tensors,
)
from interns1_plugin.plan.presets import PRESETS, preset
from interns1_plugin.plan.report import plan_to_dict, render, render_suggestions
from interns1_plugin.plan.runtime import (
    RUNTIME_RESERVE_GIB,
    activation_bytes_per_token,
    rope_cache_bytes,
)
from interns1_plugin.plan.shapes import MAX_MODEL_LEN_CAP, Quant, TextShape, parse_quant, parse_text
from interns1_plugin.plan.sharding import Layout, Shard, kv_heads_per_rank, stage_layer_counts
from interns1_plugin.plan.suggestions import PP_SIZES, TP_SIZES, candidate_layouts, suggest
from interns1_plugin.plan.units import BF16_BYTES, GIB

__all__ = [
    "BF16_BYTES",
    "FP8_SCALE_BYTES",
    "GIB",
    "INTERNS1_TYPES",
    "MAX_MODEL_LEN_CAP",
    "PP_SIZES",
    "PRESETS",
    "PRO_TYPES",
    "RUNTIME_RESERVE_GIB",
    "TP_SIZES",
    "VOCAB_PADDING",
    "Budget",
    "Layout",
    "ModelShape",
    "Plan",
    "PlanError",
    "Quant",
    "RankPlan",
    "Shard",
    "Tensor",
    "TextShape",
    "activation_bytes_per_token",
    "build_parser",
    "candidate_layouts",
    "internvit_params",
    "kv_heads_per_rank",
    "layer_tensors",
    "layout_problems",
    "load_config",
    "main",
    "make_plan",
    "parse_config",
    "parse_quant",
    "parse_text",
    "plan_to_dict",
    "preset",
    "projector_params",
    "qwen3_vl_vision_params",
    "render",
    "render_suggestions",
    "resolve_layout",
    "rope_cache_bytes",
    "stage_layer_counts",
    "stage_tensors",
    "suggest",
    "time_series_params",
]
