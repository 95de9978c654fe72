"""InternViT of Intern-S1 / mini, built from LMDeploy's PyTorch-engine layers.

Module names follow the checkpoint (`embeddings.*`, `encoder.layer.N.*`) so that the model's one
weight mapper only renames prefixes and stacks `q_proj`/`k_proj`/`v_proj` into `qkv_proj`.
Attention runs through LMDeploy's `FlashAttention` (non-causal, one sequence per tile), the
linears are LMDeploy's tensor-parallel ones with heads split over the ranks (InternViT-6B's 25
heads split unevenly, as LMDeploy allows). The two published variants share the code: mini's
LayerNorm with attention bias, and Intern-S1's RMSNorm with qk-norm, where qk-norm is one RMSNorm
over the full hidden size (all heads together), so under tensor parallelism the squared sums of
the ranks' slices are all-reduced before normalising.
"""

from __future__ import annotations

import torch
from lmdeploy.pytorch import distributed as dist
from lmdeploy.pytorch.distributed import get_tp_world_rank
from lmdeploy.pytorch.nn import LayerNorm, RMSNorm
from lmdeploy.pytorch.nn.linear import build_o_proj
from torch import nn
from transformers import PretrainedConfig
from transformers.activations import ACT2FN

from interns1_plugin.lmdeploy.models.layers import (
    PackedAttention,
    mlp_linears,
    self_attention_qkv,
)
from interns1_plugin.modeling.interns1_vision_config import as_pair


def _block_norm(config: PretrainedConfig, dtype: torch.dtype | None, device: torch.device | None):
    """The block norm named by `norm_type`: Intern-S1 uses RMSNorm, mini LayerNorm."""
    if config.norm_type == "rms_norm":
        return RMSNorm(config.hidden_size, config.layer_norm_eps, dtype=dtype, device=device)
    if config.norm_type == "layer_norm":
        return LayerNorm(config.hidden_size, config.layer_norm_eps, dtype=dtype, device=device)
    raise ValueError(f"unknown vision norm_type {config.norm_type!r}")


