"""Intern-S1's pixel shuffle between the vision tower and the projector."""

from __future__ import annotations

import torch


def pixel_shuffle(features: torch.Tensor, ratio: float) -> torch.Tensor:
    """Fold each (1/ratio)^2 block of the patch grid into channels.

    (N, S, S, C) -> (N, S*r, S*r, C/r^2). The axis order matches the reference implementation
    exactly, because the projector was trained on it.
    """
    n, rows, cols, channels = features.shape
    x = features.reshape(n, rows, int(cols * ratio), int(channels / ratio))
    x = x.permute(0, 2, 1, 3).reshape(
        n, int(cols * ratio), int(rows * ratio), int(channels / (ratio * ratio))
    )
    return x.permute(0, 2, 1, 3)
