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


def shuffle_tile_features(vit_hidden: torch.Tensor, ratio: float) -> torch.Tensor:
    """The ViT's last hidden states of N tiles, CLS first, as the projector takes them.

    (N, 1 + S*S, C) -> (N, S*S*r^2, C/r^2): CLS dropped, the square patch grid shuffled.
    """
    features = vit_hidden[:, 1:]
    n, num_patches, channels = features.shape
    side = int(num_patches**0.5)
    features = pixel_shuffle(features.reshape(n, side, side, channels), ratio)
    return features.reshape(n, -1, features.shape[-1])
