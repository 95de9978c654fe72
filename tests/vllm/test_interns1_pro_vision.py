"""Intern-S1-Pro's vision tower against a plain-torch Qwen3-VL ViT written out here.

The reference works on unflattened pixels in raster order: a strided `conv3d` per item,
`F.interpolate(bilinear, align_corners=True)` for the learned positions, rotary angles from each
patch's (row, column), softmax attention per frame, and the 2x2 merge as a reshape of the
(h, w) grid. Only the inputs are put into the processor's merge-block row order, and the output
is compared in it, so any ordering mistake in the tower shows. Float32, tiny sizes, seeded
random weights named as in the checkpoint and loaded through `load_weights`.

The tensor-parallel check runs this file as a script in two processes (gloo ranks).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("vllm")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

pytestmark = pytest.mark.vllm

ATOL = 1e-4
CONFIG: dict[str, Any] = {
    "depth": 2,
    "hidden_size": 64,
    "hidden_act": "gelu_pytorch_tanh",
    "intermediate_size": 128,
    "num_heads": 4,
    "in_channels": 3,
    "patch_size": 4,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "out_hidden_size": 96,
    "num_position_embeddings": 16,
    "deepstack_visual_indexes": [],
}
GRIDS: dict[str, list[list[int]]] = {
    "square": [[1, 4, 4]],
    "wide": [[1, 6, 8]],
    "two_images": [[1, 4, 4], [1, 2, 6]],
    "video": [[2, 4, 4]],
    "mixed": [[1, 2, 6], [2, 4, 4], [1, 6, 8]],
}


def _config(**overrides: Any) -> Any:
    from transformers.models.qwen3_vl.configuration_qwen3_vl import Qwen3VLVisionConfig

    return Qwen3VLVisionConfig(**{**CONFIG, **overrides})


def _checkpoint(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors with the checkpoint's names (relative to `model.visual.`) and shapes."""
    gen = torch.Generator().manual_seed(seed)
    c = CONFIG
    hidden, inter, out = c["hidden_size"], c["intermediate_size"], c["out_hidden_size"]
    merged = hidden * c["spatial_merge_size"] ** 2
    patch, temporal = c["patch_size"], c["temporal_patch_size"]

    def rand(*shape: int, scale: float = 0.1) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * scale

    tensors = {
        "patch_embed.proj.weight": rand(hidden, c["in_channels"], temporal, patch, patch),
        "patch_embed.proj.bias": rand(hidden),
        "pos_embed.weight": rand(c["num_position_embeddings"], hidden, scale=1.0),
        "merger.norm.weight": 1 + rand(hidden),
        "merger.norm.bias": rand(hidden),
        "merger.linear_fc1.weight": rand(merged, merged),
        "merger.linear_fc1.bias": rand(merged),
        "merger.linear_fc2.weight": rand(out, merged),
        "merger.linear_fc2.bias": rand(out),
    }
    for index in range(c["depth"]):
        block = f"blocks.{index}"
        tensors |= {
            f"{block}.norm1.weight": 1 + rand(hidden),
            f"{block}.norm1.bias": rand(hidden),
            f"{block}.norm2.weight": 1 + rand(hidden),
            f"{block}.norm2.bias": rand(hidden),
            # Larger q/k so the softmax is far from uniform and positions matter.
            f"{block}.attn.qkv.weight": rand(3 * hidden, hidden, scale=0.4),
            f"{block}.attn.qkv.bias": rand(3 * hidden),
            f"{block}.attn.proj.weight": rand(hidden, hidden),
            f"{block}.attn.proj.bias": rand(hidden),
            f"{block}.mlp.linear_fc1.weight": rand(inter, hidden),
            f"{block}.mlp.linear_fc1.bias": rand(inter),
            f"{block}.mlp.linear_fc2.weight": rand(hidden, inter),
            f"{block}.mlp.linear_fc2.bias": rand(hidden),
        }
    return tensors


def _videos(grid: list[list[int]], seed: int = 1) -> list[torch.Tensor]:
    """One `(C, t*T, h*P, w*P)` clip per item (an image is one frame pair)."""
    gen = torch.Generator().manual_seed(seed)
    c = CONFIG
    return [
        torch.randn(
            c["in_channels"],
            t * c["temporal_patch_size"],
            h * c["patch_size"],
            w * c["patch_size"],
            generator=gen,
        )
        for t, h, w in grid
    ]


