"""A tiny Intern-S1-Pro-shaped checkpoint on disk, for tests, demos and benchmarks.

Same published layout as the real model at toy widths: `config.json` with `text_config`
(Qwen3-MoE keys plus `router_n_groups` and the FoPE keys in `rope_scaling`), a Qwen3-VL
`vision_config` without deepstack and a `ts_config`; tensors under `model.language_model.*`
(one FoPE coefficient pair at `model.language_model.rotary_emb.*_coef`), `model.visual.*`,
`model.time_series.*` and `lm_head.*`; Qwen3-VL processor configs with small pixel bounds (the
profiling run of an engine encodes the largest allowed image); the plugin's Pro chat template.

Weights are seeded random values picked so mistakes show in the logits: FoPE coefficients away
from the identity (so plain RoPE differs), router logits large enough that grouped and plain
top-k choose different experts, norms away from identity, biases away from zero. Sizes divide
by 2 (query / KV heads, experts, vision heads) so tensor and expert parallel runs can shard them.

With a `script`, the same architecture says a fixed reply under greedy decoding (the bigram
construction of `scripted_checkpoint`: every layer's output projections are zero, embeddings and
`lm_head` walk the script), for live tests of the parsers on a Pro-shaped model; the vision tower
and the time-series encoder keep their random weights and still run on every request.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interns1_plugin.formats import (
    ENDOFTEXT,
    IM_END,
    IMAGE_PAD,
    TS_END,
    TS_START,
    TS_TOKEN,
    VIDEO_PAD,
    VISION_END,
    VISION_START,
)
from interns1_plugin.testing.scripted_checkpoint import (
    Script,
    bigram_tensors,
    build_script_tokenizer,
    script_token_ids,
)
from interns1_plugin.testing.tiny_interns1 import (
    TokenizerFiles,
    _padded_vocab,
    _Random,
    write_byte_level_tokenizer,
    write_shards,
)

if TYPE_CHECKING:
    import torch

#: Sizes of the per-patch time-series subsampler, fixed by the architecture.
TS_SUBSAMPLER_WIDTH = 128
TS_SUBSAMPLER_FFN = 2048
TS_SUBSAMPLER_PE_LENGTH = 20000


@dataclass(frozen=True)
class TinyPro:
    text_hidden: int = 64
    text_layers: int = 2
    text_heads: int = 4
    text_kv_heads: int = 2
    head_dim: int = 32
    num_experts: int = 8
    experts_per_token: int = 4
    router_n_groups: int = 2
    moe_intermediate: int = 64
    rope_theta: float = 5_000_000.0
    max_position_embeddings: int = 8192
    vision_depth: int = 2
    vision_hidden: int = 64
    vision_heads: int = 4
    vision_intermediate: int = 128
    patch_size: int = 16
    temporal_patch_size: int = 2
    merge_size: int = 2
    num_position_embeddings: int = 64
    ts_d_model: int = 64
    ts_layers: int = 2
    ts_heads: int = 4
    ts_ffn: int = 128
    ts_max_source_positions: int = 4096
    #: Pixel bounds of the processor configs (the real model allows 16M pixels).
    min_pixels: int = 32 * 32
    max_pixels: int = 448 * 448

    @property
    def fope_frequencies(self) -> int:
        """FoPE keeps the rotary frequencies whose period fits in the context."""
        count = 0
        for i in range(0, self.head_dim, 2):
            inv_freq = 1.0 / (self.rope_theta ** (i / self.head_dim))
            count += inv_freq > 2 * math.pi / self.max_position_embeddings
        return count


TINY_PRO = TinyPro()


def write_pro_tokenizer(out: Path) -> TokenizerFiles:
    """The tiny byte-level tokenizer plus Pro's time-series tokens."""
    from tokenizers import AddedToken, Tokenizer

    base = write_byte_level_tokenizer(out)
    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    tokenizer.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in (TS_START, TS_TOKEN, TS_END)]
    )
    tokenizer.save(str(out / "tokenizer.json"))
    config_path = out / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["additional_special_tokens"] += [TS_START, TS_TOKEN, TS_END]
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", "utf-8")
    ids = dict(base.token_ids) | {t: tokenizer.token_to_id(t) for t in (TS_START, TS_TOKEN, TS_END)}
    return TokenizerFiles(size=tokenizer.get_vocab_size(with_added_tokens=True), token_ids=ids)


