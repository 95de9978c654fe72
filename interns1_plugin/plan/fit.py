"""Whether a layout fits a GPU: per-stage memory, the worst rank, the verdict and its notes.

Why: this is the planner's one decision; it combines the exact weight counts, the KV cache per
token and the reserve estimates against vLLM's `gpu_mem x gpu_memory_utilization` budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from interns1_plugin.plan.checks import layout_problems
from interns1_plugin.plan.model import ModelShape
from interns1_plugin.plan.parameters import stage_tensors
from interns1_plugin.plan.runtime import (
    RUNTIME_RESERVE_GIB,
    activation_bytes_per_token,
    rope_cache_bytes,
)
from interns1_plugin.plan.shapes import MAX_MODEL_LEN_CAP
from interns1_plugin.plan.sharding import Layout, kv_bytes_per_token, stage_layer_counts
from interns1_plugin.plan.units import BF16_BYTES, GIB, gib


@dataclass(frozen=True)
class Budget:
    """The GPU and the serving limits a layout must fit."""

    gpu_mem_gib: float = 80.0
    utilization: float = 0.9
    #: None: the config's max_position_embeddings capped at MAX_MODEL_LEN_CAP.
    max_model_len: int | None = None
    kv_dtype: str = "auto"
    batch_tokens: int = 8192

    @property
    def kv_bytes(self) -> int:
        return 1 if self.kv_dtype == "fp8" else BF16_BYTES


@dataclass(frozen=True)
class RankPlan:
    """Memory of one rank, in bytes (every rank of a PP stage holds the same)."""

    stage: int
    layers: int
    language_model: int
    vision: int
    other: int
    reserve: int
    kv_per_token: int
    kv_free: int
    kv_tokens: int

    @property
    def weights(self) -> int:
        return self.language_model + self.vision + self.other


@dataclass(frozen=True)
class Plan:
    """A layout's verdict: per-stage memory, the worst rank, and why it fits or not."""

    model: ModelShape
    layout: Layout
    budget: Budget
    max_model_len: int
    stages: tuple[RankPlan, ...]
    worst: RankPlan
    problems: tuple[str, ...]
    fits: bool
    reason: str
    notes: tuple[str, ...]


def make_plan(model: ModelShape, layout: Layout, budget: Budget) -> Plan:
    """Memory per rank for `layout`, the worst rank, and whether it fits `budget`."""
    text = model.text
    max_len = budget.max_model_len or min(text.max_positions, MAX_MODEL_LEN_CAP)
    problems = layout_problems(model, layout, max_len)
    shard = layout.shard(text)
    gpu = int(budget.gpu_mem_gib * GIB)
    activations = budget.batch_tokens * activation_bytes_per_token(text, shard)
    reserve = gpu - round(gpu * budget.utilization) + int(RUNTIME_RESERVE_GIB * GIB) + activations
    vision = model.vision_params * BF16_BYTES
    other = model.other_params * BF16_BYTES + rope_cache_bytes(text, layout.tp)
    stages = []
    start = 0
    counts = stage_layer_counts(text.layers, layout.pp)
    for index, count in enumerate(counts):
        layers = range(start, start + count)
        start += count
        tensors = stage_tensors(text, layers, index == 0, index == len(counts) - 1, shard)
        language = sum(t.nbytes(model.quant) for t in tensors)
        kv_per_token = kv_bytes_per_token(text, layout.tp, count, budget.kv_bytes)
        free = gpu - reserve - language - vision - other
        tokens = max(0, free) // kv_per_token if kv_per_token else 0
        stages.append(
            RankPlan(index, count, language, vision, other, reserve, kv_per_token, free, tokens)
        )
    worst = min(stages, key=lambda s: (s.kv_free >= 0, s.kv_tokens, s.kv_free))
    fits, reason = _verdict(problems, worst, budget, max_len)
    return Plan(
        model=model,
        layout=layout,
        budget=budget,
        max_model_len=max_len,
        stages=tuple(stages),
        worst=worst,
        problems=tuple(problems),
        fits=fits,
        reason=reason,
        notes=_notes(model, layout, budget, activations, counts),
    )


def _verdict(
    problems: list[str], worst: RankPlan, budget: Budget, max_len: int
) -> tuple[bool, str]:
    if problems:
        return False, "vLLM refuses this layout: " + "; ".join(problems)
    if worst.kv_free < 0:
        return False, (
            f"weights {gib(worst.weights)} GiB + reserve {gib(worst.reserve)} GiB exceed "
            f"{budget.gpu_mem_gib:g} GiB by {gib(-worst.kv_free)} GiB"
        )
    if worst.kv_tokens < max_len:
        return False, (
            f"KV cache holds {worst.kv_tokens:,} tokens, fewer than max-model-len {max_len:,}"
        )
    return True, (
        f"KV cache holds {worst.kv_tokens:,} tokens "
        f"({worst.kv_tokens / max_len:.1f}x max-model-len {max_len:,})"
    )


def _notes(
    model: ModelShape, layout: Layout, budget: Budget, activations: int, counts: list[int]
) -> tuple[str, ...]:
    notes = list(model.notes)
    notes.append(
        "vision tower and projector are counted whole on every rank (as with "
        "--mm-encoder-tp-mode data; vLLM's default splits the ViT over TP and needs less)"
    )
    if model.quant.fp8:
        notes.append(
            f"{model.quant.label()}: language-model linears at 1 byte/param + float32 scales; "
            "embeddings, lm_head, norms, router and vision in BF16"
        )
    notes.append(
        f"reserve = {100 * (1 - budget.utilization):.0f}% left by --gpu-memory-utilization "
        f"{budget.utilization:g} + {RUNTIME_RESERVE_GIB:g} GiB runtime (CUDA graphs, NCCL, "
        f"sampler) + {gib(activations)} GiB activations for {budget.batch_tokens:,} batch "
        "tokens (estimate)"
    )
    if layout.ep and not model.text.is_moe:
        notes.append("--ep has no effect on a dense model")
    if layout.pp > 1:
        notes.append(f"PP stages hold {'/'.join(map(str, counts))} layers")
    if layout.dp > 1:
        notes.append(f"DP{layout.dp}: {layout.dp} replicas, each with this KV capacity")
    return tuple(notes)


__all__ = ["Budget", "Plan", "RankPlan", "make_plan"]
