"""Intern-S1-Pro's text model on vLLM against a plain-torch reference written out here.

Three levels, each against formulas spelled out in this file rather than the plugin's code:

- `grouped_topk_routing` against a loop-and-sort reference (softmax over all experts, then the
  largest probabilities inside each contiguous group of experts).
- FoPE: the plugin's rotary module (vLLM's `FourierRotaryEmbedding`, built in-process on a
  one-rank gloo group) against the formula: per-KV-head cos/sin are the position's plain
  cos/sin over the kept frequencies mixed by the learned coefficient matrices.
- End to end: vLLM greedy-decodes the tiny Pro checkpoint (float32) in a child process (this file
  run as a script) and a reference forward here, from the safetensors, decodes the same prompts
  token by token by full recomputation. Tokens must be equal and the chosen tokens' logprobs
  close; the reference itself is shown to move when FoPE or grouped routing is dropped, so the
  comparison would catch the plugin dropping either.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("vllm")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

pytestmark = pytest.mark.vllm

PLUGIN_MODULE = "interns1_plugin.vllm.models.interns1_pro"
ARCHITECTURE = "InternS1ProForConditionalGeneration"
#: Byte-level prompts of a few lengths: the longest reaches positions past 60.
PROMPTS = (
    "Hello world, this is",
    "The quick brown fox jumps over the lazy",
    "Noble gases are helium, neon, argon, krypton, xenon and radon; they",
)
MAX_TOKENS = 8
TOP_LOGPROBS = 5
#: float32 on both sides: the only differences are summation orders.
LOGPROB_ATOL = 1e-4
FOPE_ATOL = 1e-5
#: How far the logits must move when the reference drops FoPE or grouped routing.
MUTATION_MIN_DIFF = 1e-3


# ----------------------------------------------------------------------------- the checkpoint


@dataclass(frozen=True)
class TextSpec:
    """The `text_config` numbers the reference needs, read straight from `config.json`."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    experts: int
    topk: int
    groups: int
    norm_topk: bool
    eps: float
    theta: float
    max_positions: int

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TextSpec:
        text = config["text_config"]
        return cls(
            hidden=text["hidden_size"],
            layers=text["num_hidden_layers"],
            heads=text["num_attention_heads"],
            kv_heads=text["num_key_value_heads"],
            head_dim=text["head_dim"],
            experts=text["num_experts"],
            topk=text["num_experts_per_tok"],
            groups=text["router_n_groups"],
            norm_topk=text["norm_topk_prob"],
            eps=text["rms_norm_eps"],
            theta=float(text["rope_theta"]),
            max_positions=text["max_position_embeddings"],
        )


@dataclass(frozen=True)
class TinyPro:
    """The built checkpoint: its directory, text spec and language-model tensors."""

    path: Path
    spec: TextSpec
    weights: dict[str, torch.Tensor]

    def encode(self, text: str) -> list[int]:
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(self.path / "tokenizer.json")).encode(text).ids


@pytest.fixture(scope="module")
def tiny_pro(tmp_path_factory: pytest.TempPathFactory) -> TinyPro:
    from safetensors.torch import load_file

    from interns1_plugin.testing.tiny_interns1_pro import build_tiny_interns1_pro

    path = build_tiny_interns1_pro(tmp_path_factory.mktemp("interns1-pro") / "model")
    weights: dict[str, torch.Tensor] = {}
    for shard in sorted(path.glob("*.safetensors")):
        for name, tensor in load_file(shard).items():
            if name.startswith(("model.language_model.", "lm_head.")):
                weights[name] = tensor
    config = json.loads((path / "config.json").read_text())
    return TinyPro(path, TextSpec.from_config(config), weights)


# ----------------------------------------------------------------------------- reference routing


def reference_routing(
    logits: torch.Tensor, topk: int, n_groups: int, renormalize: bool
) -> list[dict[int, float]]:
    """Per token `{expert: weight}`: softmax, then each group's largest probabilities by sorting.

    `n_groups` of 0 or 1 is one group holding every expert (plain top-k).
    """
    groups = max(n_groups, 1)
    num_experts = logits.shape[-1]
    size, per_group = num_experts // groups, topk // groups
    routes = []
    for row in logits.double():
        probs = torch.softmax(row, dim=-1).tolist()
        chosen: dict[int, float] = {}
        for group in range(groups):
            members = range(group * size, (group + 1) * size)
            for expert in sorted(members, key=lambda e: probs[e], reverse=True)[:per_group]:
                chosen[expert] = probs[expert]
        if renormalize:
            total = sum(chosen.values())
            chosen = {e: p / total for e, p in chosen.items()}
        routes.append(chosen)
    return routes


