"""Why vLLM would refuse to build a layout, before any memory is counted.

Why: a layout that fits in memory but that vLLM rejects at load time (heads that do not split,
FP8 blocks cut below their width, max-model-len past the positions) must not be reported as
fitting.
"""

from __future__ import annotations

from interns1_plugin.plan.model import ModelShape
from interns1_plugin.plan.sharding import Layout, kv_heads_per_rank
from interns1_plugin.plan.units import ceil_div


def layout_problems(model: ModelShape, layout: Layout, max_model_len: int) -> list[str]:
    """Why vLLM would refuse to build this layout (empty when it loads)."""
    text, tp = model.text, layout.tp
    problems = []
    if text.heads % tp:
        problems.append(f"{text.heads} attention heads do not split over TP{tp}")
    if (tp % text.kv_heads) if tp >= text.kv_heads else (text.kv_heads % tp):
        problems.append(f"{text.kv_heads} KV heads and TP{tp}: one must divide the other")
    if text.has_dense_mlp and text.intermediate % tp:
        problems.append(f"intermediate_size {text.intermediate} does not split over TP{tp}")
    expert_tp = text.is_moe and not layout.shard(text).expert_ranks
    if expert_tp and text.moe_intermediate % tp:
        problems.append(f"moe_intermediate_size {text.moe_intermediate} does not split over TP{tp}")
    if expert_tp and tp > text.experts:
        problems.append(f"TP{tp} exceeds the {text.experts} experts")
    if layout.pp > text.layers:
        problems.append(f"PP{layout.pp} exceeds the {text.layers} layers")
    if max_model_len > text.max_positions:
        problems.append(
            f"max-model-len {max_model_len} exceeds max_position_embeddings {text.max_positions}"
        )
    if model.quant.block and tp > 1:
        problems += _fp8_block_problems(model, layout)
    return problems


def _fp8_block_problems(model: ModelShape, layout: Layout) -> list[str]:
    """vLLM rejects block-FP8 linears whose per-rank width is not a whole number of blocks."""
    assert model.quant.block is not None
    text, tp = model.text, layout.tp
    rows, cols = model.quant.block
    widths = {
        "attention q/o": ceil_div(text.heads, tp) * text.head_dim,
        "attention k/v": kv_heads_per_rank(text, tp) * text.head_dim,
    }
    if text.has_dense_mlp:
        widths["MLP intermediate"] = ceil_div(text.intermediate, tp)
    if text.is_moe and not layout.shard(text).expert_ranks:
        widths["expert intermediate"] = ceil_div(text.moe_intermediate, tp)
    problems = []
    for name, width in widths.items():
        if width % rows or width % cols:
            hint = " (--ep keeps experts whole)" if name.startswith("expert") else ""
            problems.append(
                f"FP8 block {rows}x{cols}: {name} is {width} wide per rank at TP{tp}, "
                f"not a whole number of blocks{hint}"
            )
    return problems


__all__ = ["layout_problems"]
