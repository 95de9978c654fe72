"""Parameter counts of the encoders beside the language model: vision towers, projectors and
Intern-S1-Pro's time-series encoder.

Why: vLLM keeps these whole (BF16) on every rank, so only their totals matter to the plan;
they are counted here from their config sections, tensor by tensor.
"""

from __future__ import annotations

from typing import Any

from interns1_plugin.plan.fields import read_int, read_pair


def internvit_params(vision: dict[str, Any]) -> int:
    """InternViT as Intern-S1 / mini ship it (tensor names of `model.vision_tower.*`)."""
    where = "vision_config"
    h = read_int(vision, "hidden_size", where)
    inner = read_int(vision, "intermediate_size", where)
    layers = read_int(vision, "num_hidden_layers", where)
    channels = read_int(vision, "num_channels", where, default=3)
    image = read_pair(vision, "image_size", where, 448)
    patch = read_pair(vision, "patch_size", where, 14)
    patches = (image[0] // patch[0]) * (image[1] // patch[1])
    layer_norm = vision.get("norm_type", "rms_norm") == "layer_norm"
    norm = 2 * h if layer_norm else h
    embeddings = h + h * channels * patch[0] * patch[1] + h  # CLS token, patch conv + bias
    if vision.get("use_absolute_position_embeddings", True):
        embeddings += (patches + 1) * h
    per_layer = (
        3 * h * h  # q, k, v
        + (3 * h if vision.get("attention_bias", False) else 0)
        + (2 * h if vision.get("use_qk_norm", False) else 0)  # RMSNorm over the full width
        + (h * h + h)  # output projection + bias
        + (2 * h * inner + inner + h)  # fc1, fc2 + biases
        + 2 * h  # layer scales lambda_1, lambda_2
        + 2 * norm  # pre-attention and pre-MLP norms
    )
    final = 0 if vision.get("use_mean_pooling", True) else norm
    return embeddings + layers * per_layer + final


def projector_params(vision_hidden: int, text_hidden: int, downsample_ratio: float) -> int:
    """LayerNorm(4v) -> Linear(4v, t) -> GELU -> Linear(t, t): pixel shuffle widens by 1/r^2."""
    wide = vision_hidden * round(1 / downsample_ratio**2)
    return 2 * wide + wide * text_hidden + text_hidden + text_hidden * text_hidden + text_hidden


def qwen3_vl_vision_params(vision: dict[str, Any]) -> int:
    """Intern-S1-Pro's Qwen3-VL-style ViT with its patch merger (and deepstack mergers, if any)."""
    where = "vision_config"
    h = read_int(vision, "hidden_size", where)
    depth = read_int(vision, "depth", where)
    inner = read_int(vision, "intermediate_size", where)
    out = read_int(vision, "out_hidden_size", where)
    patch = read_int(vision, "patch_size", where)
    temporal = read_int(vision, "temporal_patch_size", where, default=2)
    channels = read_int(vision, "in_channels", where, default=3)
    merge = read_int(vision, "spatial_merge_size", where, default=2)
    positions = read_int(vision, "num_position_embeddings", where)
    embed = h * channels * temporal * patch * patch + h + positions * h
    block = (
        2 * 2 * h  # two LayerNorms with bias
        + (3 * h * h + 3 * h)  # fused qkv + bias
        + (h * h + h)  # projection + bias
        + (inner * h + inner + h * inner + h)  # MLP + biases
    )
    wide = h * merge * merge
    mlp = wide * wide + wide + out * wide + out
    merger = 2 * h + mlp  # the final merger normalises before the shuffle
    deepstack = len(vision.get("deepstack_visual_indexes") or []) * (2 * wide + mlp)
    return embed + depth * block + merger + deepstack


def time_series_params(ts: dict[str, Any]) -> int:
    """Rough count of Pro's Whisper-style time-series encoder from `ts_config`'s main keys.

    Counts the input/output adapters, two convolutions, positions, encoder layers, final norm and
    projector; the small patch front-end (a 128-wide conv and transformer layer) is left out.
    """
    where = "ts_config"
    d = read_int(ts, "d_model", where)
    layers = read_int(ts, "encoder_layers", where)
    ffn = read_int(ts, "encoder_ffn_dim", where)
    mel = read_int(ts, "num_mel_bins", where, default=0, minimum=0)
    positions = read_int(ts, "max_source_positions", where, default=0, minimum=0)
    adapt_in = read_int(ts, "ts_adapt_in_dim", where, default=0, minimum=0)
    adapt_out = read_int(ts, "ts_adapt_out_dim", where, default=0, minimum=0)
    hidden = read_int(ts, "ts_hidden_dim", where, default=d)
    out = read_int(ts, "out_hidden_size", where, default=0, minimum=0)
    adapters = (adapt_in * mel + mel if adapt_in else 0) + (d * adapt_out + adapt_out)
    convs = mel * d * 3 + d + d * d * 3 + d
    per_layer = 4 * d * d + 4 * d + 2 * d * ffn + ffn + d + 2 * 2 * d
    projector = 2 * hidden + hidden * out + out + out * out + out if out else 0
    return adapters + convs + positions * d + layers * per_layer + 2 * d + projector


__all__ = [
    "internvit_params",
    "projector_params",
    "qwen3_vl_vision_params",
    "time_series_params",
]
