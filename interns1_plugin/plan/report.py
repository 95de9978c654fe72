"""A plan as text for people (a table of the worst rank) or as JSON for machines.

Why: the arithmetic returns plain numbers; wording, column widths and rounding live here so they
can change without touching what is counted.
"""

from __future__ import annotations

from typing import Any

from interns1_plugin.plan.fit import Plan, RankPlan
from interns1_plugin.plan.model import ModelShape
from interns1_plugin.plan.sharding import kv_heads_per_rank
from interns1_plugin.plan.units import GIB, gib


def _rank_dict(rank: RankPlan) -> dict[str, Any]:
    return {
        "stage": rank.stage,
        "layers": rank.layers,
        "language_model_bytes": rank.language_model,
        "vision_bytes": rank.vision,
        "other_bytes": rank.other,
        "weights_bytes": rank.weights,
        "reserve_bytes": rank.reserve,
        "kv_free_bytes": rank.kv_free,
        "kv_bytes_per_token": rank.kv_per_token,
        "kv_capacity_tokens": rank.kv_tokens,
        "language_model_gib": round(rank.language_model / GIB, 3),
        "vision_gib": round(rank.vision / GIB, 3),
        "other_gib": round(rank.other / GIB, 3),
        "weights_gib": round(rank.weights / GIB, 3),
        "reserve_gib": round(rank.reserve / GIB, 3),
        "kv_free_gib": round(rank.kv_free / GIB, 3),
    }


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The plan for machines (`--json`): bytes exact, GiB rounded."""
    model, text = plan.model, plan.model.text
    return {
        "model": {
            "name": model.name,
            "model_type": model.model_type,
            "quantization": model.quant.label(),
            "layers": text.layers,
            "experts": text.experts,
            "params": {
                "language_model": model.language_params,
                "vision": model.vision_params,
                "other": model.other_params,
                "total": model.total_params,
            },
            "checkpoint_bytes": model.checkpoint_bytes,
        },
        "layout": {
            "gpus": plan.layout.gpus,
            "tp": plan.layout.tp,
            "pp": plan.layout.pp,
            "dp": plan.layout.dp,
            "ep": plan.layout.ep,
            "vllm_args": plan.layout.vllm_args(),
        },
        "budget": {
            "gpu_mem_gib": plan.budget.gpu_mem_gib,
            "gpu_memory_utilization": plan.budget.utilization,
            "max_model_len": plan.max_model_len,
            "kv_dtype": plan.budget.kv_dtype,
            "batch_tokens": plan.budget.batch_tokens,
        },
        "worst_rank": _rank_dict(plan.worst),
        "stages": [_rank_dict(s) for s in plan.stages],
        "fits": plan.fits,
        "reason": plan.reason,
        "problems": list(plan.problems),
        "notes": list(plan.notes),
    }


def _describe(model: ModelShape) -> str:
    text = model.text
    body = f"MoE {text.experts} experts top-{text.top_k}" if text.is_moe else "dense"
    return f"{model.name}: {model.model_type}, {text.layers} layers, {body}, {model.quant.label()}"


def render(plan: Plan) -> str:
    """The plan for people: one table for the worst rank, the verdict and the notes."""
    model, rank, text = plan.model, plan.worst, plan.model.text
    kv_heads = kv_heads_per_rank(text, plan.layout.tp)
    lines = [
        _describe(model),
        f"parameters: {model.total_params:,} (language model {model.language_params:,}, "
        f"vision {model.vision_params:,}, other {model.other_params:,}); "
        f"checkpoint {model.checkpoint_bytes / 1e9:.1f} GB",
        f"layout: {plan.layout.gpus} GPU{'s' if plan.layout.gpus != 1 else ''} x "
        f"{plan.budget.gpu_mem_gib:g} GiB, "
        f"{plan.layout.label()} (vllm serve ... {' '.join(plan.layout.vllm_args())})",
        "",
        f"per rank (worst: PP stage {rank.stage}, {rank.layers} layers)      GiB",
        f"  language model                      {gib(rank.language_model):>8}",
        f"  vision (replicated)                 {gib(rank.vision):>8}",
        f"  other (time series, rope cache)     {gib(rank.other):>8}",
        f"  weights                             {gib(rank.weights):>8}",
        f"  reserve                             {gib(rank.reserve):>8}",
        f"  left for KV cache                   {gib(rank.kv_free):>8}",
        f"KV per token: {rank.kv_per_token:,} B = {rank.kv_per_token / 1024:.1f} KiB "
        f"(2 x {rank.layers} layers x {kv_heads} KV heads x {text.head_dim} x "
        f"{plan.budget.kv_bytes} B)",
        f"KV capacity: {rank.kv_tokens:,} tokens (max-model-len {plan.max_model_len:,})",
        f"fits: {'yes' if plan.fits else 'no'} - {plan.reason}",
        "notes:",
    ]
    lines += [f"  - {note}" for note in plan.notes]
    return "\n".join(lines)


def render_suggestions(model: ModelShape, plans: list[Plan], tried: int, gpus: int) -> str:
    """The fitting layouts, fewest pipeline stages first."""
    budget = plans[0].budget if plans else None
    lines = [_describe(model)]
    if not plans or budget is None:
        lines.append(f"none of {tried} layouts on {gpus} GPUs fits")
        return "\n".join(lines)
    lines += [
        f"layouts that fit on {gpus} GPUs x {budget.gpu_mem_gib:g} GiB "
        f"(max-model-len {plans[0].max_model_len:,}), {len(plans)} of {tried}:",
        f"  {'layout':<16}{'weights GiB':>12}{'KV/token KiB':>14}{'KV tokens':>12}  vLLM arguments",
    ]
    for plan in plans:
        rank = plan.worst
        lines.append(
            f"  {plan.layout.label():<16}{gib(rank.weights):>12}"
            f"{rank.kv_per_token / 1024:>14.1f}{rank.kv_tokens:>12,}  "
            + " ".join(plan.layout.vllm_args())
        )
    return "\n".join(lines)


__all__ = ["plan_to_dict", "render", "render_suggestions"]
