"""Intern-S1-Pro's vision patch embedding: replicated on every rank, the same on both engines."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class InternS1ProVisionPatchEmbed(nn.Module):
    """One linear map per flattened (C, T, P, P) patch row.

    The checkpoint stores a Conv3d whose kernel equals its stride, applied to inputs that are
    exactly one kernel: that is a matmul with the flattened kernel. `proj` stays an `nn.Conv3d` so
    the parameter keeps the checkpoint's shape (`patch_embed.proj.*`), but it is never run as a
    convolution.
    """

    def __init__(
        self,
        config: Any,
        dtype: torch.dtype | None = None,
        device: torch.device | None = None,
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


__all__ = ["InternS1ProVisionPatchEmbed"]