#: Tokens a Pro prompt needs besides the script's own: the vision and time-series placeholders.
_PRO_PLACEHOLDER_TOKENS = (
    VISION_START,
    VISION_END,
    IMAGE_PAD,
    VIDEO_PAD,
    TS_START,
    TS_TOKEN,
    TS_END,
)


def write_scripted_pro_tokenizer(out: Path, script: Script) -> TokenizerFiles:
    """The script's tokenizer (one token per segment) plus Pro's placeholder tokens."""
    from tokenizers import AddedToken

    tokenizer = build_script_tokenizer(script)
    tokenizer.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in _PRO_PLACEHOLDER_TOKENS]
    )
    tokenizer.save(str(out / "tokenizer.json"))
    _write_json(
        out / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": None,
            "eos_token": IM_END,
            "pad_token": ENDOFTEXT,
            "clean_up_tokenization_spaces": False,
            "model_max_length": 32768,
        },
    )
    names = (ENDOFTEXT, IM_END, *_PRO_PLACEHOLDER_TOKENS)
    ids = {name: tokenizer.token_to_id(name) for name in names}
    return TokenizerFiles(size=tokenizer.get_vocab_size(with_added_tokens=True), token_ids=ids)


def script_tensors(
    tensors: dict[str, torch.Tensor], chain_ids: list[int], spec: TinyPro, vocab: int, seed: int
) -> dict[str, torch.Tensor]:
    """Rewire the language model so greedy decoding walks `chain_ids` (see the module doc)."""
    import torch

    p = "model.language_model."
    head = bigram_tensors(chain_ids, vocab_size=vocab, hidden_size=spec.text_hidden, seed=seed)
    out = dict(tensors)
    out[p + "embed_tokens.weight"] = head["model.embed_tokens.weight"]
    out[p + "norm.weight"] = head["model.norm.weight"]
    out["lm_head.weight"] = head["lm_head.weight"]
    for name in tensors:
        if name.endswith(("self_attn.o_proj.weight", "down_proj.weight")):
            out[name] = torch.zeros_like(tensors[name])
        elif name.startswith(p + "layers.") and name.endswith("layernorm.weight"):
            out[name] = torch.ones_like(tensors[name])
    return out


def model_config(spec: TinyPro, tokens: TokenizerFiles, vocab: int, dtype: str) -> dict[str, Any]:
    ids = tokens.token_ids
    text = {
        "architectures": ["Qwen3MoeForCausalLM"],
        "attention_bias": False,
        "bos_token_id": ids[ENDOFTEXT],
        "decoder_sparse_step": 1,
        "eos_token_id": ids[IM_END],
        "head_dim": spec.head_dim,
        "hidden_act": "silu",
        "hidden_size": spec.text_hidden,
        "intermediate_size": spec.moe_intermediate * 2,
        "max_position_embeddings": spec.max_position_embeddings,
        "mlp_only_layers": [],
        "model_type": "qwen3_moe",
        "moe_intermediate_size": spec.moe_intermediate,
        "norm_topk_prob": True,
        "num_attention_heads": spec.text_heads,
        "num_experts": spec.num_experts,
        "num_experts_per_tok": spec.experts_per_token,
        "num_hidden_layers": spec.text_layers,
        "num_key_value_heads": spec.text_kv_heads,
        "rms_norm_eps": 1e-06,
        "rope_scaling": {
            "rope_type": "default",
            "fope_init_factor": 0.5,
            "fope_sep_head": True,
            "num_inv_freq": None,
        },
        "rope_theta": spec.rope_theta,
        "router_n_groups": spec.router_n_groups,
        "tie_word_embeddings": False,
        "torch_dtype": dtype,
        "vocab_size": vocab,
    }
    vision = {
        "depth": spec.vision_depth,
        "hidden_act": "gelu_pytorch_tanh",
        "hidden_size": spec.vision_hidden,
        "in_channels": 3,
        "intermediate_size": spec.vision_intermediate,
        "model_type": "interns1_pro_vision",
        "num_heads": spec.vision_heads,
        "num_position_embeddings": spec.num_position_embeddings,
        "out_hidden_size": spec.text_hidden,
        "patch_size": spec.patch_size,
        "spatial_merge_size": spec.merge_size,
        "temporal_patch_size": spec.temporal_patch_size,
    }
    ts = {
        "activation_function": "gelu",
        "d_model": spec.ts_d_model,
        "encoder_attention_heads": spec.ts_heads,
        "encoder_ffn_dim": spec.ts_ffn,
        "encoder_layers": spec.ts_layers,
        "max_source_positions": spec.ts_max_source_positions,
        "model_type": "interns1_pro_time_series",
        "num_mel_bins": 80,
        "out_hidden_size": spec.text_hidden,
        "scale_embedding": False,
        "ts_adapt_in_dim": 2 * TS_SUBSAMPLER_WIDTH,
        "ts_adapt_out_dim": spec.ts_d_model,
        "ts_hidden_dim": spec.ts_d_model,
    }
    return {
        "architectures": ["InternS1ProForConditionalGeneration"],
        "image_token_id": ids[IMAGE_PAD],
        "model_type": "interns1_pro",
        "text_config": text,
        "tie_word_embeddings": False,
        "torch_dtype": dtype,
        "ts_config": ts,
        "ts_end_token_id": ids[TS_END],
        "ts_start_token_id": ids[TS_START],
        "ts_token_id": ids[TS_TOKEN],
        "video_token_id": ids[VIDEO_PAD],
        "vision_config": vision,
        "vision_end_token_id": ids[VISION_END],
        "vision_start_token_id": ids[VISION_START],
    }


