"""Memory vLLM needs on a rank besides weights and KV cache: the rope cache, the activations of
one forward pass and a fixed runtime reserve.

Why: these decide how much of the budget is left for KV cache; they are estimates, kept apart
from the exact weight counts so each can be revised on its own.
"""

from __future__ import annotations

from interns1_plugin.plan.shapes import TextShape
from interns1_plugin.plan.sharding import Shard, expert_width, kv_heads_per_rank
from interns1_plugin.plan.units import BF16_BYTES, ceil_div

#: Left inside vLLM's budget for CUDA graphs, NCCL and allocator buffers and the sampler.
RUNTIME_RESERVE_GIB = 2.0


def rope_cache_bytes(text: TextShape, tp: int) -> int:
    """vLLM's cos/sin cache over max positions (per KV head with FoPE), in the model dtype."""
    if text.fope_freqs:
        heads = kv_heads_per_rank(text, tp) if text.fope_per_head else 1
        return text.max_positions * heads * 2 * text.head_dim * BF16_BYTES
    return text.max_positions * text.head_dim * BF16_BYTES


def activation_bytes_per_token(text: TextShape, shard: Shard) -> int:
    """Peak BF16 activations per batch token: hidden states and residual, attention in/out, qkv,
    and the MLP's gate/up/act buffers (MoE: top-k copies of the fused-MoE intermediates)."""
    heads = ceil_div(text.heads, shard.tp)
    qkv = (heads + 2 * kv_heads_per_rank(text, shard.tp)) * text.head_dim
    widths = []
    if text.has_dense_mlp:
        widths.append(3 * ceil_div(text.intermediate, shard.tp))
    if text.is_moe:
        widths.append(text.top_k * (3 * expert_width(text, shard) + text.hidden))
    return BF16_BYTES * (4 * text.hidden + qkv + max(widths))


__all__ = ["RUNTIME_RESERVE_GIB", "activation_bytes_per_token", "rope_cache_bytes"]
