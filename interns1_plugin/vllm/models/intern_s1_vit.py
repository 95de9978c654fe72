"""InternViT of Intern-S1 / mini, built from vLLM's parallel layers and encoder attention.

Module names follow the checkpoint (`embeddings.*`, `encoder.layer.N.*`) so that the model's one
weight mapper only renames prefixes and stacks `q_proj`/`k_proj`/`v_proj` into `qkv_proj`.
Two variants share the code: mini's LayerNorm + attention bias, and Intern-S1's RMSNorm + qk-norm,
where qk-norm is one RMSNorm over the full hidden size (all heads together), not per head.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PretrainedConfig
from vllm.distributed import (
    get_tensor_model_parallel_rank,
    get_tensor_model_parallel_world_size,
    tensor_model_parallel_all_gather,
)
from vllm.model_executor.layers.activation import get_act_fn
from vllm.model_executor.layers.attention import MMEncoderAttention
from vllm.model_executor.layers.conv import Conv2dLayer
from vllm.model_executor.layers.layernorm import LayerNorm, RMSNorm
from vllm.model_executor.layers.linear import QKVParallelLinear, RowParallelLinear
from vllm.model_executor.layers.quantization import QuantizationConfig
from vllm.model_executor.models.vision import (
    is_vit_use_data_parallel,
    run_dp_sharded_vision_model,
)

from interns1_plugin.modeling.interns1_vision_config import as_pair
from interns1_plugin.vllm.models.layers import mlp_linears


def _norm(config: PretrainedConfig) -> nn.Module:
    """The block norm named by `norm_type`: Intern-S1 uses RMSNorm, mini LayerNorm."""
    if config.norm_type == "rms_norm":
        return RMSNorm(config.hidden_size, eps=config.layer_norm_eps)
    if config.norm_type == "layer_norm":
        return LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
    raise ValueError(f"unknown vision norm_type {config.norm_type!r}")


class InternS1VisionPatchEmbeddings(nn.Module):
    """14x14 patches of one 448x448 tile, projected to the hidden size."""

    def __init__(self, config: PretrainedConfig) -> None:
        super().__init__()
        patch = as_pair(config.patch_size)
        self.projection = Conv2dLayer(
            config.num_channels, config.hidden_size, kernel_size=patch, stride=patch
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        patches = self.projection(pixel_values.to(self.projection.weight.dtype))
        return patches.flatten(2).transpose(1, 2)


class InternS1VisionEmbeddings(nn.Module):
    """Patch embeddings with a CLS token in front and learned absolute positions added."""

    def __init__(self, config: PretrainedConfig) -> None:
        super().__init__()
        height, width = as_pair(config.image_size)
        patch_h, patch_w = as_pair(config.patch_size)
        num_positions = (height // patch_h) * (width // patch_w) + 1
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.patch_embeddings = InternS1VisionPatchEmbeddings(config)
        self.position_embeddings = nn.Parameter(torch.zeros(1, num_positions, config.hidden_size))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embeddings(pixel_values)
        if patches.shape[1] + 1 != self.position_embeddings.shape[1]:
            # Tiles are always resized to the configured size by the processor.
            raise ValueError(
                f"tile gives {patches.shape[1]} patches, expected "
                f"{self.position_embeddings.shape[1] - 1}"
            )
        cls = self.cls_token.expand(patches.shape[0], -1, -1).to(patches.dtype)
        embeddings = torch.cat([cls, patches], dim=1)
        return embeddings + self.position_embeddings.to(patches.dtype)


class InternS1VisionAttention(nn.Module):
    """Bidirectional attention over one tile's tokens; heads split across TP ranks."""

    def __init__(
        self,
        config: PretrainedConfig,
        quant_config: QuantizationConfig | None,
        *,
        use_data_parallel: bool,
        prefix: str,
    ) -> None:
        super().__init__()
        self.hidden_size = config.hidden_size
        num_heads = config.num_attention_heads
        head_dim = self.hidden_size // num_heads
        self.tp_size = 1 if use_data_parallel else get_tensor_model_parallel_world_size()
        self.tp_rank = 0 if use_data_parallel else get_tensor_model_parallel_rank()
        self.local_size = self.hidden_size // self.tp_size

        self.qkv_proj = QKVParallelLinear(
            self.hidden_size,
            head_dim,
            num_heads,
            bias=config.attention_bias,
            quant_config=quant_config,
            prefix=f"{prefix}.qkv_proj",
            disable_tp=use_data_parallel,
        )
        self.use_qk_norm = bool(config.use_qk_norm)
        if self.use_qk_norm:
            self.q_norm = RMSNorm(self.hidden_size, eps=config.layer_norm_eps)
            self.k_norm = RMSNorm(self.hidden_size, eps=config.layer_norm_eps)
        self.projection_layer = RowParallelLinear(
            self.hidden_size,
            self.hidden_size,
            bias=True,
            quant_config=quant_config,
            prefix=f"{prefix}.projection_layer",
            disable_tp=use_data_parallel,
        )
        self.attn = MMEncoderAttention(
            num_heads // self.tp_size, head_dim, head_dim**-0.5, prefix=f"{prefix}.attn"
        )

    def _full_width_norm(self, norm: RMSNorm, x: torch.Tensor) -> torch.Tensor:
        """Apply a norm whose statistics span all heads, to this rank's slice of heads."""
        if self.tp_size == 1:
            return norm(x)
        full = norm(tensor_model_parallel_all_gather(x.contiguous()))
        start = self.tp_rank * self.local_size
        return full[..., start : start + self.local_size]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        qkv, _ = self.qkv_proj(hidden_states)
        q, k, v = qkv.split(self.local_size, dim=-1)
        if self.use_qk_norm:
            q = self._full_width_norm(self.q_norm, q)
            k = self._full_width_norm(self.k_norm, k)
        out, _ = self.projection_layer(self.attn(q, k, v))
        return out