def _flatten_like_processor(video: torch.Tensor, t: int, h: int, w: int) -> torch.Tensor:
    """The Qwen2-VL processor's rows: (frame, block row, block col, row in block, col in block)."""
    c = CONFIG
    channels, temporal, patch, m = (
        c["in_channels"],
        c["temporal_patch_size"],
        c["patch_size"],
        c["spatial_merge_size"],
    )
    x = video.reshape(channels, t, temporal, h // m, m, patch, w // m, m, patch)
    x = x.permute(1, 3, 6, 4, 7, 0, 2, 5, 8)
    return x.reshape(t * h * w, channels * temporal * patch * patch)


def _pixel_values(grid: list[list[int]], seed: int = 1) -> torch.Tensor:
    videos = _videos(grid, seed)
    return torch.cat([_flatten_like_processor(v, *g) for v, g in zip(videos, grid, strict=True)])


# ----------------------------------------------------------------------------- reference


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat([-second, first], dim=-1)


def _reference_item(
    weights: dict[str, torch.Tensor],
    video: torch.Tensor,
    t: int,
    h: int,
    w: int,
    *,
    swap_rotary_axes: bool = False,
    align_corners: bool = True,
) -> torch.Tensor:
    """One item through the ViT, raster order inside; merged tokens in (frame, block) order."""
    c = CONFIG
    hidden, heads, m = c["hidden_size"], c["num_heads"], c["spatial_merge_size"]
    head_dim = hidden // heads
    kernel = (c["temporal_patch_size"], c["patch_size"], c["patch_size"])

    x = F.conv3d(
        video[None],
        weights["patch_embed.proj.weight"],
        weights["patch_embed.proj.bias"],
        stride=kernel,
    )[0]  # (hidden, t, h, w)
    x = x.permute(1, 2, 3, 0).reshape(t, h * w, hidden)

    side = int(c["num_position_embeddings"] ** 0.5)
    table = weights["pos_embed.weight"].T.reshape(1, hidden, side, side)
    pos = F.interpolate(table, size=(h, w), mode="bilinear", align_corners=align_corners)[0]
    x = x + pos.permute(1, 2, 0).reshape(1, h * w, hidden)

    rows = torch.arange(h).repeat_interleave(w).float()
    cols = torch.arange(w).repeat(h).float()
    if swap_rotary_axes:
        rows, cols = cols, rows
    quarter = head_dim // 4
    inv_freq = 10000.0 ** (-torch.arange(quarter, dtype=torch.float32) / quarter)
    half = torch.cat([rows[:, None] * inv_freq, cols[:, None] * inv_freq], dim=-1)
    angles = torch.cat([half, half], dim=-1)  # (h*w, head_dim)
    cos, sin = angles.cos()[:, None], angles.sin()[:, None]

    for index in range(c["depth"]):
        p = f"blocks.{index}."
        y = F.layer_norm(x, (hidden,), weights[p + "norm1.weight"], weights[p + "norm1.bias"], 1e-6)
        qkv = F.linear(y, weights[p + "attn.qkv.weight"], weights[p + "attn.qkv.bias"])
        q, k, v = qkv.reshape(t, h * w, 3, heads, head_dim).unbind(2)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        scores = torch.einsum("fqhd,fkhd->fhqk", q, k) / head_dim**0.5
        attn = torch.einsum("fhqk,fkhd->fqhd", scores.softmax(-1), v).reshape(t, h * w, hidden)
        x = x + F.linear(attn, weights[p + "attn.proj.weight"], weights[p + "attn.proj.bias"])
        y = F.layer_norm(x, (hidden,), weights[p + "norm2.weight"], weights[p + "norm2.bias"], 1e-6)
        y = F.linear(y, weights[p + "mlp.linear_fc1.weight"], weights[p + "mlp.linear_fc1.bias"])
        y = F.gelu(y, approximate="tanh")
        x = x + F.linear(
            y, weights[p + "mlp.linear_fc2.weight"], weights[p + "mlp.linear_fc2.bias"]
        )

    x = F.layer_norm(x, (hidden,), weights["merger.norm.weight"], weights["merger.norm.bias"], 1e-6)
    x = x.reshape(t, h // m, m, w // m, m, hidden).permute(0, 1, 3, 2, 4, 5)
    x = x.reshape(-1, m * m * hidden)
    x = F.linear(x, weights["merger.linear_fc1.weight"], weights["merger.linear_fc1.bias"])
    x = F.linear(F.gelu(x), weights["merger.linear_fc2.weight"], weights["merger.linear_fc2.bias"])
    return x


def _reference(
    weights: dict[str, torch.Tensor], grid: list[list[int]], seed: int = 1, **variant: bool
) -> torch.Tensor:
    videos = _videos(grid, seed)
    return torch.cat(
        [_reference_item(weights, v, *g, **variant) for v, g in zip(videos, grid, strict=True)]
    )


# ----------------------------------------------------------------------------- the tower


def _build_tower(weights: dict[str, torch.Tensor], *, finish: bool = True) -> Any:
    """Built and loaded as vLLM's loader would, under a default vLLM config.

    `finish` runs each linear's `process_weights_after_loading`, as the model loader does after
    `load_weights` (on CPU it sets up the GEMM the layer calls).
    """
    from vllm.config import VllmConfig, set_current_vllm_config
    from vllm.model_executor.layers.quantization.base_config import QuantizeMethodBase

    from interns1_plugin.vllm.models.interns1_pro_vision import InternS1ProVisionTransformer

    torch.set_default_dtype(torch.float32)
    with set_current_vllm_config(VllmConfig()):
        tower = InternS1ProVisionTransformer(_config(), quant_config=None, prefix="visual")
    loaded = tower.load_weights(weights.items())
    assert loaded == set(weights)
    if finish:
        for module in tower.modules():
            method = getattr(module, "quant_method", None)
            if isinstance(method, QuantizeMethodBase):
                method.process_weights_after_loading(module)
    return tower.eval()


@pytest.fixture(scope="module")
def distributed() -> Iterator[None]:
    """A one-rank gloo group: vLLM's parallel layers ask it for their shard sizes."""
    from interns1_plugin.testing.vllm_context import single_rank_vllm

    with single_rank_vllm():
        yield


@pytest.fixture(scope="module")
def weights() -> dict[str, torch.Tensor]:
    return _checkpoint()


@pytest.fixture(scope="module")
def tower(distributed: None, weights: dict[str, torch.Tensor]) -> Any:
    return _build_tower(weights)


@pytest.mark.parametrize("grid", GRIDS.values(), ids=GRIDS.keys())
def test_matches_reference(tower: Any, weights: dict[str, torch.Tensor], grid: list[list[int]]):
    with torch.inference_mode():
        out = tower(_pixel_values(grid), torch.tensor(grid))
    expected = _reference(weights, grid)
    m2 = CONFIG["spatial_merge_size"] ** 2
    assert out.shape == (sum(t * h * w for t, h, w in grid) // m2, CONFIG["out_hidden_size"])
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)


def test_reference_is_sensitive_to_positions(weights: dict[str, torch.Tensor]) -> None:
    """The comparison would catch swapped rotary axes or positions resampled off the corners."""
    grid = GRIDS["wide"]
    expected = _reference(weights, grid)
    for variant in ({"swap_rotary_axes": True}, {"align_corners": False}):
        assert (_reference(weights, grid, **variant) - expected).abs().max() > 1e-2, variant


def test_frames_and_items_do_not_attend_to_each_other(tower: Any) -> None:
    """An item's tokens depend on its own frames only: batching or a second frame changes none."""
    grid = [[1, 4, 4], [1, 2, 6]]
    with torch.inference_mode():
        both = tower(_pixel_values(grid), grid)
        alone = tower(_pixel_values(grid)[:16], [[1, 4, 4]])
        video = tower(torch.cat([_pixel_values(grid)[:16]] * 2), [[2, 4, 4]])
    torch.testing.assert_close(both[:4], alone, atol=1e-6, rtol=0)
    torch.testing.assert_close(video, torch.cat([alone, alone]), atol=1e-6, rtol=0)


def test_data_parallel_dispatch_matches(
    distributed: None, weights: dict[str, torch.Tensor], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The data-parallel path (items balanced over ranks, gathered back) keeps the item order.

    One rank only, so the tower is told it is data parallel and sees a TP world of 2 for its
    dispatch decision; vLLM's sharding helper still sees the real single rank.
    """
    from interns1_plugin.vllm.models import interns1_pro_vision as module

    monkeypatch.setattr(module, "is_vit_use_data_parallel", lambda *_: True)
    tower = _build_tower(weights)
    assert tower.use_data_parallel
    monkeypatch.setattr(module, "get_tensor_model_parallel_world_size", lambda: 2)
    grid = GRIDS["mixed"]
    with torch.inference_mode():
        out = tower(_pixel_values(grid), torch.tensor(grid))
    torch.testing.assert_close(out, _reference(weights, grid), atol=ATOL, rtol=0)


def test_load_weights_places_checkpoint_tensors(
    distributed: None, weights: dict[str, torch.Tensor]
) -> None:
    params = dict(_build_tower(weights, finish=False).named_parameters())
    assert set(params) == set(weights)
    for name, tensor in weights.items():
        assert torch.equal(params[name].data, tensor), name


def test_load_weights_rejects_unknown_names(tower: Any) -> None:
    with pytest.raises(KeyError, match="deepstack_merger_list"):
        tower.load_weights([("deepstack_merger_list.0.norm.weight", torch.zeros(256))])


def test_deepstack_config_is_refused(distributed: None) -> None:
    from vllm.config import VllmConfig, set_current_vllm_config

    from interns1_plugin.vllm.models.interns1_pro_vision import InternS1ProVisionTransformer

    with set_current_vllm_config(VllmConfig()), pytest.raises(NotImplementedError, match="deep"):
        InternS1ProVisionTransformer(_config(deepstack_visual_indexes=[0]))


# ----------------------------------------------------------------------------- two TP ranks


def _rank_main(args: argparse.Namespace) -> None:
    """One TP rank: the tower sharded over `--world` ranks, full checkpoint in, rank 0 saves."""
    from vllm.config import VllmConfig, set_current_vllm_config
    from vllm.distributed import (
        destroy_distributed_environment,
        destroy_model_parallel,
        init_distributed_environment,
        initialize_model_parallel,
    )

    torch.set_num_threads(1)
    init_distributed_environment(
        world_size=args.world,
        rank=args.rank,
        local_rank=args.rank,
        distributed_init_method=f"tcp://127.0.0.1:{args.port}",
        backend="gloo",
    )
    with set_current_vllm_config(VllmConfig()):
        initialize_model_parallel(args.world, 1)
    tower = _build_tower(_checkpoint())
    local_qkv = tower.blocks[0].attn.qkv.output_size_per_partition
    assert local_qkv == 3 * CONFIG["hidden_size"] // args.world, local_qkv
    outputs = {}
    with torch.inference_mode():
        for name, grid in GRIDS.items():
            outputs[name] = tower(_pixel_values(grid), torch.tensor(grid))
    if args.rank == 0:
        torch.save(outputs, args.out)
    destroy_model_parallel()
    destroy_distributed_environment()


@pytest.mark.distributed
def test_tensor_parallel_two_ranks(tmp_path: Path, weights: dict[str, torch.Tensor]) -> None:
    """Heads, MLPs and the merger split over two gloo ranks give the reference output."""
    from interns1_plugin.testing.server import free_port

    out = tmp_path / "tp2.pt"
    port = free_port()
    repo = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]),
    }
    ranks = [
        subprocess.Popen(
            [sys.executable, __file__, "--rank", str(rank), "--world", "2", "--port", str(port)]
            + ["--out", str(out)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(2)
    ]
    errors = []
    for rank in ranks:
        try:
            _, stderr = rank.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            rank.kill()
            _, stderr = rank.communicate()
        if rank.returncode != 0:
            errors.append(stderr[-4000:])
    assert not errors, "\n".join(errors)
    outputs = torch.load(out)
    for name, grid in GRIDS.items():
        torch.testing.assert_close(outputs[name], _reference(weights, grid), atol=ATOL, rtol=0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rank", type=int, required=True)
    parser.add_argument("--world", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    _rank_main(parser.parse_args())
