"""Where each patch of Intern-S1-Pro's vision tower sits, and what its position gives it.

The tower is Qwen3-VL's without deepstack. Patches arrive as the Qwen2-VL processor flattens them:
one row per patch, rows grouped by `m x m` merge blocks (block row, block column, row in block,
column in block), frames one after another. Each patch's (row, column) in that order feeds two
things: the learned position table resampled to the item's grid, and the 2-D rotary angles of
q and k. Both engines' towers need exactly these numbers, so they are computed once, here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import torch

#: (frames, rows, columns) of each item, in patches.
Grid = Sequence[tuple[int, int, int]]


@lru_cache(maxsize=1024)
def merge_order_positions(h: int, w: int, merge: int) -> torch.Tensor:
    """(row, column) of each patch of one `h x w` frame, in the processor's merge-block order.

    The patch at index `((bh * w/m + bw) * m + ih) * m + iw` sits at row `bh*m + ih`, column
    `bw*m + iw`. Cached on CPU per shape and never written to.
    """
    if h % merge or w % merge:
        raise ValueError(f"grid {h}x{w} is not divisible by the merge size {merge}")
    shape = (h // merge, w // merge, merge, merge)
    rows = torch.arange(h).view(h // merge, 1, merge, 1).expand(shape)
    cols = torch.arange(w).view(1, w // merge, 1, merge).expand(shape)
    return torch.stack([rows, cols], dim=-1).reshape(-1, 2)


def frame_positions(grid: Grid, merge: int, device: torch.device) -> list[torch.Tensor]:
    """One frame's `merge_order_positions` per item, on `device` (every frame of an item alike)."""
    return [merge_order_positions(h, w, merge).to(device) for _, h, w in grid]


def patch_positions(grid: Grid, frames: Sequence[torch.Tensor]) -> torch.Tensor:
    """(row, column) of every patch row of the input: each item's frame repeated `t` times."""
    return torch.cat([f.repeat(t, 1) for (t, _, _), f in zip(grid, frames, strict=True)])


def interpolated_position_embeddings(
    table: torch.Tensor, grid: Grid, frames: Sequence[torch.Tensor]
) -> torch.Tensor:
    """The learned `side x side` table resampled bilinearly, corners aligned, to each grid.

    Row `r` of an `h`-row grid reads table row `linspace(0, side - 1, h)[r]`; the four taps and
    their weights are Qwen3-VL's (`w00 = 1 - dy - w01` etc.), the weights cast to the table's
    dtype before the weighted sum, as Qwen3-VL does. `(patch rows, hidden)` out, in input order.
    """
    side, device = math.isqrt(table.shape[0]), table.device
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
    weights = torch.stack([w00, w01, w10, w11]).to(table.dtype).unsqueeze(-1)
    return (table[taps] * weights).sum(dim=0)


def rotary_angles(positions: torch.Tensor, head_dim: int, theta: float) -> torch.Tensor:
    """float32 `(tokens, head_dim/2)`: `head_dim/4` row angles, then `head_dim/4` column ones.

    Float32 whatever the model dtype, as transformers' Qwen3-VL computes them. The towers apply
    them neox-style over the whole head: dims `i` and `i + head_dim/2` rotate together.
    """
    rotary_dim = head_dim // 2
    exponents = torch.arange(0, rotary_dim, 2, dtype=torch.float32, device=positions.device)
    inv_freq = 1.0 / theta ** (exponents / rotary_dim)
    return (positions.float().unsqueeze(-1) * inv_freq).flatten(1)


__all__ = [
    "Grid",
    "frame_positions",
    "interpolated_position_embeddings",
    "merge_order_positions",
    "patch_positions",
    "rotary_angles",
]
