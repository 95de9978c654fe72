"""The time-series encoder against an independent, unchunked reference forward.

The reference below follows the published model's forward step by step with plain ops (conv1d,
explicit softmax attention, Python loops over layers), in the reference's own layouts (time-major
patch sequences, a padded position table), so it shares no code with the module under test.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from interns1_plugin.modeling.time_series_encoder import InternS1ProTimeSeriesEncoder
from interns1_plugin.processing.time_series import num_time_series_tokens

TINY = dict(
    d_model=64,
    encoder_layers=2,
    encoder_attention_heads=4,
    encoder_ffn_dim=128,
    activation_function="gelu",
    num_mel_bins=80,
    max_source_positions=64,
    ts_adapt_in_dim=256,
    ts_adapt_out_dim=64,
    ts_hidden_dim=64,
    out_hidden_size=96,
)
TOLERANCE = 1e-5


def tiny_config(**overrides: object) -> SimpleNamespace:
    return SimpleNamespace(**{**TINY, **overrides})


def randomise(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Seeded weights at a scale that keeps activations O(1); norms around 1."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if "norm" in name and name.endswith("weight"):
                param.copy_(1 + 0.1 * noise)
            elif param.ndim == 1:
                param.copy_(0.1 * noise)
            else:
                fan_in = math.prod(param.shape[1:])
                param.copy_(noise / math.sqrt(fan_in))
    return model.eval()


@pytest.fixture(scope="module")
def model() -> InternS1ProTimeSeriesEncoder:
    return randomise(InternS1ProTimeSeriesEncoder(tiny_config()), seed=0)


# --- the independent reference -----------------------------------------------------------------


def attention(q, k, v, heads: int, causal: bool) -> torch.Tensor:
    """(batch, length, dim) inputs, explicit softmax."""
    batch, length, dim = q.shape
    size = dim // heads

    def split(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(batch, length, heads, size).permute(0, 2, 1, 3)

    scores = split(q) @ split(k).transpose(-1, -2) / math.sqrt(size)
    if causal:
        mask = torch.ones(length, length, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(mask, float("-inf"))
    out = torch.softmax(scores, dim=-1) @ split(v)
    return out.permute(0, 2, 1, 3).reshape(batch, length, dim)


def layer_norm(x: torch.Tensor, w: dict, name: str) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], w[f"{name}.weight"], w[f"{name}.bias"], eps=1e-5)


def linear(x: torch.Tensor, w: dict, name: str) -> torch.Tensor:
    bias = w.get(f"{name}.bias")
    return x @ w[f"{name}.weight"].T + (0 if bias is None else bias)


def post_norm_layer(x: torch.Tensor, w: dict, prefix: str) -> torch.Tensor:
    """torch's TransformerEncoderLayer(128, 8) at inference on time-major (L, B, D) input."""
    x = x.transpose(0, 1)  # (B, L, D)
    q, k, v = (
        x @ w[f"{prefix}.self_attn.in_proj_weight"].T + w[f"{prefix}.self_attn.in_proj_bias"]
    ).chunk(3, -1)
    x = layer_norm(
        x + linear(attention(q, k, v, 8, False), w, f"{prefix}.self_attn.out_proj"),
        w,
        f"{prefix}.norm1",
    )
    ff = linear(torch.relu(linear(x, w, f"{prefix}.linear1")), w, f"{prefix}.linear2")
    return layer_norm(x + ff, w, f"{prefix}.norm2").transpose(0, 1)


