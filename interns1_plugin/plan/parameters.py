"""The language model tensor by tensor, as one rank holds it, with exact parameter and byte
counts (BF16, or FP8 plus its float32 block scales).

Why: counting every tensor, rather than multiplying a headline size, is what makes tied
embeddings, per-stage embeddings and FP8 scales come out exact for any layout.
"""

from __future__ import annotations

from dataclasses import dataclass

from interns1_plugin.plan.shapes import Quant, TextShape
from interns1_plugin.plan.sharding import Shard, expert_width, kv_heads_per_rank
from interns1_plugin.plan.units import BF16_BYTES, ceil_div

#: vLLM pads the vocabulary of the embedding and lm_head to a multiple of this before splitting.
VOCAB_PADDING = 64
FP8_SCALE_BYTES = 4


@dataclass(frozen=True)
class Tensor:
    """One weight (or a stack of same-shaped expert weights) as one rank holds it."""

    rows: int
    cols: int = 1
    copies: int = 1
    #: A language-model linear: FP8 (plus block scales) in FP8 checkpoints.
    linear: bool = False

    @property
    def params(self) -> int:
        return self.rows * self.cols * self.copies

    def nbytes(self, quant: Quant) -> int:
        if not (quant.fp8 and self.linear):
            return self.params * BF16_BYTES
        if quant.block is None:
            scales = 1
        else:
            scales = ceil_div(self.rows, quant.block[0]) * ceil_div(self.cols, quant.block[1])
        return self.copies * (self.rows * self.cols + scales * FP8_SCALE_BYTES)


def layer_tensors(text: TextShape, layer: int, shard: Shard) -> list[Tensor]:
    """One decoder layer: attention with qk-norm, then a dense MLP or a MoE block."""
    hidden, hd = text.hidden, text.head_dim
    q = ceil_div(text.heads, shard.tp) * hd
    kv = kv_heads_per_rank(text, shard.tp) * hd
    tensors = [
        Tensor(q, hidden, linear=True),
        Tensor(kv, hidden, linear=True),
        Tensor(kv, hidden, linear=True),
        Tensor(hidden, q, linear=True),
        Tensor(hd),  # q_norm
        Tensor(hd),  # k_norm
        Tensor(hidden),  # input_layernorm
        Tensor(hidden),  # post_attention_layernorm
    ]
    if text.attention_bias:
        tensors += [Tensor(q), Tensor(kv), Tensor(kv)]
    if text.sparse[layer]:
        local = ceil_div(text.experts, shard.expert_ranks) if shard.expert_ranks else text.experts
        width = expert_width(text, shard)
        tensors += [
            Tensor(text.experts, hidden),  # router gate, BF16, replicated
            Tensor(width, hidden, local, linear=True),  # gate_proj
            Tensor(width, hidden, local, linear=True),  # up_proj
            Tensor(hidden, width, local, linear=True),  # down_proj
        ]
    else:
        width = ceil_div(text.intermediate, shard.tp)
        tensors += [
            Tensor(width, hidden, linear=True),
            Tensor(width, hidden, linear=True),
            Tensor(hidden, width, linear=True),
        ]
    return tensors


def _vocab_rows(text: TextShape, shard: Shard) -> int:
    if not shard.pad_vocab:
        return ceil_div(text.vocab, shard.tp)
    return ceil_div(ceil_div(text.vocab, VOCAB_PADDING) * VOCAB_PADDING, shard.tp)


def stage_tensors(
    text: TextShape, layers: range, first: bool, last: bool, shard: Shard
) -> list[Tensor]:
    """A PP stage: its layers, plus the embedding (first) and final norm + lm_head (last)."""
    vocab = _vocab_rows(text, shard)
    tensors = [Tensor(vocab, text.hidden)] if first else []
    for layer in layers:
        tensors += layer_tensors(text, layer, shard)
    if last:
        tensors.append(Tensor(text.hidden))
        if not (text.tied and first):  # tied weights share the embedding on the same stage
            tensors.append(Tensor(vocab, text.hidden))
    if text.fope_freqs:  # one shared sin/cos coefficient pair, split by KV head like K
        heads = kv_heads_per_rank(text, shard.tp) if text.fope_per_head else 1
        tensors += [Tensor(text.fope_freqs, text.fope_freqs, heads)] * 2
    return tensors


__all__ = ["FP8_SCALE_BYTES", "VOCAB_PADDING", "Tensor", "layer_tensors", "stage_tensors"]
