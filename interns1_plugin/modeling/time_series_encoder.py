"""Intern-S1-Pro's time-series encoder in plain torch, named as the checkpoint names it.

Parameter names match the checkpoint's `model.time_series.*` tensors with that prefix removed.
The module is small next to the language model, so it is replicated on every tensor-parallel rank
(plain torch layers, no sharding) and needs nothing from vLLM to build, load or run.

Three stages, one series at a time (series differ in length and channel count):

1. `encoder_embed`: the series is cut into overlapping patches (`stride_and_patch`, zero-padded
   at the end); every patch goes through a 1->128 conv + ReLU, fixed sinusoidal positions and one
   post-norm transformer layer (torch `TransformerEncoderLayer` defaults: 8 heads, ReLU, FFN 2048),
   is averaged over its length and then over its channels. Patches are independent, so they are
   processed in chunks of at most `patch_chunk_rows` samples (patches x channels x patch length):
   exact, and it bounds memory (a 10^6-point series is ~6,250 patches of 320). Like the
   reference (and the training code), a multi-channel patch `(length, channels)` is reshaped,
   not transposed, into `channels` sequences of `length` samples, so each sequence holds
   interleaved samples.
2. Neighbouring patches are paired (even with odd, a trailing odd one dropped) into 256-wide
   frames and run through a Whisper-style encoder: `adapt_in` to 80 bins, two convs (the second
   with stride 2), learned positions, pre-norm layers with causal attention, `adapt_out`.
   Tokens beyond the `max_source_positions`-row table get no position (zeros), as in the
   reference: nothing is dropped. Its FFN runs in slices of `FFN_CHUNK_TOKENS` tokens and its
   attention through fused SDPA, so memory stays linear in the token count.
3. `projector`: LayerNorm -> Linear -> activation -> Linear into the language model's width.

The output length equals `num_time_series_tokens(length, sampling_rate)` by construction: both
use `stride_and_patch`, `num_patches` and `tokens_from_patches`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from interns1_plugin.processing.time_series import (
    default_sampling_rate,
    num_patches,
    stride_and_patch,
    tokens_from_patches,
)

logger = logging.getLogger(__name__)

#: Fixed sizes of the per-patch subsampler (not in the config: the architecture fixes them).
PATCH_HIDDEN = 128
PATCH_HEADS = 8
PATCH_FFN = 2048
PATCH_KERNEL = 5
PATCH_POSITIONS = 20000
#: Patch samples (patches x channels x patch length) encoded at once by default: 64 patches of
#: 320, ~0.3 GB of float32 activations (the 2048-wide FFN dominates).
DEFAULT_PATCH_CHUNK_ROWS = 64 * 320
#: Tokens per slice of the Whisper-style FFN: position-wise, so slicing is exact.
FFN_CHUNK_TOKENS = 8192
LAYER_NORM_EPS = 1e-5

_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
}


def activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The config's `activation_function` (transformers' names), without importing transformers."""
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unsupported activation_function {name!r}; known: {sorted(_ACTIVATIONS)}"
        ) from None


# --- stage 1: the per-patch subsampler ---------------------------------------------------------


class SinusoidalPositions(nn.Module):
    """The fixed `pe` table, `(20000, 1, 128)`; persistent, so the checkpoint carries it."""

    def __init__(self, dim: int = PATCH_HIDDEN, max_len: int = PATCH_POSITIONS) -> None:
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float32)[:, None]
        freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
        pe = torch.zeros(max_len, dim)
        pe[:, 0::2] = torch.sin(position * freq)
        pe[:, 1::2] = torch.cos(position * freq)
        self.register_buffer("pe", pe[:, None, :], persistent=True)


class PatchSelfAttention(nn.Module):
    """Bidirectional attention with torch `MultiheadAttention`'s packed parameter names."""

    def __init__(self, dim: int = PATCH_HIDDEN, heads: int = PATCH_HEADS) -> None:
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, length, dim)
        batch, length, dim = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        qkv = qkv.view(batch, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, dim))


class PatchTransformerLayer(nn.Module):
    """torch's `TransformerEncoderLayer(d_model=128, nhead=8)` at inference: post-norm, ReLU."""

    def __init__(self, dim: int = PATCH_HIDDEN, ffn: int = PATCH_FFN) -> None:
        super().__init__()
        self.self_attn = PatchSelfAttention(dim)
        self.linear1 = nn.Linear(dim, ffn)
        self.linear2 = nn.Linear(ffn, dim)
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.self_attn(x))
        return self.norm2(x + self.linear2(F.relu(self.linear1(x), inplace=True)))