def preprocessor_config(spec: TinyPro) -> dict[str, Any]:
    """Qwen3-VL image processor keys with this checkpoint's pixel bounds."""
    return {
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": [0.5, 0.5, 0.5],
        "image_processor_type": "Qwen2VLImageProcessorFast",
        "image_std": [0.5, 0.5, 0.5],
        "merge_size": spec.merge_size,
        "patch_size": spec.patch_size,
        "resample": 3,
        "rescale_factor": 1 / 255,
        "size": {"longest_edge": spec.max_pixels, "shortest_edge": spec.min_pixels},
        "temporal_patch_size": spec.temporal_patch_size,
    }


def video_preprocessor_config(spec: TinyPro) -> dict[str, Any]:
    return preprocessor_config(spec) | {
        "fps": 2,
        "max_frames": 8,
        "min_frames": 4,
        "video_processor_type": "InternS1ProVideoProcessor",
    }


def _sinusoids(length: int, width: int) -> torch.Tensor:
    import torch

    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
    table = torch.zeros(length, width)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div)
    return table.unsqueeze(1)


def _linear(rnd: _Random, name: str, out_f: int, in_f: int, bias: bool = True) -> dict:
    tensors = {name + ".weight": rnd.linear(out_f, in_f)}
    if bias:
        tensors[name + ".bias"] = rnd.normal(out_f, std=0.1)
    return tensors


def _norm(rnd: _Random, name: str, width: int, bias: bool = True) -> dict:
    tensors = {name + ".weight": rnd.norm_weight(width)}
    if bias:
        tensors[name + ".bias"] = rnd.normal(width, std=0.1)
    return tensors