def reference_forward(
    w: dict, config: SimpleNamespace, values: torch.Tensor, rate: float | None
) -> torch.Tensor:
    length, channels = values.shape
    rate = max(length / 4, 1.0) if rate is None else rate
    sr = torch.tensor([rate], dtype=torch.float32)
    stride = int(torch.floor(160 / ((1 + torch.exp(-sr / 100)) ** 6))[0])
    patch = 2 * stride
    count = int(math.ceil((length - patch) / stride)) + 1
    if count < 2:
        return torch.zeros(0, config.out_hidden_size)
    padded = torch.cat([values, torch.zeros((count - 1) * stride + patch - length, channels)])
    index = torch.arange(count)[:, None] * stride + torch.arange(patch)
    patched = padded[index]  # (count, patch, C)

    # per-patch subsampler
    x = patched.reshape(count * channels, 1, patch)
    x = torch.relu(
        F.conv1d(x, w["encoder_embed.conv.weight"], w["encoder_embed.conv.bias"], padding=2)
    )
    x = x.permute(2, 0, 1) + w["encoder_embed.pos_encoder.pe"][:patch]
    x = post_norm_layer(x, w, "encoder_embed.transformer_encoder.layers.0")
    feats = x.mean(0).reshape(count, channels, -1).mean(1)

    # concat subsampling
    if count % 2:
        feats = feats[:-1]
    frames = torch.cat([feats[0::2], feats[1::2]], dim=1)

    # Whisper-style encoder
    x = linear(frames, w, "encoder.adapt_in").T[None]
    x = F.gelu(F.conv1d(x, w["encoder.conv1.weight"], w["encoder.conv1.bias"], padding=1))
    x = F.gelu(F.conv1d(x, w["encoder.conv2.weight"], w["encoder.conv2.bias"], stride=2, padding=1))
    x = x.permute(0, 2, 1)
    table = w["encoder.embed_positions.weight"]
    if x.shape[1] > table.shape[0]:
        table = F.pad(table, (0, 0, 0, x.shape[1] - table.shape[0]))
    x = x + table[: x.shape[1]]
    for i in range(config.encoder_layers):
        p = f"encoder.layers.{i}"
        h = layer_norm(x, w, f"{p}.self_attn_layer_norm")
        q, k, v = (linear(h, w, f"{p}.self_attn.{n}_proj") for n in "qkv")
        x = x + linear(
            attention(q, k, v, config.encoder_attention_heads, True), w, f"{p}.self_attn.out_proj"
        )
        h = layer_norm(x, w, f"{p}.final_layer_norm")
        x = x + linear(F.gelu(linear(h, w, f"{p}.fc1")), w, f"{p}.fc2")
    x = linear(layer_norm(x, w, "encoder.layer_norm"), w, "encoder.adapt_out")[0]

    # projector
    x = linear(layer_norm(x, w, "projector.layer_norm"), w, "projector.linear_1")
    return linear(F.gelu(x), w, "projector.linear_2")


# --- tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [None, 20.0])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("length", [1, 7, 100, 5_000])
def test_matches_the_reference_forward(
    model: InternS1ProTimeSeriesEncoder, length: int, channels: int, rate: float | None
) -> None:
    values = torch.randn(length, channels, generator=torch.Generator().manual_seed(length))
    weights = model.state_dict()
    with torch.no_grad():
        (got,) = model([values], [rate])
        expected = reference_forward(weights, tiny_config(), values, rate)
    tokens = num_time_series_tokens(length, rate)
    assert got.shape == (tokens, TINY["out_hidden_size"])
    assert expected.shape == got.shape
    if tokens:
        assert (got - expected).abs().max().item() < TOLERANCE


def test_beyond_the_position_table_no_token_is_dropped(model: InternS1ProTimeSeriesEncoder) -> None:
    values = torch.randn(1_200, 1, generator=torch.Generator().manual_seed(1))
    tokens = num_time_series_tokens(1_200, 20.0)
    assert tokens > TINY["max_source_positions"]
    with torch.no_grad():
        (got,) = model([values], [20.0])
    assert got.shape[0] == tokens


def test_a_batch_is_encoded_one_series_at_a_time(model: InternS1ProTimeSeriesEncoder) -> None:
    generator = torch.Generator().manual_seed(5)
    series = [torch.randn(n, c, generator=generator) for n, c in ((300, 1), (1_000, 3), (64, 2))]
    rates = torch.tensor([10.0, 400.0, 3.0])
    with torch.no_grad():
        batched = model(series, rates)
        alone = [model([s], [float(r)])[0] for s, r in zip(series, rates, strict=True)]
    for one, other in zip(batched, alone, strict=True):
        torch.testing.assert_close(one, other, rtol=0, atol=0)