class PatchTransformer(nn.Module):
    """Holds the one layer under `layers.0`, the checkpoint's `transformer_encoder` layout."""

    def __init__(self, num_layers: int = 1) -> None:
        super().__init__()
        self.layers = nn.ModuleList(PatchTransformerLayer() for _ in range(num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class PatchSubsampler(nn.Module):
    """Stage 1 (`encoder_embed`): one 128-wide feature per patch."""

    def __init__(self, patch_chunk_rows: int = DEFAULT_PATCH_CHUNK_ROWS) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, PATCH_HIDDEN, kernel_size=PATCH_KERNEL, padding=PATCH_KERNEL // 2)
        self.transformer_encoder = PatchTransformer()
        self.pos_encoder = SinusoidalPositions()
        self.patch_chunk_rows = patch_chunk_rows

    def forward(self, values: torch.Tensor, stride: int, patch: int) -> torch.Tensor:
        """`values` `(T, C)` -> `(num_patches, 128)`."""
        length, channels = values.shape
        count = num_patches(length, stride, patch)
        padded = F.pad(values, (0, 0, 0, (count - 1) * stride + patch - length))
        patches = padded.unfold(0, patch, stride).transpose(1, 2)  # (count, patch, C), a view
        per_chunk = max(1, self.patch_chunk_rows // (channels * patch))
        # Written in place: no small per-chunk tensors outlive their chunk to pin the heap.
        features = values.new_empty((count, PATCH_HIDDEN))
        for start in range(0, count, per_chunk):
            features[start : start + per_chunk] = self._encode(patches[start : start + per_chunk])
        return features

    def _encode(self, patches: torch.Tensor) -> torch.Tensor:
        count, patch, channels = patches.shape
        x = patches.reshape(count * channels, 1, patch)  # reshape, not transpose: see module doc
        x = F.relu(self.conv(x), inplace=True).transpose(1, 2)  # (sequences, patch, 128)
        x = x + self.pos_encoder.pe[:patch, 0].to(x.dtype)
        x = self.transformer_encoder(x).mean(dim=1)
        return x.view(count, channels, -1).mean(dim=1)


# --- stage 2: the Whisper-style encoder --------------------------------------------------------


class CausalSelfAttention(nn.Module):
    """Whisper attention names; causal. A missing k bias loads as zero (it cancels in softmax)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"d_model {dim} is not divisible by encoder_attention_heads {heads}")
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (length, dim)
        length, dim = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:  # 4-D, so fused kernels apply (O(L) memory)
            return t.view(1, length, self.heads, dim // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(
            heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x)), is_causal=True
        )
        return self.out_proj(out[0].transpose(0, 1).reshape(length, dim))


class EncoderLayer(nn.Module):
    """A pre-norm Whisper encoder layer."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        dim = config.d_model
        self.self_attn = CausalSelfAttention(dim, config.encoder_attention_heads)
        self.self_attn_layer_norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.fc1 = nn.Linear(dim, config.encoder_ffn_dim)
        self.fc2 = nn.Linear(config.encoder_ffn_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.act = activation(config.activation_function)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.self_attn_layer_norm(x))
        return torch.cat([part + self._ffn(part) for part in x.split(FFN_CHUNK_TOKENS)])

    def _ffn(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.final_layer_norm(x))))


class FrameEncoder(nn.Module):
    """Stage 2 (`encoder`): paired patch frames `(M, 256)` -> `((M + 1) // 2, ts_adapt_out_dim)`."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        dim, bins = config.d_model, config.num_mel_bins
        self.adapt_in = nn.Linear(config.ts_adapt_in_dim, bins)
        self.conv1 = nn.Conv1d(bins, dim, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(dim, dim, kernel_size=3, stride=2, padding=1)
        self.embed_positions = nn.Embedding(config.max_source_positions, dim)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.encoder_layers))
        self.layer_norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.adapt_out = nn.Linear(dim, config.ts_adapt_out_dim)
        self._warned_positions = False

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = self.adapt_in(frames).T[None]  # (1, bins, M)
        x = F.gelu(self.conv2(F.gelu(self.conv1(x))))[0].T  # (tokens, dim)
        table = self.embed_positions.weight
        covered = min(x.shape[0], table.shape[0])
        if covered < x.shape[0] and not self._warned_positions:
            self._warned_positions = True
            logger.warning(
                "time series yields %d tokens, more than the %d learned positions: the rest get "
                "none (as in the reference encoder)",
                x.shape[0],
                table.shape[0],
            )
        x = torch.cat([x[:covered] + table[:covered].to(x.dtype), x[covered:]])
        for layer in self.layers:
            x = layer(x)
        return self.adapt_out(self.layer_norm(x))


# --- stage 3 and the whole encoder -------------------------------------------------------------


class Projector(nn.Module):
    """Stage 3 (`projector`): into the language model's hidden size."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(config.ts_hidden_dim, eps=LAYER_NORM_EPS)
        self.linear_1 = nn.Linear(config.ts_hidden_dim, config.out_hidden_size)
        self.linear_2 = nn.Linear(config.out_hidden_size, config.out_hidden_size)
        self.act = activation(config.activation_function)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(self.layer_norm(x))))