class InternS1VisionPatchEmbeddings(nn.Module):
    """A strided convolution: one hidden vector per patch."""

    def __init__(
        self, config: PretrainedConfig, dtype: torch.dtype | None, device: torch.device | None
    ) -> None:
        super().__init__()
        patch = as_pair(config.patch_size)
        self.projection = nn.Conv2d(
            config.num_channels,
            config.hidden_size,
            kernel_size=patch,
            stride=patch,
            dtype=dtype,
            device=device,
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        patches = self.projection(pixel_values.to(self.projection.weight.dtype))
        return patches.flatten(2).transpose(1, 2)


class InternS1VisionEmbeddings(nn.Module):
    """14x14 patches of each tile, a CLS token in front, learned absolute positions added."""

    def __init__(
        self, config: PretrainedConfig, dtype: torch.dtype | None, device: torch.device | None
    ) -> None:
        super().__init__()
        height, width = as_pair(config.image_size)
        patch_h, patch_w = as_pair(config.patch_size)
        self.image_size = (height, width)
        self.num_channels = config.num_channels
        num_positions = (height // patch_h) * (width // patch_w) + 1
        hidden = config.hidden_size
        self.cls_token = nn.Parameter(torch.empty(1, 1, hidden, dtype=dtype, device=device))
        self.patch_embeddings = InternS1VisionPatchEmbeddings(config, dtype, device)
        self.position_embeddings = nn.Parameter(
            torch.empty(1, num_positions, hidden, dtype=dtype, device=device)
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        expected = (self.num_channels, *self.image_size)
        if pixel_values.dim() != 4 or tuple(pixel_values.shape[1:]) != expected:
            raise ValueError(
                f"pixel_values must be tiles of shape (N, {', '.join(map(str, expected))}), "
                f"got {tuple(pixel_values.shape)}"
            )
        patches = self.patch_embeddings(pixel_values)
        cls = self.cls_token.expand(patches.shape[0], -1, -1)
        return torch.cat([cls, patches], dim=1) + self.position_embeddings


class InternS1VisionAttention(nn.Module):
    """Bidirectional attention inside each tile; heads split over the tensor-parallel ranks."""

    def __init__(
        self, config: PretrainedConfig, dtype: torch.dtype | None, device: torch.device | None
    ) -> None:
        super().__init__()
        hidden = config.hidden_size
        num_heads = config.num_attention_heads
        head_dim = hidden // num_heads
        self.hidden_size = hidden
        self.eps = config.layer_norm_eps
        # The ViT stays unquantized in FP8 checkpoints: no quant_config anywhere below.
        self.qkv_proj = self_attention_qkv(hidden, num_heads, config.attention_bias, dtype, device)
        self.use_qk_norm = bool(config.use_qk_norm)
        if self.use_qk_norm:
            # Each rank keeps the norm weight of its own heads (`tp=True`, aligned to heads).
            self.q_norm = RMSNorm(
                hidden, self.eps, dtype=dtype, device=device, tp=True, align=head_dim
            )
            self.k_norm = RMSNorm(
                hidden, self.eps, dtype=dtype, device=device, tp=True, align=head_dim
            )
        self.attention = PackedAttention(num_heads, head_dim)
        self.projection_layer = build_o_proj(
            hidden,
            hidden,
            bias=True,
            dtype=dtype,
            device=device,
            is_tp=True,
            tp_align_size=head_dim,
        )

    def _qk_norm(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """RMSNorm of q and k over the full hidden size; `q`, `k`: (tokens, local width)."""
        world_size, _ = get_tp_world_rank("attn")
        if world_size == 1:
            return self.q_norm(q), self.k_norm(k)
        squares = torch.stack([q.float().square().sum(-1), k.float().square().sum(-1)])
        dist.all_reduce(squares)
        scale = torch.rsqrt(squares / self.hidden_size + self.eps)[..., None]
        q = (q.float() * scale[0]).to(q.dtype) * self.q_norm.weight
        k = (k.float() * scale[1]).to(k.dtype) * self.k_norm.weight
        return q, k

    def forward(
        self, hidden_states: torch.Tensor, tile_starts: torch.Tensor, tile_lengths: torch.Tensor
    ) -> torch.Tensor:
        """`hidden_states`: every tile's tokens back to back, (tokens, hidden)."""
        q, k, v = self.qkv_proj.split_qkv(self.qkv_proj(hidden_states))
        if self.use_qk_norm:
            q, k = self._qk_norm(q.flatten(-2), k.flatten(-2))
            q, k = q.unflatten(-1, v.shape[-2:]), k.unflatten(-1, v.shape[-2:])
        return self.projection_layer(self.attention(q, k, v, tile_starts, tile_lengths))


class InternS1VisionMLP(nn.Module):
    def __init__(
        self, config: PretrainedConfig, dtype: torch.dtype | None, device: torch.device | None
    ) -> None:
        super().__init__()
        hidden, inner = config.hidden_size, config.intermediate_size
        self.fc1, self.fc2 = mlp_linears(hidden, inner, hidden, dtype, device)
        self.act = ACT2FN[config.hidden_act]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(hidden_states)))


class InternS1VisionLayer(nn.Module):
    """Pre-norm block whose two residual branches are scaled by learned `lambda_1`/`lambda_2`."""

    def __init__(
        self, config: PretrainedConfig, dtype: torch.dtype | None, device: torch.device | None
    ) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.attention = InternS1VisionAttention(config, dtype, device)
        self.mlp = InternS1VisionMLP(config, dtype, device)
        self.layernorm_before = _block_norm(config, dtype, device)
        self.layernorm_after = _block_norm(config, dtype, device)
        self.lambda_1 = nn.Parameter(torch.empty(hidden, dtype=dtype, device=device))
        self.lambda_2 = nn.Parameter(torch.empty(hidden, dtype=dtype, device=device))

    def forward(
        self, hidden_states: torch.Tensor, tile_starts: torch.Tensor, tile_lengths: torch.Tensor
    ) -> torch.Tensor:
        attn = self.attention(self.layernorm_before(hidden_states), tile_starts, tile_lengths)
        hidden_states = hidden_states + self.lambda_1 * attn
        return hidden_states + self.lambda_2 * self.mlp(self.layernorm_after(hidden_states))


class InternS1VisionEncoder(nn.Module):
    def __init__(
        self, config: PretrainedConfig, dtype: torch.dtype | None, device: torch.device | None
    ) -> None:
        super().__init__()
        self.layer = nn.ModuleList(
            InternS1VisionLayer(config, dtype, device) for _ in range(config.num_hidden_layers)
        )

    def forward(
        self, hidden_states: torch.Tensor, tile_starts: torch.Tensor, tile_lengths: torch.Tensor
    ) -> torch.Tensor:
        for layer in self.layer:
            hidden_states = layer(hidden_states, tile_starts, tile_lengths)
        return hidden_states


class InternS1VisionModel(nn.Module):
    """Tiles `(N, 3, 448, 448)` in, last hidden states `(N, 1 + patches, hidden)` out, CLS first."""

    def __init__(
        self,
        config: PretrainedConfig,
        dtype: torch.dtype | None = None,
        device: torch.device | None = None,
    ) -> None:
        super().__init__()
        self.embeddings = InternS1VisionEmbeddings(config, dtype, device)
        self.encoder = InternS1VisionEncoder(config, dtype, device)
        # Intern-S1 pools by mean (`use_mean_pooling`), which leaves no final norm.
        self.layernorm = (
            None
            if config.use_mean_pooling
            else LayerNorm(config.hidden_size, config.layer_norm_eps, dtype=dtype, device=device)
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        embeddings = self.embeddings(pixel_values)
        tiles, length, hidden = embeddings.shape
        lengths = torch.full((tiles,), length, dtype=torch.long, device=embeddings.device)
        starts = torch.arange(tiles, device=embeddings.device) * length
        out = self.encoder(embeddings.reshape(tiles * length, hidden), starts, lengths)
        if self.layernorm is not None:
            out = self.layernorm(out)
        return out.view(tiles, length, hidden)


__all__ = ["InternS1VisionModel"]