def test_chunk_size_does_not_change_results(model: InternS1ProTimeSeriesEncoder) -> None:
    values = torch.randn(400, 3, generator=torch.Generator().manual_seed(2))
    outputs = []
    try:
        for chunk in (1, 50, 64 * 320, 10**7):
            model.patch_chunk_rows = chunk
            with torch.no_grad():
                outputs.append(model([values], [30.0])[0])
    finally:
        model.patch_chunk_rows = 64 * 320
    for out in outputs[1:]:
        torch.testing.assert_close(out, outputs[0], rtol=0, atol=1e-6)
    with pytest.raises(ValueError):
        model.patch_chunk_rows = 0


@pytest.mark.parametrize(
    "length, rate",
    [
        (n, r)
        for r in (None, 1.0, 20.0, 1000.0)
        for n in (1, 2, 3, 4, 5, 6, 63, 64, 65, 317, 318, 319, 320, 321, 1_000, 10_000)
    ]
    + [(20_000, 20.0), (100_000, None), (1_000_000, None)],
)
def test_output_length_is_the_token_count(length: int, rate: float | None) -> None:
    """Stage 1 stubbed out (its cost), so long series check the patching and pairing cheaply."""
    encoder = InternS1ProTimeSeriesEncoder(tiny_config()).eval()
    encoder.encoder_embed._encode = lambda p: p.new_zeros(p.shape[0], 128)
    with torch.no_grad():
        (out,) = encoder([torch.zeros(length, 1)], [rate])
    assert out.shape == (num_time_series_tokens(length, rate), TINY["out_hidden_size"])


def test_patch_layer_matches_torch_transformer_encoder_layer(model) -> None:
    layer = torch.nn.TransformerEncoderLayer(d_model=128, nhead=8).eval()
    ours = model.encoder_embed.transformer_encoder.layers[0]
    layer.load_state_dict(ours.state_dict())
    x = torch.randn(40, 6, 128, generator=torch.Generator().manual_seed(3))  # (L, B, D)
    with torch.no_grad():
        expected = layer(x)
        got = ours(x.transpose(0, 1)).transpose(0, 1)
    assert (got - expected).abs().max().item() < TOLERANCE


def test_parameter_names_are_the_checkpoint_names(model: InternS1ProTimeSeriesEncoder) -> None:
    names = set(model.state_dict())
    for name in (
        "encoder_embed.conv.weight",
        "encoder_embed.transformer_encoder.layers.0.self_attn.in_proj_weight",
        "encoder_embed.transformer_encoder.layers.0.self_attn.out_proj.bias",
        "encoder_embed.transformer_encoder.layers.0.linear1.weight",
        "encoder_embed.transformer_encoder.layers.0.norm2.bias",
        "encoder_embed.pos_encoder.pe",
        "encoder.conv1.weight",
        "encoder.conv2.bias",
        "encoder.embed_positions.weight",
        "encoder.layers.1.self_attn.k_proj.weight",
        "encoder.layers.1.self_attn_layer_norm.weight",
        "encoder.layers.1.fc2.bias",
        "encoder.layers.1.final_layer_norm.bias",
        "encoder.layer_norm.weight",
        "encoder.adapt_in.weight",
        "encoder.adapt_out.bias",
        "projector.layer_norm.weight",
        "projector.linear_1.weight",
        "projector.linear_2.bias",
    ):
        assert name in names, name
    assert model.encoder_embed.pos_encoder.pe.shape == (20000, 1, 128)