class InternS1ProTimeSeriesEncoder(nn.Module):
    """`model.time_series`: normalised series in, one embedding per `<|ts_token|>` out."""

    def __init__(self, ts_config: Any, patch_chunk_rows: int = DEFAULT_PATCH_CHUNK_ROWS) -> None:
        super().__init__()
        if 2 * PATCH_HIDDEN != ts_config.ts_adapt_in_dim:
            raise ValueError(
                f"ts_adapt_in_dim must be {2 * PATCH_HIDDEN} (two paired patch features), "
                f"got {ts_config.ts_adapt_in_dim}"
            )
        if ts_config.ts_adapt_out_dim != ts_config.ts_hidden_dim:
            raise ValueError(
                f"ts_adapt_out_dim ({ts_config.ts_adapt_out_dim}) must equal ts_hidden_dim "
                f"({ts_config.ts_hidden_dim}): the projector reads the encoder's output"
            )
        self.config = ts_config
        self.encoder_embed = PatchSubsampler(patch_chunk_rows)
        self.encoder = FrameEncoder(ts_config)
        self.projector = Projector(ts_config)

    @property
    def patch_chunk_rows(self) -> int:
        """Patch samples encoded at once (at least one patch): peak memory vs. fewer matmuls."""
        return self.encoder_embed.patch_chunk_rows

    @patch_chunk_rows.setter
    def patch_chunk_rows(self, value: int) -> None:
        if value < 1:
            raise ValueError(f"patch_chunk_rows must be at least 1, got {value}")
        self.encoder_embed.patch_chunk_rows = value

    def forward(
        self,
        values: Sequence[torch.Tensor],
        sampling_rates: Sequence[float | None] | torch.Tensor,
    ) -> list[torch.Tensor]:
        """Each `(T_i, C_i)` series -> `(num_time_series_tokens(T_i, sr_i), out_hidden_size)`."""
        if len(values) != len(sampling_rates):
            raise ValueError(f"{len(values)} series but {len(sampling_rates)} sampling rates")
        rates = sampling_rates.tolist() if torch.is_tensor(sampling_rates) else sampling_rates
        return [self.encode_one(series, rate) for series, rate in zip(values, rates, strict=True)]

    def encode_one(self, values: torch.Tensor, sampling_rate: float | None) -> torch.Tensor:
        """One series; `(0, out_hidden_size)` when it is too short for a token (the reference
        asserts there; preprocessing rejects such series before they get this far)."""
        if values.ndim == 1:
            values = values[:, None]
        length = values.shape[0]
        rate = default_sampling_rate(length) if sampling_rate is None else sampling_rate
        stride, patch = stride_and_patch(rate)
        patches = num_patches(length, stride, patch)
        dtype = self.encoder.adapt_in.weight.dtype
        if tokens_from_patches(patches) == 0:
            return values.new_zeros((0, self.config.out_hidden_size), dtype=dtype)
        features = self.encoder_embed(values.to(dtype), stride, patch)
        pairs = patches // 2
        frames = features[: 2 * pairs].reshape(pairs, 2 * PATCH_HIDDEN)  # [even | odd]
        return self.projector(self.encoder(frames))

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        """Copy `(name, tensor)` pairs named relative to this module; returns the names loaded.

        Unknown names and wrong shapes raise. A checkpoint without `k_proj.bias` (Whisper has
        none) gets it zeroed, which is exact (a key bias cancels in softmax), and those names are
        reported as loaded so a caller's "every parameter loaded" check holds.
        """
        targets = dict(self.named_parameters())
        targets.update(self.named_buffers())
        loaded: set[str] = set()
        for name, tensor in weights:
            if name not in targets:
                raise KeyError(f"unknown time-series encoder weight {name!r}")
            target = targets[name]
            if target.shape != tensor.shape:
                raise ValueError(
                    f"time-series weight {name!r} has shape {tuple(tensor.shape)}, "
                    f"expected {tuple(target.shape)}"
                )
            with torch.no_grad():
                target.copy_(tensor)
            loaded.add(name)
        for name, target in targets.items():
            if name.endswith("self_attn.k_proj.bias") and name not in loaded:
                with torch.no_grad():
                    target.zero_()
                loaded.add(name)
        return loaded


__all__ = [
    "DEFAULT_PATCH_CHUNK_ROWS",
    "InternS1ProTimeSeriesEncoder",
    "activation",
]
