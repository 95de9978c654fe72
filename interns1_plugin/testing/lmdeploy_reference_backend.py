"""A plain-torch operator backend for LMDeploy's PyTorch engine, so its models run without CUDA.

LMDeploy's layers (`lmdeploy.pytorch.nn`) ask the selected backend for every operator through
`build_op(spec)`. Its `default` backend is plain torch already (linear, norms, rotary embedding
incl. FoPE, activations, embedding, softmax top-k routing) but has no attention and no fused MoE;
`ReferenceOpsBackend` adds them, written for reading rather than speed:

- paged attention: the step's keys and values are written into the block cache at the slots the
  block table gives, then each query attends causally to its sequence's cached keys;
- non-paged ("flash") attention over packed sequences, causal or not (vision towers);
- fused MoE: each expert's gated MLP over the tokens routed to it, summed with the routing
  weights (renormalised when the layer asks for it);
- block-FP8 linears and fused MoE: the weights dequantized block by block (weight times its
  block's `weight_scale_inv`), then the same plain matmuls. Activations stay unquantized, so
  this checks where the FP8 tensors and scales land, not the CUDA kernels' rounding.

Anything else (sliding windows, ALiBi, quantized KV cache, expert parallelism) raises, so a test
never silently runs a different model. Tests select it with `use_reference_backend(monkeypatch)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from lmdeploy.messages import QuantPolicy
from lmdeploy.pytorch.backends import selector
from lmdeploy.pytorch.backends.attention import (
    AttentionImpl,
    AttentionMetadata,
    PagedAttentionBuildSpec,
)
from lmdeploy.pytorch.backends.base import BuildSpec, ImplT
from lmdeploy.pytorch.backends.blockedf8_modules import (
    LinearBlockedF8BuildSpec,
    LinearBlockedF8Impl,
)
from lmdeploy.pytorch.backends.default.op_backend import DefaultOpsBackend
from lmdeploy.pytorch.backends.flash_attention import FlashAttentionBuildSpec, FlashAttentionImpl
from lmdeploy.pytorch.backends.moe import (
    FusedMoEBlockedF8BuildSpec,
    FusedMoEBlockedF8Impl,
    FusedMoEBuildSpec,
    FusedMoEImpl,
)


def attend(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    scale: float,
    causal: bool,
) -> torch.Tensor:
    """Softmax attention of one sequence, in float32.

    `query` (q, heads, d), `key`/`value` (k, kv_heads, d); query head h reads key/value head
    h // (heads / kv_heads). With `causal`, the queries are the last q of the k positions.
    """
    group = query.shape[1] // key.shape[1]
    key = key.repeat_interleave(group, dim=1).float()
    value = value.repeat_interleave(group, dim=1).float()
    scores = torch.einsum("qhd,khd->hqk", query.float(), key) * scale
    if causal:
        q_len, k_len = query.shape[0], key.shape[0]
        q_pos = torch.arange(k_len - q_len, k_len, device=query.device)
        later = torch.arange(k_len, device=query.device)[None, :] > q_pos[:, None]
        scores = scores.masked_fill(later, float("-inf"))
    return torch.einsum("hqk,khd->qhd", scores.softmax(-1), value).to(query.dtype)


class ReferencePagedAttention(AttentionImpl[AttentionMetadata]):
    """Fill the block cache with the step's keys and values, then attend over the cache."""

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        attn_metadata: AttentionMetadata,
        k_scales_zeros: torch.Tensor | None = None,
        v_scales_zeros: torch.Tensor | None = None,
        learnable_sink: torch.Tensor | None = None,
        nsa_indices: torch.Tensor | None = None,
        inplace: bool = False,
    ) -> torch.Tensor:
        meta = attn_metadata
        if meta.quant_policy != QuantPolicy.NONE or learnable_sink is not None:
            raise NotImplementedError("the reference backend has no quantized KV cache or sinks")
        block_size = k_cache.shape[1]
        out = query.new_empty(*query.shape[:-1], value.shape[-1])
        rows = zip(
            meta.q_start_loc.tolist(),
            meta.q_seqlens.tolist(),
            meta.kv_seqlens.tolist(),
            strict=True,
        )
        for seq, (start, q_len, kv_len) in enumerate(rows):
            table = meta.block_offsets[seq].long()
            new = torch.arange(kv_len - q_len, kv_len, device=query.device)
            k_cache[table[new // block_size], new % block_size] = key[start : start + q_len]
            v_cache[table[new // block_size], new % block_size] = value[start : start + q_len]
            every = torch.arange(kv_len, device=query.device)
            keys = k_cache[table[every // block_size], every % block_size]
            values = v_cache[table[every // block_size], every % block_size]
            out[start : start + q_len] = attend(
                query[start : start + q_len], keys, values, self.scale, self.causal
            )
        return out


class ReferenceFlashAttention(FlashAttentionImpl):
    """Attention over packed sequences without a cache (vision towers, one tile per sequence)."""

    def __init__(self, spec: FlashAttentionBuildSpec) -> None:
        self.scale = spec.head_dim**-0.5 if spec.scale is None else spec.scale
        self.causal = spec.causal

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        q_start_loc: torch.Tensor,
        q_seqlens: torch.Tensor,
        kv_start_loc: torch.Tensor,
        kv_seqlens: torch.Tensor,
        max_q_seqlen: int | None = None,
    ) -> torch.Tensor:
        out = query.new_empty(*query.shape[:-1], value.shape[-1])
        rows = zip(
            q_start_loc.tolist(),
            q_seqlens.tolist(),
            kv_start_loc.tolist(),
            kv_seqlens.tolist(),
            strict=True,
        )
        for q_start, q_len, k_start, k_len in rows:
            out[q_start : q_start + q_len] = attend(
                query[q_start : q_start + q_len],
                key[k_start : k_start + k_len],
                value[k_start : k_start + k_len],
                self.scale,
                self.causal,
            )
        return out


class ReferenceFusedMoE(FusedMoEImpl):
    """Every expert's gated MLP on the tokens routed to it, weighted by the routing weights."""

    def __init__(self, spec: FusedMoEBuildSpec | FusedMoEBlockedF8BuildSpec) -> None:
        self.renormalize = spec.renormalize

    def forward(
        self,
        hidden_states: torch.Tensor,
        topk_weights: torch.Tensor,
        topk_ids: torch.LongTensor,
        gate_up_weights: torch.Tensor,
        down_weights: torch.Tensor,
        gate_up_bias: torch.Tensor | None = None,
        down_bias: torch.Tensor | None = None,
        expert_list: list[int] | None = None,
        act_func: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        weights = topk_weights.float()
        if self.renormalize:
            weights = weights / weights.sum(-1, keepdim=True)
        out = torch.zeros(hidden_states.shape, dtype=torch.float32, device=hidden_states.device)
        for expert in range(gate_up_weights.shape[0]):
            tokens, slots = (topk_ids == expert).nonzero(as_tuple=True)
            if tokens.numel() == 0:
                continue
            gate_up = F.linear(
                hidden_states[tokens],
                gate_up_weights[expert],
                None if gate_up_bias is None else gate_up_bias[expert],
            )
            if act_func is None:
                gate, up = gate_up.chunk(2, dim=-1)
                inner = F.silu(gate) * up
            else:
                inner = act_func(gate_up)
            down = F.linear(
                inner, down_weights[expert], None if down_bias is None else down_bias[expert]
            )
            out.index_add_(0, tokens, down.float() * weights[tokens, slots, None])
        return out.to(hidden_states.dtype)


def dequantize_blocks(
    weight: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """Block-FP8 weight `(..., out, in)` times its per-block scales `(..., out/b, in/b)`."""
    rows, cols = weight.shape[-2:]
    block_rows = -(-rows // scale.shape[-2])
    block_cols = -(-cols // scale.shape[-1])
    full = scale.repeat_interleave(block_rows, -2).repeat_interleave(block_cols, -1)
    return (weight.float() * full[..., :rows, :cols].float()).to(dtype)


class ReferenceBlockedF8Linear(LinearBlockedF8Impl):
    """A block-FP8 linear as the plain linear of its dequantized weight."""

    def forward(
        self,
        x: torch.Tensor,
        weight: torch.Tensor,
        scale: torch.Tensor,
        bias: torch.Tensor | None = None,
        all_reduce: bool = False,
        group: Any = None,
        rank: int = 0,
        scatter_size: list[int] | None = None,
    ) -> torch.Tensor:
        if all_reduce:
            raise NotImplementedError("the reference backend runs on one rank")
        return F.linear(x, dequantize_blocks(weight, scale, x.dtype), bias)


class ReferenceBlockedF8FusedMoE(FusedMoEBlockedF8Impl):
    """Block-FP8 experts dequantized, then `ReferenceFusedMoE`."""

    def __init__(self, spec: FusedMoEBlockedF8BuildSpec) -> None:
        super().__init__()
        self.moe = ReferenceFusedMoE(spec)

    def forward(
        self,
        hidden_states: torch.Tensor,
        topk_weights: torch.Tensor,
        topk_ids: torch.LongTensor,
        gate_up_weights: torch.Tensor,
        gate_up_scale: torch.Tensor,
        down_weights: torch.Tensor,
        down_scale: torch.Tensor,
        gate_up_bias: torch.Tensor | None = None,
        down_bias: torch.Tensor | None = None,
        expert_list: list[int] | None = None,
        act_func: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        dtype = hidden_states.dtype
        return self.moe.forward(
            hidden_states,
            topk_weights,
            topk_ids,
            dequantize_blocks(gate_up_weights, gate_up_scale, dtype),
            dequantize_blocks(down_weights, down_scale, dtype),
            gate_up_bias,
            down_bias,
            expert_list,
            act_func,
        )


class ReferenceOpsBackend(DefaultOpsBackend):
    """LMDeploy's `default` backend plus the reference attention and fused MoE above."""

    @staticmethod
    def get_name() -> str:
        return "reference"

    @classmethod
    def build_op(cls, spec: BuildSpec[ImplT], *, enable_deterministic: bool = False) -> ImplT:
        if isinstance(spec, PagedAttentionBuildSpec):
            _refuse(
                spec,
                alibi=spec.alibi,
                sliding_window=spec.sliding_window,
                logit_softcapping=spec.logit_softcapping,
                use_flash_mla=spec.use_flash_mla,
                learnable_sink=spec.learnable_sink,
                mla_index_topk=spec.mla_index_topk,
            )
            return ReferencePagedAttention(  # type: ignore[return-value]
                spec.num_heads,
                spec.head_dim,
                scale=spec.scale,
                num_kv_heads=spec.num_kv_heads,
                v_head_size=spec.v_head_dim,
                causal=spec.causal,
            )
        if isinstance(spec, FlashAttentionBuildSpec):
            _refuse(
                spec, sliding_window=spec.sliding_window, logit_softcapping=spec.logit_softcapping
            )
            return ReferenceFlashAttention(spec)  # type: ignore[return-value]
        if isinstance(spec, (FusedMoEBuildSpec, FusedMoEBlockedF8BuildSpec)):
            if spec.ep_size > 1:
                raise NotImplementedError("the reference backend has no expert parallelism")
            if isinstance(spec, FusedMoEBlockedF8BuildSpec):
                return ReferenceBlockedF8FusedMoE(spec)  # type: ignore[return-value]
            return ReferenceFusedMoE(spec)  # type: ignore[return-value]
        if isinstance(spec, LinearBlockedF8BuildSpec):
            return ReferenceBlockedF8Linear()  # type: ignore[return-value]
        return super().build_op(spec, enable_deterministic=enable_deterministic)

    @staticmethod
    def ccl_backend() -> str:
        """Tensors live on the CPU, so tensor-parallel collectives go through gloo, not NCCL."""
        return "gloo"

    @staticmethod
    def get_attention_metadata_cls() -> type[AttentionMetadata]:
        return AttentionMetadata

    @classmethod
    def update_step_context(cls, step_context: Any) -> Any:
        """The attention metadata of one step: where each sequence's queries and keys are."""
        step_context.attn_metadata = AttentionMetadata(
            is_decoding=step_context.is_decoding,
            block_offsets=step_context.block_offsets,
            q_start_loc=step_context.q_start_loc,
            q_seqlens=step_context.q_seqlens,
            kv_seqlens=step_context.kv_seqlens,
            quant_policy=step_context.kv_quant_policy,
        )
        return step_context


def _refuse(spec: BuildSpec, **features: Any) -> None:
    """Raise for any attention feature the reference does not implement."""
    used = [name for name, value in features.items() if value not in (None, False, 0, 0.0)]
    if used:
        raise NotImplementedError(
            f"the reference backend does not implement {', '.join(used)} ({type(spec).__name__})"
        )


def use_reference_backend(monkeypatch: Any) -> type[ReferenceOpsBackend]:
    """Make LMDeploy's backend selector return `ReferenceOpsBackend` (undone by `monkeypatch`)."""
    monkeypatch.setattr(selector, "_get_backend", lambda: ReferenceOpsBackend)
    return ReferenceOpsBackend


__all__ = [
    "ReferenceBlockedF8FusedMoE",
    "ReferenceBlockedF8Linear",
    "ReferenceFlashAttention",
    "ReferenceFusedMoE",
    "ReferenceOpsBackend",
    "ReferencePagedAttention",
    "attend",
    "dequantize_blocks",
    "use_reference_backend",
]
