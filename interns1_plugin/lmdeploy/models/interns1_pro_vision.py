"""Intern-S1-Pro's vision tower (Qwen3-VL style, no deepstack) from LMDeploy's engine layers.

Module names follow the checkpoint (`patch_embed.proj`, `pos_embed`, `blocks.N.{norm1, attn.qkv,
attn.proj, norm2, mlp.linear_fc1, mlp.linear_fc2}`, `merger.*`). Attention is LMDeploy's
`FlashAttention` (non-causal, one sequence per frame), rotary its `ApplyRotaryEmb`, and the
linears its tensor-parallel ones with heads split over the ranks.

Patches arrive as the Qwen2-VL processor flattens them: one row per (C, T, P, P) patch, rows
grouped by `m x m` merge blocks (block row, block column, row in block, column in block), frames
one after another. Positions, the interpolated position embeddings and the 2-D rotary angles are
all computed in that order, and the merger folds each run of `m * m` rows into one token.
"""

from __future__ import annotations

from functools import lru_cache

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

#: Qwen3-VL's eps for every LayerNorm of the tower; the config does not carry it.
LAYER_NORM_EPS = 1e-6
#: Rotary base of the vision rope when the config names none.
ROPE_THETA = 10000.0

Grid = list[tuple[int, int, int]]


@lru_cache(maxsize=256)
def merge_order_positions(h: int, w: int, merge: int) -> torch.Tensor:
    """(row, column) of each patch of one `h x w` frame, in the processor's merge-block order."""
    if h % merge or w % merge:
        raise ValueError(f"grid {h}x{w} is not divisible by the merge size {merge}")
    shape = (h // merge, w // merge, merge, merge)
    rows = torch.arange(h).view(h // merge, 1, merge, 1).expand(shape)
    cols = torch.arange(w).view(1, w // merge, 1, merge).expand(shape)
    return torch.stack([rows, cols], dim=-1).reshape(-1, 2)


class InternS1ProVisionPatchEmbed(nn.Module):
    """One linear map per flattened (C, T, P, P) patch row.

    The checkpoint stores a Conv3d whose kernel equals its stride, applied to inputs exactly one
    kernel large: a matmul with the flattened kernel. `proj` keeps the checkpoint's shape.
    """

    def __init__(
        self, config: PretrainedConfig, dtype: torch.dtype | None, device: torch.device | None
    ) -> None:
        super().__init__()
        kernel = (config.temporal_patch_size, config.patch_size, config.patch_size)
        self.proj = nn.Conv3d(
            config.in_channels,
            config.hidden_size,
            kernel_size=kernel,
            stride=kernel,
            bias=True,
            dtype=dtype,
            device=device,
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        weight = self.proj.weight
        return F.linear(pixel_values.to(weight.dtype), weight.flatten(1), self.proj.bias)


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
        if getattr(config, "deepstack_visual_indexes", None):
            raise NotImplementedError(
                "Intern-S1-Pro's vision tower has no deepstack mergers, but "
                f"deepstack_visual_indexes is {list(config.deepstack_visual_indexes)}"
            )
        self.head_dim = config.hidden_size // config.num_heads
        self.merge = config.spatial_merge_size
        self.patch_dim = (
            config.in_channels * config.temporal_patch_size * config.patch_size * config.patch_size
        )
        self.side = int(config.num_position_embeddings**0.5)
        if self.side**2 != config.num_position_embeddings:
            raise ValueError(
                f"num_position_embeddings {config.num_position_embeddings} is not a square"
            )
        rope = getattr(config, "rope_parameters", None) or {}
        self.rope_theta = float(rope.get("rope_theta", ROPE_THETA))
        self.patch_embed = InternS1ProVisionPatchEmbed(config, dtype, device)
        self.pos_embed = nn.Embedding(
            config.num_position_embeddings, config.hidden_size, dtype=dtype, device=device
        )
        self.blocks = nn.ModuleList(
            InternS1ProVisionBlock(config, dtype, device) for _ in range(config.depth)
        )
        self.merger = InternS1ProVisionPatchMerger(config, dtype, device)

    def _frame_positions(self, grid: Grid, device: torch.device) -> list[torch.Tensor]:
        return [merge_order_positions(h, w, self.merge).to(device) for _, h, w in grid]

    def _position_embeddings(self, grid: Grid, frames: list[torch.Tensor]) -> torch.Tensor:
        """The learned `side x side` table resampled bilinearly, corners aligned, to each grid.

        Row `r` of an `h`-row grid reads table row `linspace(0, side - 1, h)[r]`; the four taps'
        weights are cast to the model dtype before the weighted sum, as Qwen3-VL does.
        """
        weight = self.pos_embed.weight
        side, device = self.side, weight.device
        ys, xs = [], []
        for (t, h, w), frame in zip(grid, frames, strict=True):
            ys.append(torch.linspace(0, side - 1, h, device=device)[frame[:, 0]].repeat(t))
            xs.append(torch.linspace(0, side - 1, w, device=device)[frame[:, 1]].repeat(t))
        y, x = torch.cat(ys), torch.cat(xs)
        y0, x0 = y.long(), x.long()
        y1, x1 = (y0 + 1).clamp(max=side - 1), (x0 + 1).clamp(max=side - 1)
        dy, dx = y - y0, x - x0
        w11 = dy * dx
        w10, w01 = dy - w11, dx - w11
        w00 = 1 - dy - w01
        taps = torch.stack([y0 * side + x0, y0 * side + x1, y1 * side + x0, y1 * side + x1])
        weights = torch.stack([w00, w01, w10, w11]).to(weight.dtype).unsqueeze(-1)
        return (weight[taps] * weights).sum(dim=0)

    def _rotary(self, grid: Grid, frames: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 cos/sin `(tokens, head_dim)`: head_dim/4 row angles then head_dim/4 column
        angles, repeated for the two halves (neox style over the whole head)."""
        positions = torch.cat([f.repeat(t, 1) for (t, _, _), f in zip(grid, frames, strict=True)])
        rotary_dim = self.head_dim // 2
        exponents = torch.arange(0, rotary_dim, 2, dtype=torch.float32, device=positions.device)
        inv_freq = 1.0 / self.rope_theta ** (exponents / rotary_dim)
        angles = (positions.float().unsqueeze(-1) * inv_freq).flatten(1)
        angles = torch.cat([angles, angles], dim=-1)
        return angles.cos(), angles.sin()

    def forward(self, pixel_values: torch.Tensor, grid: Grid) -> torch.Tensor:
        rows = sum(t * h * w for t, h, w in grid)
        if pixel_values.dim() != 2 or tuple(pixel_values.shape) != (rows, self.patch_dim):
            raise ValueError(
                f"pixel rows must be ({rows}, {self.patch_dim}) for grids {grid}, got "
                f"{tuple(pixel_values.shape)}"
            )
        frames = self._frame_positions(grid, pixel_values.device)
        hidden = self.patch_embed(pixel_values)
        hidden = hidden + self._position_embeddings(grid, frames)
        rotary = self._rotary(grid, frames)
        lengths = torch.tensor(
            [h * w for t, h, w in grid for _ in range(t)], device=hidden.device, dtype=torch.long
        )
        starts = lengths.cumsum(0) - lengths
        for block in self.blocks:
            hidden = block(hidden, rotary, starts, lengths)
        return self.merger(hidden)


__all__ = ["InternS1ProVisionModel", "merge_order_positions"]
