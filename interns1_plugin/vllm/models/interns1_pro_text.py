"""Intern-S1-Pro's language model: vLLM's Qwen3-MoE body with FoPE and grouped expert routing.

Two things differ from Qwen3-MoE, and both are plugged into vLLM's own blocks:

- FoPE: vLLM's `FourierRotaryEmbedding` with the learned sin/cos coefficients. The checkpoint
  stores one coefficient pair for the whole model (`model.language_model.rotary_emb.*_coef`),
  so the module lives once on the text model and every attention layer uses it; it is not
  registered under the layers, which keeps one name per tensor (and works for every pipeline
  stage). Coefficients are per KV head and split across tensor-parallel ranks with the heads.
- Grouped routing: experts form `router_n_groups` equal groups and each token takes the same
  number of experts from every group (balanced load under expert parallelism). It goes into
  vLLM's fused MoE as its `custom_routing_function`, so expert parallelism, FP8 experts and the
  fused kernels stay vLLM's.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from vllm.config import CacheConfig, VllmConfig
from vllm.distributed import get_ep_group, get_tensor_model_parallel_world_size
from vllm.model_executor.layers.attention import Attention
from vllm.model_executor.layers.fused_moe import FusedMoEFactory, GateLinear
from vllm.model_executor.layers.layernorm import RMSNorm
from vllm.model_executor.layers.linear import QKVParallelLinear, RowParallelLinear
from vllm.model_executor.layers.logits_processor import LogitsProcessor
from vllm.model_executor.layers.quantization import QuantizationConfig
from vllm.model_executor.layers.rotary_embedding.fope import FourierRotaryEmbedding
from vllm.model_executor.layers.vocab_parallel_embedding import ParallelLMHead
from vllm.model_executor.models.interfaces import MixtureOfExperts, SupportsPP
from vllm.model_executor.models.qwen3_moe import Qwen3MoeMLP, Qwen3MoeModel
from vllm.model_executor.models.utils import (
    AutoWeightsLoader,
    PPMissingLayer,
    extract_layer_index,
    maybe_prefix,
)
from vllm.sequence import IntermediateTensors

from interns1_plugin.configs.interns1_pro import FOPE_KEYS


def grouped_topk_routing(
    hidden_states: torch.Tensor,
    gating_output: torch.Tensor,
    topk: int,
    renormalize: bool,
    *,
    n_groups: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax over all experts, then top-(topk / n_groups) inside each group of experts.

    Returns float32 weights and int64 global expert ids, `topk` per token, group by group.
    `n_groups <= 1` is plain softmax top-k.
    """
    del hidden_states  # the signature vLLM's custom routing hook calls with
    probs = torch.softmax(gating_output, dim=-1, dtype=torch.float32)
    if n_groups > 1:
        num_experts = probs.shape[-1]
        if num_experts % n_groups or topk % n_groups:
            raise ValueError(
                f"grouped routing needs experts ({num_experts}) and top-k ({topk}) divisible "
                f"by router_n_groups ({n_groups})"
            )
        group_size = num_experts // n_groups
        weights, ids = probs.unflatten(-1, (n_groups, group_size)).topk(topk // n_groups, dim=-1)
        offsets = torch.arange(n_groups, device=ids.device).unsqueeze(-1) * group_size
        weights, ids = weights.flatten(-2), (ids + offsets).flatten(-2)
    else:
        weights, ids = probs.topk(topk, dim=-1)
    if renormalize:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights, ids


def fope_rotary_embedding(config: Any, head_dim: int) -> FourierRotaryEmbedding:
    """The model's one FoPE module, sized for this rank's KV heads."""
    rope = dict(getattr(config, "rope_scaling", None) or {})
    if not any(rope.get(key) is not None for key in FOPE_KEYS):
        raise ValueError("Intern-S1-Pro's text_config.rope_scaling carries no FoPE keys")
    if not rope.get("fope_sep_head", True):
        raise NotImplementedError("FoPE with coefficients shared across heads is not supported")
    theta = rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))
    tp_size = get_tensor_model_parallel_world_size()
    return FourierRotaryEmbedding(
        head_size=head_dim,
        rotary_dim=head_dim,
        max_position_embeddings=config.max_position_embeddings,
        base=float(theta),
        is_neox_style=True,
        dtype=torch.get_default_dtype(),
        init_cache=False,
        num_key_value_heads=max(1, config.num_key_value_heads // tp_size),
        num_inv_freq=rope.get("num_inv_freq"),
        fope_sep_head=True,
        fope_init_factor=rope.get("fope_init_factor"),
    )


class InternS1ProSparseMoeBlock(nn.Module):
    """Router gate + vLLM's fused experts with grouped routing."""

    def __init__(self, vllm_config: VllmConfig, prefix: str = "") -> None:
        super().__init__()
        config = vllm_config.model_config.hf_text_config
        parallel_config = vllm_config.parallel_config
        if get_tensor_model_parallel_world_size() > config.num_experts:
            raise ValueError(
                f"tensor parallel size exceeds the number of experts ({config.num_experts})"
            )
        ep_size = get_ep_group().device_group.size()
        self.n_routed_experts = config.num_experts
        self.n_logical_experts = config.num_experts
        self.n_redundant_experts = parallel_config.eplb_config.num_redundant_experts
        self.n_physical_experts = self.n_logical_experts + self.n_redundant_experts
        self.n_local_physical_experts = self.n_physical_experts // ep_size
        routing = functools.partial(
            grouped_topk_routing, n_groups=int(getattr(config, "router_n_groups", 0) or 0)
        )
        self.experts = FusedMoEFactory(
            num_experts=config.num_experts,
            top_k=config.num_experts_per_tok,
            hidden_size=config.hidden_size,
            intermediate_size=config.moe_intermediate_size,
            renormalize=config.norm_topk_prob,
            quant_config=vllm_config.quant_config,
            prefix=f"{prefix}.experts",
            enable_eplb=parallel_config.enable_eplb,
            num_redundant_experts=self.n_redundant_experts,
            custom_routing_function=routing,
        )
        self.gate = GateLinear(config.hidden_size, config.num_experts, prefix=f"{prefix}.gate")

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        router_logits, _ = self.gate(hidden_states)
        return self.experts(hidden_states=hidden_states, router_logits=router_logits)


class InternS1ProAttention(nn.Module):
    """Qwen3 attention (per-head q/k RMSNorm) with the model's shared FoPE module."""

    def __init__(
        self,
        config: Any,
        rotary_emb: FourierRotaryEmbedding,
        cache_config: CacheConfig | None,
        quant_config: QuantizationConfig | None,
        prefix: str,
    ) -> None:
        super().__init__()
        tp_size = get_tensor_model_parallel_world_size()
        total_heads, total_kv = config.num_attention_heads, config.num_key_value_heads
        if total_heads % tp_size or (total_kv % tp_size and tp_size % total_kv):
            raise ValueError(
                f"{total_heads} query / {total_kv} KV heads cannot be split over {tp_size} ranks"
            )
        self.num_heads = total_heads // tp_size
        self.num_kv_heads = max(1, total_kv // tp_size)
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // total_heads
        self.q_size = self.num_heads * self.head_dim
        self.kv_size = self.num_kv_heads * self.head_dim
        self.qkv_proj = QKVParallelLinear(
            config.hidden_size,
            self.head_dim,
            total_heads,
            total_kv,
            bias=getattr(config, "attention_bias", False),
            quant_config=quant_config,
            prefix=f"{prefix}.qkv_proj",
        )
        self.o_proj = RowParallelLinear(
            total_heads * self.head_dim,
            config.hidden_size,
            bias=False,
            quant_config=quant_config,
            prefix=f"{prefix}.o_proj",
        )
        # Owned by the text model; kept out of this module's parameters on purpose.
        self.__dict__["rotary_emb"] = rotary_emb
        self.attn = Attention(
            self.num_heads,
            self.head_dim,
            self.head_dim**-0.5,
            num_kv_heads=self.num_kv_heads,
            cache_config=cache_config,
            quant_config=quant_config,
            prefix=f"{prefix}.attn",
        )
        self.q_norm = RMSNorm(self.head_dim, eps=config.rms_norm_eps)
        self.k_norm = RMSNorm(self.head_dim, eps=config.rms_norm_eps)

    def forward(self, positions: torch.Tensor, hidden_states: torch.Tensor) -> torch.Tensor:
        qkv, _ = self.qkv_proj(hidden_states)
        q, k, v = qkv.split([self.q_size, self.kv_size, self.kv_size], dim=-1)
        q = self.q_norm(q.unflatten(-1, (-1, self.head_dim))).flatten(-2)
        k = self.k_norm(k.unflatten(-1, (-1, self.head_dim))).flatten(-2)
        # The per-KV-head cos/sin table is applied by the reference path; vLLM's fused rotary
        # kernels take one table for all heads.
        q, k = self.rotary_emb.forward_native(positions, q, k)
        out = self.attn(q.flatten(-2), k.flatten(-2), v)
        return self.o_proj(out)[0]


class InternS1ProDecoderLayer(nn.Module):
    def __init__(
        self, vllm_config: VllmConfig, prefix: str, rotary_emb: FourierRotaryEmbedding
    ) -> None:
        super().__init__()
        config = vllm_config.model_config.hf_text_config
        quant_config = vllm_config.quant_config
        self.self_attn = InternS1ProAttention(
            config, rotary_emb, vllm_config.cache_config, quant_config, f"{prefix}.self_attn"
        )
        layer_idx = extract_layer_index(prefix)
        sparse = (
            layer_idx not in (getattr(config, "mlp_only_layers", None) or [])
            and config.num_experts > 0
            and (layer_idx + 1) % config.decoder_sparse_step == 0
        )
        if sparse:
            self.mlp = InternS1ProSparseMoeBlock(vllm_config, prefix=f"{prefix}.mlp")
        else:
            self.mlp = Qwen3MoeMLP(
                hidden_size=config.hidden_size,
                intermediate_size=config.intermediate_size,
                hidden_act=config.hidden_act,
                quant_config=quant_config,
                prefix=f"{prefix}.mlp",
            )
        self.input_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(
        self,
        positions: torch.Tensor,
        hidden_states: torch.Tensor,
        residual: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if residual is None:
            residual = hidden_states
            hidden_states = self.input_layernorm(hidden_states)
        else:
            hidden_states, residual = self.input_layernorm(hidden_states, residual)
        hidden_states = self.self_attn(positions, hidden_states)
        hidden_states, residual = self.post_attention_layernorm(hidden_states, residual)
        return self.mlp(hidden_states), residual


class InternS1ProTextModel(Qwen3MoeModel):
    """Qwen3-MoE body whose layers share the model's FoPE module (`rotary_emb`)."""

    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
        config = vllm_config.model_config.hf_text_config
        head_dim = getattr(config, "head_dim", None) or (
            config.hidden_size // config.num_attention_heads
        )
        rotary_emb = fope_rotary_embedding(config, head_dim)
        super().__init__(
            vllm_config=vllm_config,
            prefix=prefix,
            decoder_layer_type=functools.partial(InternS1ProDecoderLayer, rotary_emb=rotary_emb),
        )
        self.rotary_emb = rotary_emb


class InternS1ProForCausalLM(nn.Module, SupportsPP, MixtureOfExperts):
    """The text model plus `lm_head`; the multimodal model wraps it as `language_model`."""

    packed_modules_mapping = {"qkv_proj": ["q_proj", "k_proj", "v_proj"]}

    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
        super().__init__()
        config = vllm_config.model_config.hf_text_config
        self.config = config
        if getattr(config, "mlp_only_layers", None):
            self.packed_modules_mapping = self.packed_modules_mapping | {
                "gate_up_proj": ["gate_proj", "up_proj"]
            }
        self.model = InternS1ProTextModel(
            vllm_config=vllm_config, prefix=maybe_prefix(prefix, "model")
        )
        self.lm_head = ParallelLMHead(
            config.vocab_size,
            config.hidden_size,
            quant_config=vllm_config.quant_config,
            prefix=maybe_prefix(prefix, "lm_head"),
        )
        if config.tie_word_embeddings:
            self.lm_head = self.lm_head.tie_weights(self.model.embed_tokens)
        self.logits_processor = LogitsProcessor(config.vocab_size)
        self.make_empty_intermediate_tensors = self.model.make_empty_intermediate_tensors
        self._set_moe_parameters()

    def _moe_blocks(self) -> list[InternS1ProSparseMoeBlock]:
        return [
            layer.mlp
            for layer in self.model.layers
            if not isinstance(layer, PPMissingLayer)
            and isinstance(layer.mlp, InternS1ProSparseMoeBlock)
        ]

    def _set_moe_parameters(self) -> None:
        blocks = self._moe_blocks()
        if not blocks:
            raise RuntimeError("Intern-S1-Pro's language model has no MoE layer on this rank")
        example = blocks[0]
        self.moe_layers = [block.experts for block in blocks]
        self.num_moe_layers = len(blocks)
        self.num_expert_groups = 1
        self.num_shared_experts = 0
        self.num_logical_experts = example.n_logical_experts
        self.num_physical_experts = example.n_physical_experts
        self.num_local_physical_experts = example.n_local_physical_experts
        self.num_routed_experts = example.n_routed_experts
        self.num_redundant_experts = example.n_redundant_experts

    def update_physical_experts_metadata(
        self, num_physical_experts: int, num_local_physical_experts: int
    ) -> None:
        self.num_physical_experts = num_physical_experts
        self.num_local_physical_experts = num_local_physical_experts
        self.num_redundant_experts = num_physical_experts - self.num_logical_experts
        for block in self._moe_blocks():
            block.n_local_physical_experts = num_local_physical_experts
            block.n_physical_experts = num_physical_experts
            block.n_redundant_experts = self.num_redundant_experts
            block.experts.update_expert_map()

    def embed_input_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.embed_input_ids(input_ids)

    def forward(
        self,
        input_ids: torch.Tensor | None,
        positions: torch.Tensor,
        intermediate_tensors: IntermediateTensors | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor | IntermediateTensors:
        return self.model(input_ids, positions, intermediate_tensors, inputs_embeds)

    def compute_logits(self, hidden_states: torch.Tensor) -> torch.Tensor | None:
        return self.logits_processor(self.lm_head, hidden_states)

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        return AutoWeightsLoader(self).load_weights(weights)


__all__ = [
    "InternS1ProForCausalLM",
    "InternS1ProSparseMoeBlock",
    "InternS1ProTextModel",
    "fope_rotary_embedding",
    "grouped_topk_routing",
]
