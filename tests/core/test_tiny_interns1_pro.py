"""The tiny Intern-S1-Pro checkpoint: published names and shapes, ids that agree, determinism."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from tokenizers import Tokenizer

from interns1_plugin import formats
from interns1_plugin.testing.scripted_checkpoint import PRO_TOOL_CALL_SCRIPT, script_token_ids
from interns1_plugin.testing.tiny_interns1_pro import TINY_PRO, build_tiny_interns1_pro


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    index = json.loads((path / "model.safetensors.index.json").read_text())
    out: dict[str, torch.Tensor] = {}
    for shard in sorted(set(index["weight_map"].values())):
        with safe_open(str(path / shard), "pt") as handle:
            out |= {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    return out


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_interns1_pro(tmp_path_factory.mktemp("pro") / "model")


def test_every_part_of_the_model_is_stored_under_its_published_prefix(checkpoint: Path):
    names = set(_tensors(checkpoint))
    for prefix in ("model.language_model.", "model.visual.", "model.time_series.", "lm_head."):
        assert any(name.startswith(prefix) for name in names), prefix
    assert "model.language_model.rotary_emb.cos_coef" in names
    assert not any("layers.0.self_attn.rotary_emb" in name for name in names)
    assert "model.time_series.encoder.layers.0.self_attn.k_proj.bias" not in names  # Whisper


def test_fope_coefficients_cover_the_kept_frequencies(checkpoint: Path):
    kept = sum(
        1 / TINY_PRO.rope_theta ** (i / TINY_PRO.head_dim)
        > 2 * math.pi / TINY_PRO.max_position_embeddings
        for i in range(0, TINY_PRO.head_dim, 2)
    )
    assert 0 < kept < TINY_PRO.head_dim // 2  # padding beyond the kept ones is exercised
    coef = _tensors(checkpoint)["model.language_model.rotary_emb.sin_coef"]
    assert coef.shape == (TINY_PRO.text_kv_heads, kept, kept)
    assert not torch.allclose(coef, torch.eye(kept).expand_as(coef), atol=0.05)


def test_sizes_divide_for_parallel_runs():
    for value in (TINY_PRO.text_heads, TINY_PRO.text_kv_heads, TINY_PRO.num_experts):
        assert value % 2 == 0
    assert TINY_PRO.vision_heads % 2 == 0
    assert TINY_PRO.experts_per_token % TINY_PRO.router_n_groups == 0


def test_token_ids_in_config_match_the_tokenizer(checkpoint: Path):
    config = json.loads((checkpoint / "config.json").read_text())
    tokenizer = Tokenizer.from_file(str(checkpoint / "tokenizer.json"))
    pairs = {
        "image_token_id": formats.IMAGE_PAD,
        "video_token_id": formats.VIDEO_PAD,
        "vision_start_token_id": formats.VISION_START,
        "ts_token_id": formats.TS_TOKEN,
        "ts_start_token_id": formats.TS_START,
        "ts_end_token_id": formats.TS_END,
    }
    for key, token in pairs.items():
        assert config[key] == tokenizer.token_to_id(token), key
    assert config["text_config"]["vocab_size"] >= tokenizer.get_vocab_size()


def test_build_is_deterministic(tmp_path: Path):
    first = build_tiny_interns1_pro(tmp_path / "a")
    second = build_tiny_interns1_pro(tmp_path / "b")
    for name in ("model-00001-of-00002.safetensors", "config.json", "tokenizer.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes()


def test_scripted_variant_walks_the_script(tmp_path: Path):
    path = build_tiny_interns1_pro(tmp_path / "scripted", script=PRO_TOOL_CALL_SCRIPT)
    tensors = _tensors(path)
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    assert tokenizer.token_to_id(formats.TS_TOKEN) is not None
    chain = script_token_ids(tokenizer, PRO_TOOL_CALL_SCRIPT)
    embed = tensors["model.language_model.embed_tokens.weight"]
    head = tensors["lm_head.weight"]
    for source, target in zip(chain, chain[1:], strict=False):
        assert int((head @ embed[source]).argmax()) == target
    zeroed = [n for n in tensors if n.endswith(("o_proj.weight", "down_proj.weight"))]
    assert zeroed and all(not tensors[n].any() for n in zeroed)