def test_load_weights_round_trips_hf_names(model: InternS1ProTimeSeriesEncoder) -> None:
    state = {k: v.clone() for k, v in model.state_dict().items()}
    k_biases = {k for k in state if k.endswith("self_attn.k_proj.bias")}
    assert len(k_biases) == TINY["encoder_layers"]
    hf_state = {k: v for k, v in state.items() if k not in k_biases}  # Whisper has no k bias

    fresh = InternS1ProTimeSeriesEncoder(tiny_config()).eval()
    with torch.no_grad():
        for name in k_biases:
            fresh.get_parameter(name).fill_(3.0)
    loaded = fresh.load_weights(hf_state.items())
    assert loaded == set(state)
    for name in k_biases:
        assert fresh.get_parameter(name).abs().max().item() == 0
    for name in hf_state:
        torch.testing.assert_close(fresh.state_dict()[name], state[name], rtol=0, atol=0)

    # A key bias adds the same score to every key of a query: softmax cancels it.
    values = torch.randn(2_000, 2, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(fresh([values], [None])[0], model([values], [None])[0])


def test_load_weights_rejects_unknown_names_and_shapes() -> None:
    encoder = InternS1ProTimeSeriesEncoder(tiny_config())
    with pytest.raises(KeyError, match="unknown time-series encoder weight"):
        encoder.load_weights([("encoder.layers.9.fc1.weight", torch.zeros(128, 64))])
    with pytest.raises(ValueError, match="shape"):
        encoder.load_weights([("encoder.adapt_in.weight", torch.zeros(3, 3))])


def test_config_checks() -> None:
    with pytest.raises(ValueError, match="ts_hidden_dim"):
        InternS1ProTimeSeriesEncoder(tiny_config(ts_hidden_dim=32))
    with pytest.raises(ValueError, match="ts_adapt_in_dim"):
        InternS1ProTimeSeriesEncoder(tiny_config(ts_adapt_in_dim=128))
    with pytest.raises(ValueError, match="activation_function"):
        InternS1ProTimeSeriesEncoder(tiny_config(activation_function="nope"))


def test_runs_in_bfloat16(model: InternS1ProTimeSeriesEncoder) -> None:
    half = randomise(InternS1ProTimeSeriesEncoder(tiny_config()), seed=0).to(torch.bfloat16)
    values = torch.randn(1_000, 1, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        (got,) = half([values], [None])
        (full,) = model([values], [None])
    assert got.dtype == torch.bfloat16
    assert (got.float() - full).abs().max().item() < 0.2 * full.abs().max().item()


@pytest.mark.lmdeploy
@pytest.mark.filterwarnings("ignore:enable_nested_tensor")
def test_matches_lmdeploy_reference_module(model: InternS1ProTimeSeriesEncoder) -> None:
    """LMDeploy 0.18's own module on CPU, given the same weights (q/k/v packed)."""
    reference = pytest.importorskip("lmdeploy.pytorch.models.interns1_pro_time_series")
    transformers = pytest.importorskip("transformers")
    config = transformers.PretrainedConfig(scale_embedding=False, **TINY)
    theirs = reference.InternS1ProTimeSeriesModel(
        config, dtype=torch.float32, device=torch.device("cpu")
    ).eval()
    state = model.state_dict()
    packed = {}
    for name, tensor in state.items():
        if ".self_attn.q_proj." in name and name.startswith("encoder."):
            base, kind = name.split(".q_proj.")
            parts = [state[f"{base}.{p}_proj.{kind}"] for p in "qkv"]
            packed[f"{base}.qkv_proj.{kind}"] = torch.cat(parts)
        elif not (".self_attn.k_proj." in name or ".self_attn.v_proj." in name):
            packed[name] = tensor
    theirs.load_state_dict(packed)
    for length, channels, rate in ((100, 1, None), (2_000, 3, None), (1_200, 1, 20.0)):
        values = torch.randn(length, channels, generator=torch.Generator().manual_seed(7))
        sr = max(length / 4, 1.0) if rate is None else rate
        with torch.no_grad():
            (got,) = model([values], [rate])
            expected = theirs([values], torch.tensor([length]), torch.tensor([sr]))[0]
        assert expected.shape == got.shape
        # LMDeploy's in-layer LayerNorms use eps 1e-6 (the published model's, 1e-5).
        assert (got - expected).abs().max().item() < 1e-4
