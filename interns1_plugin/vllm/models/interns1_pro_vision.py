"""Intern-S1-Pro's vision tower: a Qwen3-VL ViT without deepstack, on vLLM's parallel layers.

vLLM's own Qwen3-VL module cannot be imported without torchvision (it pulls in transformers'
Qwen2-VL image processor), so the tower is rebuilt here from vLLM's layers. Module names follow
the checkpoint (`patch_embed.proj`, `pos_embed`, `blocks.N.{norm1,attn.qkv,attn.proj,norm2,
mlp.linear_fc1,mlp.linear_fc2}`, `merger.*`), so `load_weights` takes the checkpoint's names
relative to the tower unchanged; the checkpoint's `qkv` is already fused and its one tensor is
split into each rank's q, k and v heads by `QKVParallelLinear`'s loader.

Patches arrive as the Qwen2-VL processor flattens them: one row per (C, T, P, P) patch, rows
grouped by `m x m` merge blocks (block row, block column, row in block, column in block), frames
one after another. Every per-patch quantity (positions, rotary angles) is computed in that order
by `interns1_plugin.modeling.pro_vision_positions`, and the merger folds each run of `m * m`
consecutive rows into one token.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import PretrainedConfig
from vllm.distributed import get_tensor_model_parallel_world_size
from vllm.model_executor.layers.activation import get_act_fn
from vllm.model_executor.layers.attention import MMEncoderAttention
from vllm.model_executor.layers.layernorm import LayerNorm
from vllm.model_executor.layers.linear import QKVParallelLinear, RowParallelLinear
from vllm.model_executor.layers.quantization import QuantizationConfig
from vllm.model_executor.layers.rotary_embedding.common import ApplyRotaryEmb
from vllm.model_executor.model_loader.weight_utils import default_weight_loader
from vllm.model_executor.models.vision import (
    get_fp8_padded_hidden_size,
    is_vit_use_data_parallel,
    run_dp_sharded_mrope_vision_model,
)

from interns1_plugin.modeling.pro_vision_config import (
    LAYER_NORM_EPS,
    check_no_deepstack,
    position_grid_side,
    vision_rope_theta,
)
from interns1_plugin.modeling.pro_vision_patch_embed import InternS1ProVisionPatchEmbed
from interns1_plugin.modeling.pro_vision_positions import (
    frame_positions,
    interpolated_position_embeddings,
    patch_positions,
    rotary_angles,
)
from interns1_plugin.vllm.models.layers import mlp_linears

GridTHW = Sequence[Sequence[int]]


def _grid_list(grid_thw: torch.Tensor | GridTHW) -> list[tuple[int, int, int]]:
    rows = grid_thw.tolist() if isinstance(grid_thw, torch.Tensor) else grid_thw
    return [(int(t), int(h), int(w)) for t, h, w in rows]


@dataclass
class _AttentionMetadata:
    """Frame boundaries in the form the selected `MMEncoderAttention` backend wants them."""

    cu_seqlens: torch.Tensor
    max_seqlen: torch.Tensor
    sequence_lengths: torch.Tensor | None


class InternS1ProVisionAttention(nn.Module):
    """Bidirectional attention within each frame, 2-D rotary on q and k; heads split across TP."""

    def __init__(
        self,
        config: PretrainedConfig,
        quant_config: QuantizationConfig | None,
        *,
        use_data_parallel: bool,
        prefix: str,
    ) -> None:
        super().__init__()
        hidden_size = config.hidden_size
        num_heads = config.num_heads
        self.head_dim = hidden_size // num_heads
        tp_size = 1 if use_data_parallel else get_tensor_model_parallel_world_size()
        self.num_local_heads = num_heads // tp_size

        self.qkv = QKVParallelLinear(
            hidden_size,
            self.head_dim,
            num_heads,
            bias=True,
            quant_config=quant_config,
            prefix=f"{prefix}.qkv",
            disable_tp=use_data_parallel,
        )
        self.proj = RowParallelLinear(
            hidden_size,
            hidden_size,
            bias=True,
            quant_config=quant_config,
            prefix=f"{prefix}.proj",
            disable_tp=use_data_parallel,
        )
        self.attn = MMEncoderAttention(
            self.num_local_heads, self.head_dim, self.head_dim**-0.5, prefix=f"{prefix}.attn"
        )
        # transformers' Qwen3-VL rotates q and k in float32 whatever the model dtype.
        self.rotary = ApplyRotaryEmb(enforce_enable=True, enable_fp32_compute=True)

    def forward(
        self,
        hidden_states: torch.Tensor,
        rotary_cos: torch.Tensor,
        rotary_sin: torch.Tensor,
        metadata: _AttentionMetadata,
    ) -> torch.Tensor:
        qkv, _ = self.qkv(hidden_states)
        num_tokens = qkv.shape[0]
        # Each rank's output is [q heads; k heads; v heads]. `v` stays a strided view of it:
        # the FlashInfer backend's `cu_seqlens` assume exactly that layout (v stride 3x).
        qkv = qkv.view(1, num_tokens, 3, self.num_local_heads, self.head_dim)
        qk = qkv[0, :, :2].transpose(0, 1).contiguous()
        q, k = self.rotary(qk, rotary_cos, rotary_sin).unsqueeze(1).unbind(0)
        out = self.attn(
            q,
            k,
            qkv[:, :, 2],
            cu_seqlens=metadata.cu_seqlens,
            max_seqlen=metadata.max_seqlen,
            sequence_lengths=metadata.sequence_lengths,
        )
        out, _ = self.proj(out.reshape(num_tokens, -1))
        return out


class InternS1ProVisionMLP(nn.Module):
    def __init__(
        self,
        config: PretrainedConfig,
        quant_config: QuantizationConfig | None,
        *,
        use_data_parallel: bool,
        prefix: str,
    ) -> None:
        super().__init__()
        self.linear_fc1, self.linear_fc2 = mlp_linears(
            config.hidden_size,
            config.intermediate_size,
            config.hidden_size,
            quant_config=quant_config,
            disable_tp=use_data_parallel,
            prefixes=(f"{prefix}.linear_fc1", f"{prefix}.linear_fc2"),
        )
        self.act = get_act_fn(config.hidden_act)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states, _ = self.linear_fc1(hidden_states)
        hidden_states, _ = self.linear_fc2(self.act(hidden_states))
        return hidden_states


class InternS1ProVisionBlock(nn.Module):
    """Pre-norm block: LayerNorm, attention, residual; LayerNorm, MLP, residual."""

    def __init__(
        self,
        config: PretrainedConfig,
        quant_config: QuantizationConfig | None,
        *,
        use_data_parallel: bool,
        prefix: str,
    ) -> None:
        super().__init__()
        self.norm1 = LayerNorm(config.hidden_size, eps=LAYER_NORM_EPS)
        self.norm2 = LayerNorm(config.hidden_size, eps=LAYER_NORM_EPS)
        self.attn = InternS1ProVisionAttention(
            config, quant_config, use_data_parallel=use_data_parallel, prefix=f"{prefix}.attn"
        )
        self.mlp = InternS1ProVisionMLP(
            config, quant_config, use_data_parallel=use_data_parallel, prefix=f"{prefix}.mlp"
        )

    def forward(
        self,
        hidden_states: torch.Tensor,
        rotary_cos: torch.Tensor,
        rotary_sin: torch.Tensor,
        metadata: _AttentionMetadata,
    ) -> torch.Tensor:
        hidden_states = hidden_states + self.attn(
            self.norm1(hidden_states), rotary_cos, rotary_sin, metadata
        )
        return hidden_states + self.mlp(self.norm2(hidden_states))


class InternS1ProVisionPatchMerger(nn.Module):
    """LayerNorm per patch, then each `m x m` block concatenated and mapped to the LLM width.

    The norm comes before the merge (Qwen3-VL's `use_postshuffle_norm=False`), over `hidden`.
    """

    def __init__(
        self,
        config: PretrainedConfig,
        quant_config: QuantizationConfig | None,
        *,
        use_data_parallel: bool,
        prefix: str,
    ) -> None:
        super().__init__()
        self.merged_size = config.hidden_size * config.spatial_merge_size**2
        self.norm = LayerNorm(config.hidden_size, eps=LAYER_NORM_EPS)
        self.linear_fc1, self.linear_fc2 = mlp_linears(
            self.merged_size,
            self.merged_size,
            config.out_hidden_size,
            quant_config=quant_config,
            disable_tp=use_data_parallel,
            prefixes=(f"{prefix}.linear_fc1", f"{prefix}.linear_fc2"),
        )
        # Exact (erf) GELU here, unlike the blocks' configured tanh approximation.
        self.act = get_act_fn("gelu")

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.norm(hidden_states).view(-1, self.merged_size)
        hidden_states, _ = self.linear_fc1(hidden_states)
        hidden_states, _ = self.linear_fc2(self.act(hidden_states))
        return hidden_states


class _LocalTower:
    """The tower as `run_dp_sharded_mrope_vision_model` calls it: this rank's items, unsharded.

    Calling the tower itself there would recurse into the data-parallel dispatch.
    """

    def __init__(self, tower: InternS1ProVisionTransformer) -> None:
        self.tower = tower
        self.spatial_merge_size = tower.spatial_merge_size
        self.out_hidden_size = tower.out_hidden_size

    def parameters(self) -> Iterable[nn.Parameter]:
        return self.tower.parameters()

    def __call__(self, pixel_values: torch.Tensor, grid_thw: GridTHW) -> torch.Tensor:
        return self.tower.encode_local(pixel_values, grid_thw)


class InternS1ProVisionTransformer(nn.Module):
    """Patch rows `(N, C*T*P*P)` and `grid_thw` in, merged tokens `(N / m^2, out_hidden)` out.

    Heads of every block are split across TP ranks, as are the MLPs and the merger's two linears
    (column then row); norms, the patch embedding and the position table are replicated. When the
    heads do not divide the TP size or `mm_encoder_tp_mode` is `data`, every rank holds the whole
    tower and encodes its share of the items instead, balanced by patch count.
    """

    def __init__(
        self,
        vision_config: PretrainedConfig,
        quant_config: QuantizationConfig | None = None,
        prefix: str = "visual",
    ) -> None:
        super().__init__()
        config = vision_config
        check_no_deepstack(config)
        self.hidden_size = config.hidden_size
        self.num_heads = config.num_heads
        self.head_dim = self.hidden_size // self.num_heads
        self.spatial_merge_size = config.spatial_merge_size
        self.out_hidden_size = config.out_hidden_size
        position_grid_side(config)  # refuses a table that is not square
        self.rope_theta = vision_rope_theta(config)

        self.use_data_parallel = is_vit_use_data_parallel(self.num_heads)
        self.tp_size = 1 if self.use_data_parallel else get_tensor_model_parallel_world_size()
        self.patch_embed = InternS1ProVisionPatchEmbed(config)
        self.pos_embed = nn.Embedding(config.num_position_embeddings, self.hidden_size)
        self.blocks = nn.ModuleList(
            InternS1ProVisionBlock(
                config,
                quant_config,
                use_data_parallel=self.use_data_parallel,
                prefix=f"{prefix}.blocks.{index}",
            )
            for index in range(config.depth)
        )
        self.merger = InternS1ProVisionPatchMerger(
            config,
            quant_config,
            use_data_parallel=self.use_data_parallel,
            prefix=f"{prefix}.merger",
        )

    @property
    def dtype(self) -> torch.dtype:
        return self.patch_embed.proj.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.patch_embed.proj.weight.device

    def _attention_metadata(self, grid: GridTHW) -> _AttentionMetadata:
        """One attention sequence per frame: an item of t frames gives t sequences of h*w."""
        lengths = np.repeat([h * w for _, h, w in grid], [t for t, _, _ in grid])
        cu_seqlens = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        backend = self.blocks[0].attn.attn.attn_backend
        max_seqlen = MMEncoderAttention.compute_max_seqlen(backend, cu_seqlens)
        return _AttentionMetadata(
            cu_seqlens=MMEncoderAttention.maybe_recompute_cu_seqlens(
                backend,
                cu_seqlens,
                self.hidden_size,
                self.tp_size,
                self.device,
                fp8_padded_hidden_size=get_fp8_padded_hidden_size(self.num_heads, self.head_dim),
            ),
            # Kept on CPU: backends read it with `.item()`.
            max_seqlen=torch.tensor(max_seqlen, dtype=torch.int32),
            sequence_lengths=MMEncoderAttention.maybe_compute_seq_lens(
                backend, cu_seqlens, self.device
            ),
        )

    def encode_local(
        self, pixel_values: torch.Tensor, grid_thw: torch.Tensor | GridTHW
    ) -> torch.Tensor:
        """The whole tower on this rank's inputs, whatever the data-parallel setting."""
        grid = _grid_list(grid_thw)
        frames = frame_positions(grid, self.spatial_merge_size, self.device)
        hidden_states = self.patch_embed(pixel_values.to(self.device))
        hidden_states = hidden_states + interpolated_position_embeddings(
            self.pos_embed.weight, grid, frames
        )
        # (tokens, head_dim/2) float32, applied neox-style over the whole head.
        angles = rotary_angles(patch_positions(grid, frames), self.head_dim, self.rope_theta)
        rotary_cos, rotary_sin = angles.cos(), angles.sin()
        metadata = self._attention_metadata(grid)
        for block in self.blocks:
            hidden_states = block(hidden_states, rotary_cos, rotary_sin, metadata)
        return self.merger(hidden_states)

    def forward(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor | GridTHW) -> torch.Tensor:
        if self.use_data_parallel and get_tensor_model_parallel_world_size() > 1:
            per_item = run_dp_sharded_mrope_vision_model(
                _LocalTower(self),  # type: ignore[arg-type]
                pixel_values,
                [list(item) for item in _grid_list(grid_thw)],
                rope_type="rope_3d",
            )
            return torch.cat(per_item)
        return self.encode_local(pixel_values, grid_thw)

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        """Checkpoint tensors named relative to the tower, each through its parameter's loader.

        A name the tower does not have is an error rather than skipped: for Intern-S1-Pro every
        vision tensor has a home, so a stray one means a mapping bug upstream.
        """
        params = dict(self.named_parameters())
        loaded: set[str] = set()
        for name, tensor in weights:
            if name not in params:
                raise KeyError(f"unexpected vision tower weight {name!r}")
            param = params[name]
            loader: Any = getattr(param, "weight_loader", default_weight_loader)
            loader(param, tensor)
            loaded.add(name)
        return loaded