def _text_tensors(spec: TinyPro, rnd: _Random, vocab: int) -> dict[str, torch.Tensor]:
    import torch

    p = "model.language_model."
    hidden, hd = spec.text_hidden, spec.head_dim
    freqs = spec.fope_frequencies
    eye = torch.eye(freqs).expand(spec.text_kv_heads, freqs, freqs)
    tensors = {
        p + "embed_tokens.weight": rnd.normal(vocab, hidden),
        p + "norm.weight": rnd.norm_weight(hidden),
        p + "rotary_emb.cos_coef": eye + rnd.normal(spec.text_kv_heads, freqs, freqs, std=0.3),
        p + "rotary_emb.sin_coef": eye + rnd.normal(spec.text_kv_heads, freqs, freqs, std=0.3),
    }
    for layer in range(spec.text_layers):
        q = f"{p}layers.{layer}."
        tensors |= _norm(rnd, q + "input_layernorm", hidden, bias=False)
        tensors |= _norm(rnd, q + "post_attention_layernorm", hidden, bias=False)
        tensors |= _linear(rnd, q + "self_attn.q_proj", spec.text_heads * hd, hidden, bias=False)
        tensors |= _linear(rnd, q + "self_attn.k_proj", spec.text_kv_heads * hd, hidden, False)
        tensors |= _linear(rnd, q + "self_attn.v_proj", spec.text_kv_heads * hd, hidden, False)
        tensors |= _linear(rnd, q + "self_attn.o_proj", hidden, spec.text_heads * hd, bias=False)
        tensors |= _norm(rnd, q + "self_attn.q_norm", hd, bias=False)
        tensors |= _norm(rnd, q + "self_attn.k_norm", hd, bias=False)
        tensors[q + "mlp.gate.weight"] = rnd.linear(spec.num_experts, hidden) * 4
        for expert in range(spec.num_experts):
            e = f"{q}mlp.experts.{expert}."
            inner = spec.moe_intermediate
            tensors |= _linear(rnd, e + "gate_proj", inner, hidden, bias=False)
            tensors |= _linear(rnd, e + "up_proj", inner, hidden, bias=False)
            tensors |= _linear(rnd, e + "down_proj", hidden, inner, bias=False)
    tensors["lm_head.weight"] = rnd.linear(vocab, hidden)
    return tensors


def _vision_tensors(spec: TinyPro, rnd: _Random) -> dict[str, torch.Tensor]:
    p = "model.visual."
    width, patch = spec.vision_hidden, spec.patch_size
    patch_in = 3 * spec.temporal_patch_size * patch * patch
    tensors = {
        p + "patch_embed.proj.weight": rnd.normal(
            width, 3, spec.temporal_patch_size, patch, patch, std=patch_in**-0.5
        ),
        p + "patch_embed.proj.bias": rnd.normal(width, std=0.1),
        p + "pos_embed.weight": rnd.normal(spec.num_position_embeddings, width, std=0.5),
    }
    for block in range(spec.vision_depth):
        b = f"{p}blocks.{block}."
        tensors |= _norm(rnd, b + "norm1", width)
        tensors |= _norm(rnd, b + "norm2", width)
        tensors |= _linear(rnd, b + "attn.qkv", 3 * width, width)
        tensors |= _linear(rnd, b + "attn.proj", width, width)
        tensors |= _linear(rnd, b + "mlp.linear_fc1", spec.vision_intermediate, width)
        tensors |= _linear(rnd, b + "mlp.linear_fc2", width, spec.vision_intermediate)
    merged = width * spec.merge_size**2
    tensors |= _norm(rnd, p + "merger.norm", width)
    tensors |= _linear(rnd, p + "merger.linear_fc1", merged, merged)
    tensors |= _linear(rnd, p + "merger.linear_fc2", spec.text_hidden, merged)
    return tensors