def _routes_of(weights: torch.Tensor, ids: torch.Tensor) -> list[dict[int, float]]:
    return [
        dict(zip(row_ids, row_w, strict=True))
        for row_ids, row_w in zip(ids.tolist(), weights.tolist(), strict=True)
    ]


def _tie_free_logits(tokens: int, experts: int, seed: int) -> torch.Tensor:
    """Each row a shuffled ladder 0.5 apart plus noise under 0.1: no two experts ever tie."""
    gen = torch.Generator().manual_seed(seed)
    ranks = torch.rand(tokens, experts, generator=gen).argsort(dim=-1).float()
    return ranks * 0.5 + torch.rand(tokens, experts, generator=gen) * 0.1 - experts * 0.25


# ----------------------------------------------------------------------------- reference rotary


def _inv_freq(spec: TextSpec) -> torch.Tensor:
    """Plain RoPE's frequencies `theta^(-2i/head_dim)`, in float32 like any float32 table.

    Angles at position 4095 are only as exact as float32 frequencies; a float64 table would
    differ from every float32 implementation by ~1e-4 there.
    """
    exponents = torch.arange(0, spec.head_dim, 2, dtype=torch.float32) / spec.head_dim
    return 1.0 / spec.theta**exponents


def kept_frequencies(spec: TextSpec) -> torch.Tensor:
    """FoPE keeps the frequencies whose period fits in the context (`num_inv_freq` unset)."""
    inv_freq = _inv_freq(spec)
    return inv_freq[inv_freq > 2 * math.pi / spec.max_positions]


