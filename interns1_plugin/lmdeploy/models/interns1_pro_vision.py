"""Intern-S1-Pro's vision tower (Qwen3-VL style, no deepstack) from LMDeploy's engine layers.

Module names follow the checkpoint (`patch_embed.proj`, `pos_embed`, `blocks.N.{norm1, attn.qkv,
attn.proj, norm2, mlp.linear_fc1, mlp.linear_fc2}`, `merger.*`). Attention is LMDeploy's
`FlashAttention` (non-causal, one sequence per frame), rotary its `ApplyRotaryEmb`, and the
linears its tensor-parallel ones with heads split over the ranks.

Patches arrive as the Qwen2-VL processor flattens them: one row per (C, T, P, P) patch, rows
grouped by `m x m` merge blocks (block row, block column, row in block, column in block), frames
one after another. Positions, the interpolated position embeddings and the 2-D rotary angles are
all computed in that order (`interns1_plugin.modeling.pro_vision_positions`), and the merger
folds each run of `m * m` rows into one token.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from lmdeploy.pytorch.nn import ApplyRotaryEmb, LayerNorm
from lmdeploy.pytorch.nn.linear import build_o_proj
from torch import nn
from transformers import PretrainedConfig
from transformers.activations import ACT2FN

from interns1_plugin.lmdeploy.models.layers import (
    PackedAttention,
    mlp_linears,
    self_attention_qkv,
)
from interns1_plugin.modeling.pro_vision_config import (
    LAYER_NORM_EPS,
    check_no_deepstack,
    position_grid_side,
    vision_rope_theta,
)
from interns1_plugin.modeling.pro_vision_patch_embed import InternS1ProVisionPatchEmbed
from interns1_plugin.modeling.pro_vision_positions import (
    Grid,
    frame_positions,
    interpolated_position_embeddings,
    patch_positions,
    rotary_angles,
)


class InternS1ProVisionAttention(nn.Module):
    """Bidirectional attention within each frame, 2-D rotary on q and k."""

    def __init__(
        self, config: PretrainedConfig, dtype: torch.dtype | None, device: torch.device | None
    ) -> None:
        super().__init__()
        hidden = config.hidden_size
        head_dim = hidden // config.num_heads
        self.qkv = self_attention_qkv(hidden, config.num_heads, True, dtype, device)
        self.apply_rotary = ApplyRotaryEmb()
        self.attention = PackedAttention(config.num_heads, head_dim)
        self.proj = build_o_proj(hidden, hidden, bias=True, dtype=dtype, device=device, is_tp=True)

    def forward(
        self,
        hidden_states: torch.Tensor,
        rotary: tuple[torch.Tensor, torch.Tensor],
        frame_starts: torch.Tensor,
        frame_lengths: torch.Tensor,
    ) -> torch.Tensor:
        q, k, v = self.qkv.split_qkv(self.qkv(hidden_states))
        # Rotated in float32 whatever the model dtype, as transformers' Qwen3-VL does.
        cos, sin = rotary
        q, k = self.apply_rotary(q.float(), k.float(), cos, sin, inplace=False)
        q, k = q.to(v.dtype), k.to(v.dtype)
        return self.proj(self.attention(q, k, v, frame_starts, frame_lengths))


class InternS1ProVisionMLP(nn.Module):
    def __init__(
        self, config: PretrainedConfig, dtype: torch.dtype | None, device: torch.device | None
    ) -> None:
        super().__init__()
        hidden, inner = config.hidden_size, config.intermediate_size
        self.linear_fc1, self.linear_fc2 = mlp_linears(hidden, inner, hidden, dtype, device)
        self.act = ACT2FN[config.hidden_act]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.linear_fc2(self.act(self.linear_fc1(hidden_states)))


class InternS1ProVisionBlock(nn.Module):
    """Pre-norm block: LayerNorm, attention, residual; LayerNorm, MLP, residual."""

    def __init__(
        self, config: PretrainedConfig, dtype: torch.dtype | None, device: torch.device | None
    ) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.norm1 = LayerNorm(hidden, LAYER_NORM_EPS, dtype=dtype, device=device)
        self.norm2 = LayerNorm(hidden, LAYER_NORM_EPS, dtype=dtype, device=device)
        self.attn = InternS1ProVisionAttention(config, dtype, device)
        self.mlp = InternS1ProVisionMLP(config, dtype, device)

    def forward(
        self,
        hidden_states: torch.Tensor,
        rotary: tuple[torch.Tensor, torch.Tensor],
        frame_starts: torch.Tensor,
        frame_lengths: torch.Tensor,
    ) -> torch.Tensor:
        attn = self.attn(self.norm1(hidden_states), rotary, frame_starts, frame_lengths)
        hidden_states = hidden_states + attn
        return hidden_states + self.mlp(self.norm2(hidden_states))


class InternS1ProVisionPatchMerger(nn.Module):
    """LayerNorm per patch, then each `m x m` block concatenated and mapped to the LM width."""

    def __init__(
        self, config: PretrainedConfig, dtype: torch.dtype | None, device: torch.device | None
    ) -> None:
        super().__init__()
        self.merged_size = config.hidden_size * config.spatial_merge_size**2
        self.norm = LayerNorm(config.hidden_size, LAYER_NORM_EPS, dtype=dtype, device=device)
        merged, out = self.merged_size, config.out_hidden_size
        self.linear_fc1, self.linear_fc2 = mlp_linears(merged, merged, out, dtype, device)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.norm(hidden_states).view(-1, self.merged_size)
        # Exact (erf) GELU here, unlike the blocks' configured tanh approximation.
        return self.linear_fc2(F.gelu(self.linear_fc1(hidden_states)))


class InternS1ProVisionModel(nn.Module):
    """Patch rows `(N, C*T*P*P)` and their items' grids in, merged tokens `(N / m^2, out)` out."""

    def __init__(
        self,
        config: PretrainedConfig,
        dtype: torch.dtype | None = None,
        device: torch.device | None = None,
    ) -> None:
        super().__init__()
        check_no_deepstack(config)
        self.head_dim = config.hidden_size // config.num_heads
        self.merge = config.spatial_merge_size
        self.patch_dim = (
            config.in_channels * config.temporal_patch_size * config.patch_size * config.patch_size
        )
        position_grid_side(config)  # refuses a table that is not square
        self.rope_theta = vision_rope_theta(config)
        self.patch_embed = InternS1ProVisionPatchEmbed(config, dtype, device)
        self.pos_embed = nn.Embedding(
            config.num_position_embeddings, config.hidden_size, dtype=dtype, device=device
        )
        self.blocks = nn.ModuleList(
            InternS1ProVisionBlock(config, dtype, device) for _ in range(config.depth)
        )
        self.merger = InternS1ProVisionPatchMerger(config, dtype, device)

    def _rotary(self, grid: Grid, frames: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 cos/sin `(tokens, head_dim)`: the row-then-column angles repeated for the two
        halves (neox style over the whole head), as LMDeploy's `ApplyRotaryEmb` takes them."""
        angles = rotary_angles(patch_positions(grid, frames), self.head_dim, self.rope_theta)
        angles = torch.cat([angles, angles], dim=-1)
        return angles.cos(), angles.sin()

    def forward(self, pixel_values: torch.Tensor, grid: Grid) -> torch.Tensor:
        rows = sum(t * h * w for t, h, w in grid)
        if pixel_values.dim() != 2 or tuple(pixel_values.shape) != (rows, self.patch_dim):
            raise ValueError(
                f"pixel rows must be ({rows}, {self.patch_dim}) for grids {grid}, got "
                f"{tuple(pixel_values.shape)}"
            )
        frames = frame_positions(grid, self.merge, pixel_values.device)
        hidden = self.patch_embed(pixel_values)
        hidden = hidden + interpolated_position_embeddings(self.pos_embed.weight, grid, frames)
        rotary = self._rotary(grid, frames)
        lengths = torch.tensor(
            [h * w for t, h, w in grid for _ in range(t)], device=hidden.device, dtype=torch.long
        )
        starts = lengths.cumsum(0) - lengths
        for block in self.blocks:
            hidden = block(hidden, rotary, starts, lengths)
        return self.merger(hidden)


__all__ = ["InternS1ProVisionModel"]