def _time_series_tensors(spec: TinyPro, rnd: _Random) -> dict[str, torch.Tensor]:
    p = "model.time_series."
    sub, ffn, d = TS_SUBSAMPLER_WIDTH, TS_SUBSAMPLER_FFN, spec.ts_d_model
    layer = p + "encoder_embed.transformer_encoder.layers.0."
    tensors = {
        p + "encoder_embed.conv.weight": rnd.normal(sub, 1, 5, std=5**-0.5),
        p + "encoder_embed.conv.bias": rnd.normal(sub, std=0.1),
        p + "encoder_embed.pos_encoder.pe": _sinusoids(TS_SUBSAMPLER_PE_LENGTH, sub),
        layer + "self_attn.in_proj_weight": rnd.linear(3 * sub, sub),
        layer + "self_attn.in_proj_bias": rnd.normal(3 * sub, std=0.1),
    }
    tensors |= _linear(rnd, layer + "self_attn.out_proj", sub, sub)
    tensors |= _linear(rnd, layer + "linear1", ffn, sub)
    tensors |= _linear(rnd, layer + "linear2", sub, ffn)
    tensors |= _norm(rnd, layer + "norm1", sub)
    tensors |= _norm(rnd, layer + "norm2", sub)
    e = p + "encoder."
    tensors |= _linear(rnd, e + "adapt_in", 80, 2 * sub)
    tensors[e + "conv1.weight"] = rnd.normal(d, 80, 3, std=(80 * 3) ** -0.5)
    tensors[e + "conv1.bias"] = rnd.normal(d, std=0.1)
    tensors[e + "conv2.weight"] = rnd.normal(d, d, 3, std=(d * 3) ** -0.5)
    tensors[e + "conv2.bias"] = rnd.normal(d, std=0.1)
    tensors[e + "embed_positions.weight"] = rnd.normal(spec.ts_max_source_positions, d, std=0.2)
    for index in range(spec.ts_layers):
        q = f"{e}layers.{index}."
        tensors |= _linear(rnd, q + "self_attn.q_proj", d, d)
        tensors |= _linear(rnd, q + "self_attn.k_proj", d, d, bias=False)  # Whisper's k_proj
        tensors |= _linear(rnd, q + "self_attn.v_proj", d, d)
        tensors |= _linear(rnd, q + "self_attn.out_proj", d, d)
        tensors |= _norm(rnd, q + "self_attn_layer_norm", d)
        tensors |= _linear(rnd, q + "fc1", spec.ts_ffn, d)
        tensors |= _linear(rnd, q + "fc2", d, spec.ts_ffn)
        tensors |= _norm(rnd, q + "final_layer_norm", d)
    tensors |= _norm(rnd, e + "layer_norm", d)
    tensors |= _linear(rnd, e + "adapt_out", d, d)
    tensors |= _norm(rnd, p + "projector.layer_norm", d)
    tensors |= _linear(rnd, p + "projector.linear_1", spec.text_hidden, d)
    tensors |= _linear(rnd, p + "projector.linear_2", spec.text_hidden, spec.text_hidden)
    return tensors


def checkpoint_tensors(spec: TinyPro, vocab: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Every tensor under its published name, float32."""
    rnd = _Random(seed)
    return {
        **_vision_tensors(spec, rnd),
        **_time_series_tensors(spec, rnd),
        **_text_tensors(spec, rnd, vocab),
    }


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def build_tiny_interns1_pro(
    out_dir: str | Path,
    spec: TinyPro = TINY_PRO,
    *,
    seed: int = 0,
    dtype: str = "float32",
    num_shards: int = 2,
    with_auto_map: bool = False,
    script: Script | None = None,
) -> Path:
    """Write a loadable tiny Intern-S1-Pro checkpoint into `out_dir` and return its path.

    `script` makes it a scripted checkpoint (see the module doc).
    """
    import torch

    from interns1_plugin.chat_templates import read_template

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if script is None:
        tokens = write_pro_tokenizer(out)
    else:
        tokens = write_scripted_pro_tokenizer(out, script)
    vocab = _padded_vocab(tokens.size)
    tensors = checkpoint_tensors(spec, vocab, seed)
    if script is not None:
        from tokenizers import Tokenizer

        chain = script_token_ids(Tokenizer.from_file(str(out / "tokenizer.json")), script)
        tensors = script_tensors(tensors, chain, spec, vocab, seed)
    tensors = {name: t.to(getattr(torch, dtype)).contiguous() for name, t in tensors.items()}
    write_shards(tensors, out, num_shards)
    config = model_config(spec, tokens, vocab, dtype)
    if with_auto_map:
        config["auto_map"] = {
            "AutoConfig": "configuration_interns1_pro.InternS1ProConfig",
            "AutoModelForCausalLM": "modeling_interns1_pro.InternS1ProForConditionalGeneration",
        }
    _write_json(out / "config.json", config)
    _write_json(
        out / "generation_config.json",
        {
            "bos_token_id": tokens.token_ids[ENDOFTEXT],
            "eos_token_id": tokens.token_ids[IM_END],
            "do_sample": True,
            "temperature": 0.7,
            "top_p": 1.0,
            "top_k": 50,
        },
    )
    _write_json(out / "preprocessor_config.json", preprocessor_config(spec))
    _write_json(out / "video_preprocessor_config.json", video_preprocessor_config(spec))
    (out / "chat_template.jinja").write_text(read_template("interns1_pro"), encoding="utf-8")
    return out


__all__ = [
    "TINY_PRO",
    "TinyPro",
    "build_tiny_interns1_pro",
    "checkpoint_tensors",
    "model_config",
    "script_tensors",
]