def fope_cos_sin(
    positions: torch.Tensor, cos_coef: torch.Tensor, sin_coef: torch.Tensor, spec: TextSpec
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(tokens, kv_heads, head_dim)` cos/sin: the kept frequencies' cos/sin times each KV head's
    coefficient matrix, padded with ones to `head_dim / 2` and repeated for the two halves."""
    angles = positions.float()[:, None] * kept_frequencies(spec)[None, :]  # (T, D)
    kv_heads, freqs = cos_coef.shape[0], angles.shape[-1]
    pad = torch.ones(len(positions), kv_heads, spec.head_dim // 2 - freqs)
    tables = []
    for trig, coef in ((angles.cos(), cos_coef), (angles.sin(), sin_coef)):
        mixed = torch.stack([trig @ coef[h].float() for h in range(kv_heads)], dim=1)
        half = torch.cat([mixed, pad], dim=-1)
        tables.append(torch.cat([half, half], dim=-1))
    return tables[0], tables[1]


def rope_cos_sin(
    positions: torch.Tensor, spec: TextSpec, kv_heads: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain neox RoPE over every frequency, the same for all KV heads."""
    angles = positions.float()[:, None] * _inv_freq(spec)[None, :]
    angles = torch.cat([angles, angles], dim=-1)[:, None, :].expand(-1, kv_heads, -1)
    return angles.cos(), angles.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat([-second, first], dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """`x`: (tokens, heads, head_dim); query head j takes KV head j // (heads / kv_heads)."""
    group = x.shape[1] // cos.shape[1]
    cos, sin = cos.repeat_interleave(group, dim=1), sin.repeat_interleave(group, dim=1)
    return x * cos + rotate_half(x) * sin


# ----------------------------------------------------------------------------- reference model


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def _moe(
    h: torch.Tensor,
    w: dict[str, torch.Tensor],
    prefix: str,
    spec: TextSpec,
    grouped: bool,
    router_logits: list[torch.Tensor] | None,
) -> torch.Tensor:
    """Every expert on every token, weighted by the (zero outside the top-k) routing weights."""
    logits = h @ w[prefix + "gate.weight"].T
    if router_logits is not None:
        router_logits.append(logits)
    routes = reference_routing(logits, spec.topk, spec.groups if grouped else 1, spec.norm_topk)
    dense = torch.zeros(h.shape[0], spec.experts)
    for token, route in enumerate(routes):
        for expert, weight in route.items():
            dense[token, expert] = weight
    out = torch.zeros_like(h)
    for expert in range(spec.experts):
        e = f"{prefix}experts.{expert}."
        inner = F.silu(h @ w[e + "gate_proj.weight"].T) * (h @ w[e + "up_proj.weight"].T)
        out = out + dense[:, expert : expert + 1] * (inner @ w[e + "down_proj.weight"].T)
    return out


def reference_logits(
    model: TinyPro,
    ids: list[int],
    *,
    fope: bool = True,
    grouped: bool = True,
    router_logits: list[torch.Tensor] | None = None,
) -> torch.Tensor:
    """`(tokens, vocab)` logits of the whole sequence; `fope=False` uses plain RoPE instead,
    `grouped=False` plain top-k routing. Router logits per layer go into `router_logits`."""
    spec, w = model.spec, model.weights
    p = "model.language_model."
    tokens, hd = len(ids), spec.head_dim
    positions = torch.arange(tokens)
    if fope:
        cos, sin = fope_cos_sin(
            positions, w[p + "rotary_emb.cos_coef"], w[p + "rotary_emb.sin_coef"], spec
        )
    else:
        cos, sin = rope_cos_sin(positions, spec, spec.kv_heads)
    causal = torch.ones(tokens, tokens, dtype=torch.bool).tril()
    group = spec.heads // spec.kv_heads

    x = w[p + "embed_tokens.weight"][torch.tensor(ids)]
    for layer in range(spec.layers):
        a = f"{p}layers.{layer}.self_attn."
        h = rms_norm(x, w[f"{p}layers.{layer}.input_layernorm.weight"], spec.eps)
        q = (h @ w[a + "q_proj.weight"].T).view(tokens, spec.heads, hd)
        k = (h @ w[a + "k_proj.weight"].T).view(tokens, spec.kv_heads, hd)
        v = (h @ w[a + "v_proj.weight"].T).view(tokens, spec.kv_heads, hd)
        q = apply_rotary(rms_norm(q, w[a + "q_norm.weight"], spec.eps), cos, sin)
        k = apply_rotary(rms_norm(k, w[a + "k_norm.weight"], spec.eps), cos, sin)
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        scores = torch.einsum("qhd,khd->hqk", q, k) * hd**-0.5
        scores = scores.masked_fill(~causal, float("-inf"))
        attn = torch.einsum("hqk,khd->qhd", scores.softmax(-1), v).reshape(tokens, -1)
        x = x + attn @ w[a + "o_proj.weight"].T
        h = rms_norm(x, w[f"{p}layers.{layer}.post_attention_layernorm.weight"], spec.eps)
        x = x + _moe(h, w, f"{p}layers.{layer}.mlp.", spec, grouped, router_logits)
    x = rms_norm(x, w[p + "norm.weight"], spec.eps)
    return x @ w["lm_head.weight"].T


def reference_greedy(model: TinyPro, prompt_ids: list[int], steps: int) -> dict[str, Any]:
    """Greedy continuation, recomputing the whole sequence for every new token."""
    ids, tokens, tops, margins = list(prompt_ids), [], [], []
    for _ in range(steps):
        logprobs = torch.log_softmax(reference_logits(model, ids)[-1], dim=-1)
        top = logprobs.topk(TOP_LOGPROBS)
        token = int(top.indices[0])
        tokens.append(token)
        tops.append(dict(zip(top.indices.tolist(), top.values.tolist(), strict=True)))
        margins.append(float(top.values[0] - top.values[1]))
        ids.append(token)
    return {"tokens": tokens, "top": tops, "margins": margins}


# ----------------------------------------------------------------------------- vLLM child


def run_vllm(model_dir: Path) -> dict[str, Any]:
    """Greedy generation with logprobs through `vllm.LLM`, in this (child) process."""
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    from vllm import LLM, ModelRegistry, SamplingParams

    from interns1_plugin.configs import register_with_transformers
    from interns1_plugin.vllm.models import register_models

    register_with_transformers()
    register_models()
    assert ModelRegistry.models[ARCHITECTURE].module_name == PLUGIN_MODULE
    llm = LLM(
        model=str(model_dir),
        dtype="float32",
        enforce_eager=True,
        max_model_len=1024,
        max_num_seqs=2,
        kv_cache_memory_bytes=64 << 20,
        limit_mm_per_prompt={"image": 0, "video": 0, "time_series": 0},
        seed=0,
    )
    params = SamplingParams(temperature=0.0, max_tokens=MAX_TOKENS, logprobs=TOP_LOGPROBS)
    outputs = llm.generate(list(PROMPTS), params, use_tqdm=False)
    results = []
    for output in outputs:
        completion = output.outputs[0]
        tops = [{str(t): lp.logprob for t, lp in step.items()} for step in completion.logprobs]
        results.append(
            {
                "prompt_ids": list(output.prompt_token_ids),
                "tokens": list(completion.token_ids),
                "top": tops,
            }
        )
    modules = llm.apply_model(lambda model: type(model.language_model).__module__)
    return {"results": results, "language_model_modules": modules}


# ----------------------------------------------------------------------------- routing tests

ROUTING_CASES = [
    # (experts, topk, groups)
    (8, 4, 2),  # the tiny checkpoint's shape
    (16, 8, 4),
    (12, 6, 3),
    (8, 8, 2),  # every expert, still two groups
    (8, 4, 1),  # one group: plain top-k
    (8, 4, 0),  # `router_n_groups` absent: plain top-k
]


@pytest.mark.parametrize("renormalize", [True, False], ids=["renorm", "raw"])
@pytest.mark.parametrize(("experts", "topk", "groups"), ROUTING_CASES)
def test_grouped_routing_matches_loop_reference(
    experts: int, topk: int, groups: int, renormalize: bool
) -> None:
    from interns1_plugin.vllm.models.interns1_pro_text import grouped_topk_routing

    logits = _tie_free_logits(37, experts, seed=experts * 100 + topk * 10 + groups)
    hidden = torch.zeros(37, 16)
    weights, ids = grouped_topk_routing(hidden, logits, topk, renormalize, n_groups=groups)

    assert weights.shape == ids.shape == (37, topk)
    assert weights.dtype == torch.float32
    assert ids.dtype in (torch.int32, torch.int64)
    expected = reference_routing(logits, topk, groups, renormalize)
    for token, (got, want) in enumerate(zip(_routes_of(weights, ids), expected, strict=True)):
        assert sorted(got) == sorted(want), (
            f"token {token}: experts {sorted(got)} != {sorted(want)}"
        )
        for expert, weight in want.items():
            assert got[expert] == pytest.approx(weight, abs=1e-6), (token, expert)
    if renormalize:
        torch.testing.assert_close(weights.sum(-1), torch.ones(37), atol=1e-6, rtol=0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_grouped_routing_returns_float32_from_half_logits(dtype: torch.dtype) -> None:
    from interns1_plugin.vllm.models.interns1_pro_text import grouped_topk_routing

    logits = _tie_free_logits(9, 8, seed=5).to(dtype)
    weights, ids = grouped_topk_routing(torch.zeros(9, 4, dtype=dtype), logits, 4, True, n_groups=2)
    assert weights.dtype == torch.float32
    assert ids.dtype in (torch.int32, torch.int64)
    expected = reference_routing(logits.float(), 4, 2, True)
    for got, want in zip(_routes_of(weights, ids), expected, strict=True):
        assert sorted(got) == sorted(want)
        assert all(got[e] == pytest.approx(p, abs=1e-6) for e, p in want.items())


@pytest.mark.parametrize(
    ("experts", "topk", "groups"),
    [(8, 4, 3), (9, 3, 2), (8, 3, 2), (8, 2, 8)],
    ids=["experts-3", "experts-odd", "topk-odd", "topk-below-groups"],
)
def test_grouped_routing_rejects_indivisible_groups(experts: int, topk: int, groups: int) -> None:
    from interns1_plugin.vllm.models.interns1_pro_text import grouped_topk_routing

    logits = _tie_free_logits(3, experts, seed=0)
    with pytest.raises(ValueError, match="router_n_groups"):
        grouped_topk_routing(torch.zeros(3, 4), logits, topk, True, n_groups=groups)


def test_tiny_router_needs_grouping(tiny_pro: TinyPro) -> None:
    """On the tiny checkpoint's own router inputs, grouped and plain top-k pick different experts
    for some tokens in every layer: the end-to-end comparison exercises the grouping."""
    from interns1_plugin.vllm.models.interns1_pro_text import grouped_topk_routing

    spec = tiny_pro.spec
    assert spec.groups == 2 and spec.experts % spec.groups == 0
    router_logits: list[torch.Tensor] = []
    reference_logits(tiny_pro, tiny_pro.encode(PROMPTS[2]), router_logits=router_logits)
    assert len(router_logits) == spec.layers
    for layer, logits in enumerate(router_logits):
        hidden = torch.zeros(logits.shape[0], spec.hidden)
        _, grouped = grouped_topk_routing(hidden, logits, spec.topk, True, n_groups=spec.groups)
        _, plain = grouped_topk_routing(hidden, logits, spec.topk, True, n_groups=1)
        differing = sum(
            set(g) != set(p) for g, p in zip(grouped.tolist(), plain.tolist(), strict=True)
        )
        assert differing > 0, f"layer {layer}: grouping never changes the experts"


# ----------------------------------------------------------------------------- FoPE tests


@pytest.fixture(scope="module")
def vllm_single_rank() -> Iterator[None]:
    """A one-rank gloo group: the rotary module asks it for its tensor-parallel share."""
    from interns1_plugin.testing.vllm_context import single_rank_vllm

    with single_rank_vllm():
        yield


def _fope_module(model: TinyPro, cos_coef: torch.Tensor, sin_coef: torch.Tensor) -> Any:
    """The plugin's FoPE module for the tiny config, coefficients loaded by its weight loader."""
    from vllm.config import VllmConfig, set_current_vllm_config

    from interns1_plugin.configs.interns1_pro import InternS1ProConfig
    from interns1_plugin.vllm.models.interns1_pro_text import fope_rotary_embedding

    torch.set_default_dtype(torch.float32)
    text_config = InternS1ProConfig.from_pretrained(model.path).text_config
    with set_current_vllm_config(VllmConfig()):
        module = fope_rotary_embedding(text_config, model.spec.head_dim)
    for param, value in ((module.cos_coef, cos_coef), (module.sin_coef, sin_coef)):
        assert param.shape == value.shape
        param.weight_loader(param, value)
    return module


POSITIONS = torch.tensor([0, 1, 17, 4095])


def _qk(spec: TextSpec, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(len(POSITIONS), spec.heads * spec.head_dim, generator=gen)
    k = torch.randn(len(POSITIONS), spec.kv_heads * spec.head_dim, generator=gen)
    return q, k


def _heads(x: torch.Tensor, spec: TextSpec) -> torch.Tensor:
    return x.view(x.shape[0], -1, spec.head_dim)


def _checkpoint_coefficients(model: TinyPro) -> tuple[torch.Tensor, torch.Tensor]:
    p = "model.language_model.rotary_emb."
    return model.weights[p + "cos_coef"], model.weights[p + "sin_coef"]


def test_fope_keeps_the_frequencies_that_fit_the_context(tiny_pro: TinyPro) -> None:
    from interns1_plugin.testing.tiny_interns1_pro import TINY_PRO

    spec = tiny_pro.spec
    kept = len(kept_frequencies(spec))
    assert 0 < kept < spec.head_dim // 2  # some dims are padding: the test below covers them
    assert kept == TINY_PRO.fope_frequencies
    cos_coef, _ = _checkpoint_coefficients(tiny_pro)
    assert cos_coef.shape == (spec.kv_heads, kept, kept)


def test_fope_matches_formula(vllm_single_rank: None, tiny_pro: TinyPro) -> None:
    spec = tiny_pro.spec
    cos_coef, sin_coef = _checkpoint_coefficients(tiny_pro)
    module = _fope_module(tiny_pro, cos_coef, sin_coef)
    q, k = _qk(spec)
    with torch.inference_mode():
        got_q, got_k = module.forward_native(POSITIONS, q.clone(), k.clone())
    cos, sin = fope_cos_sin(POSITIONS, cos_coef, sin_coef, spec)
    want_q = apply_rotary(_heads(q, spec), cos, sin)
    want_k = apply_rotary(_heads(k, spec), cos, sin)
    torch.testing.assert_close(got_q.reshape(want_q.shape), want_q, atol=FOPE_ATOL, rtol=0)
    torch.testing.assert_close(got_k.reshape(want_k.shape), want_k, atol=FOPE_ATOL, rtol=0)

    # Learned coefficients make it something else than RoPE, at every position but 0 ...
    rope_cos, rope_sin = rope_cos_sin(POSITIONS, spec, spec.kv_heads)
    rope_q = apply_rotary(_heads(q, spec), rope_cos, rope_sin)
    assert (want_q[1:] - rope_q[1:]).abs().amax(dim=(1, 2)).min() > 0.1
    # ... and the two KV heads' coefficients differ, so the query-head grouping matters.
    swapped = apply_rotary(_heads(q, spec), cos.flip(1), sin.flip(1))
    assert (swapped - want_q).abs().max() > 0.1


def test_fope_with_identity_coefficients_is_rope_on_kept_frequencies(
    vllm_single_rank: None, tiny_pro: TinyPro
) -> None:
    """With identity coefficients, the kept frequencies are plain RoPE. The dims beyond them are
    padded with cos = 1 and sin = 1 (not 1 and 0), so there x becomes x + rotate_half(x): a
    scaled 45-degree turn independent of the position, not the identity."""
    spec = tiny_pro.spec
    kept, half = len(kept_frequencies(spec)), spec.head_dim // 2
    eye = torch.eye(kept).expand(spec.kv_heads, kept, kept).contiguous()
    module = _fope_module(tiny_pro, eye, eye.clone())
    q, k = _qk(spec, seed=1)
    with torch.inference_mode():
        got_q, got_k = module.forward_native(POSITIONS, q.clone(), k.clone())

    rope_cos, rope_sin = rope_cos_sin(POSITIONS, spec, spec.kv_heads)
    rotary_dims = torch.cat([torch.arange(kept), half + torch.arange(kept)])
    padded_dims = torch.cat([torch.arange(kept, half), half + torch.arange(kept, half)])
    for got, x in ((got_q, q), (got_k, k)):
        x = _heads(x, spec)
        got = got.reshape(x.shape)
        rope = apply_rotary(x, rope_cos, rope_sin)
        torch.testing.assert_close(
            got[..., rotary_dims], rope[..., rotary_dims], atol=FOPE_ATOL, rtol=0
        )
        padded = (x + rotate_half(x))[..., padded_dims]
        torch.testing.assert_close(got[..., padded_dims], padded, atol=FOPE_ATOL, rtol=0)


# ----------------------------------------------------------------------------- end to end


def test_reference_is_sensitive_to_fope_and_grouping(tiny_pro: TinyPro) -> None:
    """Plain RoPE or plain top-k in the reference moves the logits: the end-to-end comparison
    would catch the plugin dropping either feature."""
    ids = tiny_pro.encode(PROMPTS[1])
    logits = reference_logits(tiny_pro, ids)
    for variant in ({"fope": False}, {"grouped": False}):
        diff = (reference_logits(tiny_pro, ids, **variant) - logits).abs().max()
        assert diff > MUTATION_MIN_DIFF, (variant, float(diff))


def test_greedy_logprobs_match_reference(tiny_pro: TinyPro, tmp_path: Path) -> None:
    out = tmp_path / "vllm.json"
    child = subprocess.run(
        [sys.executable, __file__, str(tiny_pro.path), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0"},
    )
    assert child.returncode == 0, child.stderr[-6000:]
    tested = json.loads(out.read_text())
    assert tested["language_model_modules"] == ["interns1_plugin.vllm.models.interns1_pro_text"], (
        "vLLM did not run the plugin's text model"
    )

    worst = 0.0
    for prompt, result in zip(PROMPTS, tested["results"], strict=True):
        assert result["prompt_ids"] == tiny_pro.encode(prompt), prompt
        reference = reference_greedy(tiny_pro, result["prompt_ids"], MAX_TOKENS)
        assert result["tokens"] == reference["tokens"], (prompt, reference["margins"])
        for step, token in enumerate(reference["tokens"]):
            ref_lp = reference["top"][step][token]
            test_lp = result["top"][step][str(token)]
            worst = max(worst, abs(ref_lp - test_lp))
            assert abs(ref_lp - test_lp) < LOGPROB_ATOL, (prompt, step, ref_lp, test_lp)
    print(f"max chosen-token logprob difference: {worst:.3e}")


if __name__ == "__main__":
    Path(sys.argv[2]).write_text(json.dumps(run_vllm(Path(sys.argv[1]))))
