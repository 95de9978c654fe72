"""How a parallel layout divides the language model over ranks: TP, PP, DP and expert
parallelism, with vLLM's rules.

Why: the rules that decide what one rank holds (KV heads replicated past TP, experts spread over
TP x DP, vLLM's uneven PP split) are shared by the weight counts, the KV cache and the layout
checks, so they live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from interns1_plugin.plan.shapes import TextShape
from interns1_plugin.plan.units import ceil_div


@dataclass(frozen=True)
class Shard:
    """How one rank holds the language model; the default is the whole, unpadded model."""

    tp: int = 1
    #: Ranks whole experts are spread over; 0 when expert parallelism is off.
    expert_ranks: int = 0
    pad_vocab: bool = False


def kv_heads_per_rank(text: TextShape, tp: int) -> int:
    """KV heads are split while TP allows, then replicated: never fewer than one per rank."""
    return max(1, ceil_div(text.kv_heads, tp))


def expert_width(text: TextShape, shard: Shard) -> int:
    """An expert's intermediate width on one rank: whole under EP, split by TP otherwise."""
    return (
        text.moe_intermediate if shard.expert_ranks else ceil_div(text.moe_intermediate, shard.tp)
    )


def kv_bytes_per_token(text: TextShape, tp: int, layers: int, kv_bytes: int) -> int:
    """KV cache per token on a rank holding `layers` layers: K and V for its KV heads."""
    return 2 * layers * kv_heads_per_rank(text, tp) * text.head_dim * kv_bytes


def stage_layer_counts(layers: int, pp: int) -> list[int]:
    """vLLM's split: even, with any remainder on the stages just before the last."""
    counts = [layers // pp] * pp
    for i in range(layers % pp):
        counts[-2 - i] += 1
    return counts


@dataclass(frozen=True)
class Layout:
    """A parallel layout: TP within a replica, PP stages, DP replicas, expert parallelism."""

    tp: int = 1
    pp: int = 1
    dp: int = 1
    ep: bool = False

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.dp

    def shard(self, text: TextShape) -> Shard:
        experts = self.tp * self.dp if self.ep and text.is_moe else 0
        return Shard(tp=self.tp, expert_ranks=experts, pad_vocab=True)

    def label(self) -> str:
        return f"TP{self.tp} PP{self.pp} DP{self.dp}" + (" EP" if self.ep else "")

    def vllm_args(self) -> list[str]:
        args = ["--tensor-parallel-size", str(self.tp)]
        if self.pp > 1:
            args += ["--pipeline-parallel-size", str(self.pp)]
        if self.dp > 1:
            args += ["--data-parallel-size", str(self.dp)]
        if self.ep:
            args.append("--enable-expert-parallel")
        return args


__all__ = [
    "Layout",
    "Shard",
    "expert_width",
    "kv_bytes_per_token",
    "kv_heads_per_rank",
    "stage_layer_counts",
]
