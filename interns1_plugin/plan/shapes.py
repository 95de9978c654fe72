"""The language model's shape and weight storage, read from `text_config` and
`quantization_config`.

Why: every per-rank count (weights, KV, activations, layout checks) depends on these few sizes;
reading them once, validated, keeps the arithmetic free of config lookups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from interns1_plugin.plan.errors import PlanError
from interns1_plugin.plan.fields import read_int, read_pair

#: Default `--max-model-len`: the config's max_position_embeddings, capped here.
MAX_MODEL_LEN_CAP = 32768


@dataclass(frozen=True)
class TextShape:
    """The language model's sizes, as far as memory depends on them."""

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool
    experts: int
    top_k: int
    moe_intermediate: int
    sparse: tuple[bool, ...]
    max_positions: int
    attention_bias: bool = False
    #: Learned FoPE frequencies (Intern-S1-Pro); 0 for plain RoPE.
    fope_freqs: int = 0
    fope_per_head: bool = False

    @property
    def is_moe(self) -> bool:
        return any(self.sparse)

    @property
    def has_dense_mlp(self) -> bool:
        return not all(self.sparse)


def _fope(text: dict[str, Any], head_dim: int, max_positions: int) -> tuple[int, bool]:
    """FoPE's learned frequency count, selected as vLLM does: those above 2*pi / max positions."""
    rope = text.get("rope_scaling") or text.get("rope_parameters") or {}
    if not isinstance(rope, dict):
        return 0, False
    if all(rope.get(k) is None for k in ("fope_init_factor", "fope_sep_head", "num_inv_freq")):
        return 0, False
    per_head = bool(rope.get("fope_sep_head"))
    if rope.get("num_inv_freq") is not None:
        return read_int(rope, "num_inv_freq", "text_config.rope_scaling"), per_head
    base = float(rope.get("rope_theta", text.get("rope_theta", 10000.0)))
    floor = 2 * math.pi / max_positions
    return sum(1 for i in range(0, head_dim, 2) if base ** (-i / head_dim) > floor), per_head


def parse_text(text: dict[str, Any], top: dict[str, Any] | None = None) -> TextShape:
    """A qwen3 / qwen3_moe style `text_config` (Intern-S1, mini, Pro)."""
    where = "text_config"
    layers = read_int(text, "num_hidden_layers", where)
    hidden = read_int(text, "hidden_size", where)
    heads = read_int(text, "num_attention_heads", where)
    head_dim = read_int(text, "head_dim", where, default=max(1, hidden // heads))
    experts = read_int(text, "num_experts", where, default=0, minimum=0)
    step = read_int(text, "decoder_sparse_step", where, default=1)
    mlp_only = text.get("mlp_only_layers") or []
    if not isinstance(mlp_only, list) or not all(isinstance(i, int) for i in mlp_only):
        raise PlanError(f"`{where}.mlp_only_layers` must be a list of layer indices")
    sparse = tuple(experts > 0 and i not in mlp_only and (i + 1) % step == 0 for i in range(layers))
    moe = any(sparse)
    max_positions = read_int(text, "max_position_embeddings", where, default=MAX_MODEL_LEN_CAP)
    tied = text.get("tie_word_embeddings", (top or {}).get("tie_word_embeddings", False))
    fope_freqs, fope_per_head = _fope(text, head_dim, max_positions)
    return TextShape(
        layers=layers,
        hidden=hidden,
        heads=heads,
        kv_heads=read_int(text, "num_key_value_heads", where, default=heads),
        head_dim=head_dim,
        intermediate=read_int(text, "intermediate_size", where) if not all(sparse) else 0,
        vocab=read_int(text, "vocab_size", where),
        tied=bool(tied),
        experts=experts if moe else 0,
        top_k=read_int(text, "num_experts_per_tok", where) if moe else 0,
        moe_intermediate=read_int(text, "moe_intermediate_size", where) if moe else 0,
        sparse=sparse,
        max_positions=max_positions,
        attention_bias=bool(text.get("attention_bias", False)),
        fope_freqs=fope_freqs,
        fope_per_head=fope_per_head,
    )


@dataclass(frozen=True)
class Quant:
    """How the language model's linear weights are stored."""

    fp8: bool = False
    #: Weight rows x columns per float32 scale; None with FP8 means one scale per tensor.
    block: tuple[int, int] | None = None

    def label(self) -> str:
        if not self.fp8:
            return "BF16"
        if self.block is None:
            return "FP8 per-tensor"
        return f"FP8 block {self.block[0]}x{self.block[1]}"


def parse_quant(config: dict[str, Any], text: dict[str, Any]) -> Quant:
    """`quantization_config` at the top level or in `text_config`; only FP8 is modelled."""
    qc = config.get("quantization_config", text.get("quantization_config"))
    if qc is None:
        return Quant()
    if not isinstance(qc, dict):
        raise PlanError("`quantization_config` must be an object")
    method = qc.get("quant_method")
    if method != "fp8":
        raise PlanError(f"quantization {method!r} is not modelled; only `fp8` is")
    if qc.get("weight_block_size") is None:
        return Quant(fp8=True)
    return Quant(fp8=True, block=read_pair(qc, "weight_block_size", "quantization_config", 128))


__all__ = ["MAX_MODEL_LEN_CAP", "Quant", "TextShape", "parse_quant", "parse_text"]