class InternS1VisionMLP(nn.Module):
    def __init__(
        self,
        config: PretrainedConfig,
        quant_config: QuantizationConfig | None,
        *,
        use_data_parallel: bool,
        prefix: str,
    ) -> None:
        super().__init__()
        self.fc1, self.fc2 = mlp_linears(
            config.hidden_size,
            config.intermediate_size,
            config.hidden_size,
            quant_config=quant_config,
            disable_tp=use_data_parallel,
            prefixes=(f"{prefix}.fc1", f"{prefix}.fc2"),
        )
        self.act = get_act_fn(config.hidden_act)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states, _ = self.fc1(hidden_states)
        hidden_states, _ = self.fc2(self.act(hidden_states))
        return hidden_states


class InternS1VisionLayer(nn.Module):
    """Pre-norm block whose two residual branches are scaled by learned `lambda_1`/`lambda_2`."""

    def __init__(
        self,
        config: PretrainedConfig,
        quant_config: QuantizationConfig | None,
        *,
        use_data_parallel: bool,
        prefix: str,
    ) -> None:
        super().__init__()
        self.attention = InternS1VisionAttention(
            config, quant_config, use_data_parallel=use_data_parallel, prefix=f"{prefix}.attention"
        )
        self.mlp = InternS1VisionMLP(
            config, quant_config, use_data_parallel=use_data_parallel, prefix=f"{prefix}.mlp"
        )
        self.layernorm_before = _norm(config)
        self.layernorm_after = _norm(config)
        self.lambda_1 = nn.Parameter(torch.ones(config.hidden_size))
        self.lambda_2 = nn.Parameter(torch.ones(config.hidden_size))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = hidden_states + self.lambda_1 * self.attention(
            self.layernorm_before(hidden_states)
        )
        return hidden_states + self.lambda_2 * self.mlp(self.layernorm_after(hidden_states))


class InternS1VisionEncoder(nn.Module):
    def __init__(
        self,
        config: PretrainedConfig,
        quant_config: QuantizationConfig | None,
        *,
        use_data_parallel: bool,
        prefix: str,
    ) -> None:
        super().__init__()
        self.layer = nn.ModuleList(
            InternS1VisionLayer(
                config,
                quant_config,
                use_data_parallel=use_data_parallel,
                prefix=f"{prefix}.layer.{index}",
            )
            for index in range(config.num_hidden_layers)
        )

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        for layer in self.layer:
            hidden_states = layer(hidden_states)
        return hidden_states


class InternS1VisionModel(nn.Module):
    """Tiles `(N, 3, 448, 448)` in, last hidden states `(N, 1 + patches, hidden)` out (CLS first).

    When the heads do not divide the TP size (InternViT-6B has 25) or `mm_encoder_tp_mode` is
    `data`, every rank holds the whole tower and runs its share of the tiles instead.
    """

    def __init__(
        self,
        config: PretrainedConfig,
        quant_config: QuantizationConfig | None = None,
        *,
        prefix: str = "",
    ) -> None:
        super().__init__()
        self.use_data_parallel = is_vit_use_data_parallel(config.num_attention_heads)
        self.embeddings = InternS1VisionEmbeddings(config)
        self.encoder = InternS1VisionEncoder(
            config,
            quant_config,
            use_data_parallel=self.use_data_parallel,
            prefix=f"{prefix}.encoder",
        )
        # Intern-S1 pools by mean (`use_mean_pooling`), which leaves no final norm.
        self.layernorm = (
            nn.Identity()
            if config.use_mean_pooling
            else LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        )

    def _forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.layernorm(self.encoder(self.embeddings(pixel_values)))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if self.use_data_parallel and get_tensor_model_parallel_world_size() > 1:
            return run_dp_sharded_vision_model(pixel_values, self._forward)
        return self._forward(pixel_values)
