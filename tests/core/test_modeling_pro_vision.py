"""Intern-S1-Pro vision-tower maths shared by both engines, against naive loops and hand values."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from interns1_plugin.modeling.pro_vision_config import (
    ROPE_THETA,
    check_no_deepstack,
    position_grid_side,
    vision_rope_theta,
)
from interns1_plugin.modeling.pro_vision_patch_embed import InternS1ProVisionPatchEmbed
from interns1_plugin.modeling.pro_vision_positions import (
    frame_positions,
    interpolated_position_embeddings,
    merge_order_positions,
    patch_positions,
    rotary_angles,
)

CPU = torch.device("cpu")


def naive_merge_order(h: int, w: int, m: int) -> list[tuple[int, int]]:
    return [
        (bh * m + ih, bw * m + iw)
        for bh in range(h // m)
        for bw in range(w // m)
        for ih in range(m)
        for iw in range(m)
    ]


@pytest.mark.parametrize(("h", "w", "m"), [(4, 4, 2), (2, 6, 2), (6, 3, 3), (3, 5, 1)])
def test_merge_order_positions_match_nested_loops(h: int, w: int, m: int) -> None:
    got = [tuple(row) for row in merge_order_positions(h, w, m).tolist()]
    assert got == naive_merge_order(h, w, m)


def test_merge_order_positions_refuse_an_unmergeable_grid() -> None:
    with pytest.raises(ValueError, match="merge size 2"):
        merge_order_positions(5, 6, 2)


def test_patch_positions_repeat_each_items_frame() -> None:
    grid = [(2, 2, 2), (1, 2, 4)]
    frames = frame_positions(grid, 2, CPU)
    got = [tuple(row) for row in patch_positions(grid, frames).tolist()]
    assert got == 2 * naive_merge_order(2, 2, 2) + naive_merge_order(2, 4, 2)


def test_position_embeddings_hand_values() -> None:
    """A 2x2 table of scalars 0..3 spread over a 3x3 grid: corners exact, centre the mean."""
    table = torch.arange(4, dtype=torch.float32).unsqueeze(-1)
    grid = [(1, 3, 3)]
    out = interpolated_position_embeddings(table, grid, frame_positions(grid, 1, CPU))
    assert out.squeeze(-1).tolist() == [0.0, 0.5, 1.0, 1.0, 1.5, 2.0, 2.0, 2.5, 3.0]


def test_position_embeddings_on_the_table_grid_are_the_table() -> None:
    table = torch.randn(16, 5)
    grid = [(1, 4, 4)]
    out = interpolated_position_embeddings(table, grid, frame_positions(grid, 1, CPU))
    assert torch.equal(out, table)


def test_position_embeddings_match_corner_aligned_bilinear_resize() -> None:
    """Against `F.interpolate(align_corners=True)`, read back in merge order, frames repeated."""
    side, hidden, m = 4, 3, 2
    table = torch.randn(side * side, hidden)
    grid = [(2, 6, 4), (1, 2, 8)]
    out = interpolated_position_embeddings(table, grid, frame_positions(grid, m, CPU))
    image = table.T.reshape(1, hidden, side, side)
    expected = []
    for t, h, w in grid:
        resized = F.interpolate(image, size=(h, w), mode="bilinear", align_corners=True)[0]
        frame = torch.stack([resized[:, r, c] for r, c in naive_merge_order(h, w, m)])
        expected.append(frame.repeat(t, 1))
    torch.testing.assert_close(out, torch.cat(expected), rtol=1e-5, atol=1e-5)


def test_position_embedding_weights_take_the_table_dtype() -> None:
    table = torch.randn(16, 4, dtype=torch.bfloat16)
    grid = [(1, 2, 2)]
    assert interpolated_position_embeddings(table, grid, frame_positions(grid, 1, CPU)).dtype == (
        torch.bfloat16
    )


def test_rotary_angles_hand_values() -> None:
    """head_dim 8, theta 100: frequencies 1 and 100^-1/2, row angles then column angles."""
    angles = rotary_angles(torch.tensor([[2, 3], [0, 5]]), head_dim=8, theta=100.0)
    assert angles.dtype == torch.float32
    expected = torch.tensor([[2.0, 0.2, 3.0, 0.3], [0.0, 0.0, 5.0, 0.5]])
    torch.testing.assert_close(angles, expected)


def test_rotary_angles_stay_float32_for_half_positions() -> None:
    positions = torch.tensor([[7, 1]], dtype=torch.bfloat16)
    assert rotary_angles(positions, head_dim=16, theta=ROPE_THETA).dtype == torch.float32


def test_config_checks() -> None:
    check_no_deepstack(SimpleNamespace(deepstack_visual_indexes=[]))
    check_no_deepstack(SimpleNamespace())
    with pytest.raises(NotImplementedError, match="deepstack"):
        check_no_deepstack(SimpleNamespace(deepstack_visual_indexes=[0]))
    assert position_grid_side(SimpleNamespace(num_position_embeddings=2304)) == 48
    with pytest.raises(ValueError, match="not a square"):
        position_grid_side(SimpleNamespace(num_position_embeddings=15))
    assert vision_rope_theta(SimpleNamespace()) == ROPE_THETA
    assert vision_rope_theta(SimpleNamespace(rope_parameters=None)) == ROPE_THETA
    assert vision_rope_theta(SimpleNamespace(rope_parameters={"rope_theta": 5e5})) == 5e5


def test_patch_embed_is_the_checkpoints_conv3d_on_one_kernel() -> None:
    """Each (C*T*P*P) row through the linear equals the Conv3d over that row as one kernel."""
    config = SimpleNamespace(in_channels=3, temporal_patch_size=2, patch_size=4, hidden_size=8)
    embed = InternS1ProVisionPatchEmbed(config)
    assert tuple(embed.proj.weight.shape) == (8, 3, 2, 4, 4)
    rows = torch.randn(5, 3 * 2 * 4 * 4)
    expected = embed.proj(rows.view(5, 3, 2, 4, 4)).flatten(1)
    torch.testing.assert_close(embed(rows), expected)
    half = InternS1ProVisionPatchEmbed(config, dtype=torch.bfloat16)
    assert half(rows).dtype == torch.bfloat16
