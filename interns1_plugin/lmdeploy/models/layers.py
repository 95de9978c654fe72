"""LMDeploy layers as the plugin's vision towers and projectors build them.

Each tower keeps the attribute names its checkpoint's tensor names need; what is built under
those names is built here once. Everything here is unquantized (no `quant_config`): FP8
checkpoints keep the vision side in full precision.
"""

from __future__ import annotations

import torch
from lmdeploy.pytorch.nn import FlashAttention
from lmdeploy.pytorch.nn.linear import (
    build_colwise_linear,
    build_qkv_proj,
    build_rowwise_linear,
)
from torch import nn


def mlp_linears(
    in_size: int,
    hidden_size: int,
    out_size: int,
    dtype: torch.dtype | None,
    device: torch.device | None,
) -> tuple[nn.Module, nn.Module]:
    """The two linears of an MLP with bias: column-parallel in, row-parallel out.

    Split over the tensor-parallel ranks, except with data parallelism (`dp_disable_tp`), where
    every rank holds them whole.
    """
    up = build_colwise_linear(
        in_size, hidden_size, bias=True, dtype=dtype, device=device, is_tp=True, dp_disable_tp=True
    )
    down = build_rowwise_linear(
        hidden_size, out_size, bias=True, dtype=dtype, device=device, is_tp=True, dp_disable_tp=True
    )
    return up, down


def self_attention_qkv(
    hidden_size: int,
    num_heads: int,
    bias: bool,
    dtype: torch.dtype | None,
    device: torch.device | None,
) -> nn.Module:
    """One fused q/k/v projection, as many key/value heads as query heads, heads split over
    the ranks."""
    return build_qkv_proj(
        hidden_size,
        num_q_heads=num_heads,
        num_kv_heads=num_heads,
        head_size=hidden_size // num_heads,
        bias=bias,
        dtype=dtype,
        device=device,
    )


class PackedAttention(FlashAttention):
    """LMDeploy's `FlashAttention`, bidirectional, over sequences packed back to back.

    A tower's tiles or frames are its sequences: each attends only within itself.
    """

    def __init__(self, num_heads: int, head_dim: int) -> None:
        super().__init__(num_heads, head_dim, scale=head_dim**-0.5, causal=False)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        starts: torch.Tensor,
        lengths: torch.Tensor,
    ) -> torch.Tensor:
        """(tokens, heads, head_dim) each -> (tokens, heads * head_dim)."""
        out = super().forward(
            query,
            key,
            value,
            q_start_loc=starts,
            q_seqlens=lengths,
            max_q_seqlen=int(lengths.max()),
        )
        return out.flatten(-2)


__all__ = ["PackedAttention", "mlp_linears", "self_attention_qkv"]
