"""The tiny Intern-S1 checkpoints: real layout, loadable by transformers' native InternVL classes,
and sensitive to the implementation mistakes an engine port can make.

Each "mutation" re-implements one detail the wrong way on a loaded model (norm type, per-head
qk-norm, a dropped bias, layer scale 1, a transposed pixel shuffle); the checkpoint is only a
good test fixture if every one of them moves the logits well past numerical noise.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
safetensors = pytest.importorskip("safetensors")
PIL_Image = pytest.importorskip("PIL.Image")
transformers = pytest.importorskip("transformers")

from safetensors.torch import load_file  # noqa: E402
from transformers.models.internvl.modeling_internvl import InternVLVisionRMSNorm  # noqa: E402

from interns1_plugin.configs import InternS1Config, register_with_transformers  # noqa: E402
from interns1_plugin.formats import (  # noqa: E402
    ACTION_END,
    ACTION_START,
    IM_END,
    IM_START,
    IMG_CONTEXT,
    PLUGIN,
    THINK_END,
    THINK_START,
    VIDEO_PLACEHOLDER,
)
from interns1_plugin.testing.tiny_interns1 import (  # noqa: E402
    VARIANTS,
    build_tiny_interns1,
    fp8_variant,
    write_byte_level_tokenizer,
)

#: Smallest relative change of the logits each mutation must cause: three times the numerical
#: noise between a bfloat16 and a float32 run of the same checkpoint (measured below, ~0.01-0.03).
MARGIN = 0.1


@pytest.fixture(scope="module", autouse=True)
def registered() -> None:
    register_with_transformers()


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def checkpoint(request, tmp_path_factory) -> tuple[str, Path]:
    name = request.param
    return name, build_tiny_interns1(tmp_path_factory.mktemp(name) / name, name)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def checkpoint_tensors(path: Path) -> dict[str, torch.Tensor]:
    index = read_json(path / "model.safetensors.index.json")
    tensors: dict[str, torch.Tensor] = {}
    for shard in sorted(set(index["weight_map"].values())):
        tensors |= load_file(str(path / shard))
    assert set(tensors) == set(index["weight_map"])
    return tensors


# --- files ----------------------------------------------------------------------------------


def test_files_are_those_of_a_published_checkpoint(checkpoint):
    _, path = checkpoint
    names = {p.name for p in path.iterdir()}
    assert {
        "config.json",
        "generation_config.json",
        "model.safetensors.index.json",
        "preprocessor_config.json",
        "processor_config.json",
        "video_preprocessor_config.json",
        "chat_template.jinja",
        "tokenizer.json",
        "tokenizer_config.json",
    } <= names
    shards = sorted(n for n in names if n.endswith(".safetensors"))
    assert shards == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    assert not any(n.endswith(".py") for n in names)


def test_config_uses_published_keys(checkpoint):
    name, path = checkpoint
    config = read_json(path / "config.json")
    variant = VARIANTS[name]
    text, vision = config["text_config"], config["vision_config"]

    assert config["model_type"] == "interns1"
    assert config["architectures"] == ["InternS1ForConditionalGeneration"]
    assert "auto_map" not in config
    assert "tie_word_embeddings" not in config and text["tie_word_embeddings"] is False
    assert {"rope_theta", "torch_dtype"} <= set(text) and "rope_parameters" not in text
    assert text["model_type"] == variant.text_model_type
    assert (text["head_dim"], vision["image_size"], vision["patch_size"]) == (
        32,
        [448, 448],
        [14, 14],
    )
    assert ("num_experts" in text) is variant.is_moe
    assert vision["model_type"] == "interns1_vision"
    assert vision["norm_type"] == variant.norm_type
    assert vision["use_qk_norm"] is variant.use_qk_norm
    assert vision["attention_bias"] is variant.attention_bias
    assert config["image_seq_length"] == 256 and config["downsample_ratio"] == 0.5


def test_image_token_id_is_the_tokenizers_img_context(checkpoint):
    _, path = checkpoint
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    config = transformers.AutoConfig.from_pretrained(path)
    assert config.image_token_id == tokenizer.convert_tokens_to_ids(IMG_CONTEXT)
    assert tokenizer.context_image_token_id == config.image_token_id
    assert config.text_config.vocab_size % 64 == 0 and config.text_config.vocab_size >= len(
        tokenizer
    )


def test_tokenizer_carries_the_special_tokens(checkpoint):
    _, path = checkpoint
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    for token in (
        IM_START,
        IM_END,
        ACTION_START,
        ACTION_END,
        PLUGIN,
        IMG_CONTEXT,
        VIDEO_PLACEHOLDER,
    ):
        ids = tokenizer(token, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1 and token in tokenizer.all_special_tokens, token
    for token in (THINK_START, THINK_END):  # not special in the real tokenizer: they survive decode
        assert len(tokenizer(token)["input_ids"]) == 1
        assert token not in tokenizer.all_special_tokens
    text = "Hello, Intern-S1! é"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


def test_generation_config_has_the_cards_sampling(checkpoint):
    name, path = checkpoint
    generation = read_json(path / "generation_config.json")
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    assert generation["eos_token_id"] == tokenizer.convert_tokens_to_ids(IM_END)
    assert (generation["top_p"], generation["top_k"], generation["min_p"]) == (1.0, 50, 0.0)
    assert generation["temperature"] == {"mini": 0.8, "s1": 0.7}[name]


def test_output_is_deterministic(checkpoint, tmp_path):
    name, path = checkpoint
    again = build_tiny_interns1(tmp_path / name, name)
    for file in sorted(path.iterdir()):
        assert file.read_bytes() == (again / file.name).read_bytes(), file.name


# --- tensors -------------------------------------------------------------------------------


def native_state_dict_names(config: InternS1Config) -> set[str]:
    with torch.device("meta"):
        model = transformers.InternVLForConditionalGeneration(config)
    return set(model.state_dict())


def test_tensor_names_are_the_published_layout(checkpoint):
    name, path = checkpoint
    tensors = checkpoint_tensors(path)
    prefixes = ("model.language_model.", "model.vision_tower.", "model.multi_modal_projector.")
    assert all(n.startswith(prefixes) or n == "lm_head.weight" for n in tensors)
    assert {n.split(".")[2] for n in tensors if "projector" in n} == {
        "layer_norm",
        "linear_1",
        "linear_2",
    }
    native = native_state_dict_names(transformers.AutoConfig.from_pretrained(path))
    if VARIANTS[name].is_moe:
        # Published MoE checkpoints store one tensor per expert; transformers fuses them on load.
        assert "model.language_model.layers.0.mlp.experts.3.down_proj.weight" in tensors
        assert "model.language_model.layers.0.mlp.gate.weight" in tensors
        tensors = {n for n in tensors if ".experts." not in n}
        native = {n for n in native if ".experts." not in n}
    assert set(tensors) == native


def test_vision_variant_tensors(checkpoint):
    name, path = checkpoint
    tensors = checkpoint_tensors(path)
    variant = VARIANTS[name]
    layer = "model.vision_tower.encoder.layer.0."
    assert (layer + "attention.q_proj.bias" in tensors) is variant.attention_bias
    assert (layer + "attention.q_norm.weight" in tensors) is variant.use_qk_norm
    assert (layer + "layernorm_before.bias" in tensors) is (variant.norm_type == "layer_norm")
    if variant.use_qk_norm:  # qk-norm spans the full hidden size, not one head
        assert tensors[layer + "attention.q_norm.weight"].shape == (variant.vision_hidden,)
    lambdas = tensors[layer + "lambda_1"].float()
    assert (lambdas - 1).abs().min() > 0.3  # layer scales far from 1
    assert (tensors[layer + "layernorm_before.weight"].float() - 1).abs().mean() > 0.1


def test_fp8_knob_writes_block_scales(tmp_path):
    path = build_tiny_interns1(tmp_path / "fp8", "s1", fp8=True)
    same_widths = fp8_variant(VARIANTS["s1"])
    plain = checkpoint_tensors(
        build_tiny_interns1(tmp_path / "plain", same_widths, dtype="float32")
    )
    tensors = checkpoint_tensors(path)
    config = read_json(path / "config.json")["quantization_config"]
    assert config["quant_method"] == "fp8" and config["weight_block_size"] == [128, 128]

    name = "model.language_model.layers.0.self_attn.q_proj.weight"
    assert tensors[name].dtype == torch.float8_e4m3fn
    scale = tensors[name + "_scale_inv"]
    assert scale.shape == (1, 1) and scale.dtype == torch.float32
    restored = tensors[name].float() * scale
    assert torch.allclose(restored, plain[name], atol=0.1 * plain[name].abs().max().item())
    for kept in ("lm_head.weight", "model.vision_tower.encoder.layer.0.attention.q_proj.weight"):
        assert tensors[kept].dtype == torch.bfloat16 and kept + "_scale_inv" not in tensors


def test_tokenizer_writer_is_replaceable(tmp_path):
    calls = []

    def writer(out: Path):
        calls.append(out)
        return write_byte_level_tokenizer(out)

    path = build_tiny_interns1(tmp_path / "custom", "mini", tokenizer_writer=writer)
    assert calls == [path]


# --- the model -------------------------------------------------------------------------------


def model_inputs(path: Path, dtype: torch.dtype) -> tuple[object, dict]:
    processor = transformers.AutoProcessor.from_pretrained(path)
    pixels = np.random.default_rng(1).integers(0, 256, (448, 896, 3), dtype=np.uint8)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Hi"}]}]
    prompt = processor.tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, chat_template=processor.chat_template
    )
    inputs = processor(text=prompt, images=PIL_Image.fromarray(pixels))
    inputs["pixel_values"] = inputs["pixel_values"].to(dtype)
    return processor, dict(inputs)


def load(path: Path, dtype: torch.dtype):
    model, info = transformers.AutoModelForImageTextToText.from_pretrained(
        path, dtype=dtype, output_loading_info=True
    )
    assert not any(info.values()), info
    return model.eval()


def logits(model, inputs: dict) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).logits.float()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_loads_in_native_internvl_and_gives_finite_logits(checkpoint, dtype):
    _, path = checkpoint
    model = load(path, dtype)
    processor, inputs = model_inputs(path, dtype)

    assert type(model) is transformers.InternVLForConditionalGeneration
    assert not torch.equal(model.lm_head.weight, model.model.language_model.embed_tokens.weight)
    out = logits(model, inputs)
    assert out.shape == (1, inputs["input_ids"].shape[1], model.config.text_config.vocab_size)
    assert torch.isfinite(out).all()
    assert (inputs["input_ids"] == processor.image_token_id).sum() == 3 * 256  # 2 tiles + thumbnail
    text_only = processor(text=f"{IM_START}user\nHi{IM_END}\n")
    assert torch.isfinite(logits(model, dict(text_only))).all()


def swap_norm_type(model) -> None:
    for layer in model.model.vision_tower.encoder.layer:
        for attribute in ("layernorm_before", "layernorm_after"):
            old = getattr(layer, attribute)
            if isinstance(old, torch.nn.LayerNorm):
                new = InternVLVisionRMSNorm(old.weight.shape[0], eps=old.eps)
            else:
                new = torch.nn.LayerNorm(old.weight.shape[0], eps=old.variance_epsilon)
                torch.nn.init.zeros_(new.bias)
            new.weight.data.copy_(old.weight.data)
            setattr(layer, attribute, new.to(old.weight.dtype))


class PerHeadRMSNorm(torch.nn.Module):
    """The mistake: normalise each head on its own instead of the full hidden size."""

    def __init__(self, norm, heads: int) -> None:
        super().__init__()
        self.norm, self.heads = norm, heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        y = x.float().reshape(*shape[:-1], self.heads, shape[-1] // self.heads)
        y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + self.norm.variance_epsilon)
        return self.norm.weight * y.reshape(shape).to(x.dtype)


def per_head_qk_norm(model) -> None:
    heads = model.config.vision_config.num_attention_heads
    for layer in model.model.vision_tower.encoder.layer:
        attention = layer.attention
        attention.q_norm = PerHeadRMSNorm(attention.q_norm, heads)
        attention.k_norm = PerHeadRMSNorm(attention.k_norm, heads)


def zero_a_bias(model) -> None:
    attention = model.model.vision_tower.encoder.layer[0].attention
    bias = (
        attention.q_proj.bias
        if attention.q_proj.bias is not None
        else attention.projection_layer.bias
    )
    bias.data.zero_()


def layer_scale_one(model) -> None:
    for layer in model.model.vision_tower.encoder.layer:
        layer.lambda_1.data.fill_(1.0)
        layer.lambda_2.data.fill_(1.0)


def transpose_pixel_shuffle(model) -> None:
    native = model.model.pixel_shuffle

    def transposed(features: torch.Tensor, scale_factor: float = 0.5) -> torch.Tensor:
        return native(features.transpose(1, 2).contiguous(), scale_factor)

    model.model.pixel_shuffle = transposed


MUTATIONS: dict[str, Callable] = {
    "norm_type": swap_norm_type,
    "qk_norm_per_head": per_head_qk_norm,
    "zero_bias": zero_a_bias,
    "layer_scale_one": layer_scale_one,
    "transposed_pixel_shuffle": transpose_pixel_shuffle,
}


def relative_change(out: torch.Tensor, base: torch.Tensor) -> float:
    return ((out - base).norm() / base.norm()).item()


def test_every_mutation_changes_the_logits(checkpoint):
    name, path = checkpoint
    mutations = dict(MUTATIONS)
    if not VARIANTS[name].use_qk_norm:
        del mutations["qk_norm_per_head"]

    bases, changes = {}, {}
    for dtype in (torch.float32, torch.bfloat16):
        model = load(path, dtype)
        _, inputs = model_inputs(path, dtype)
        base = bases[dtype] = logits(model, inputs)
        assert torch.equal(base, logits(model, inputs))  # deterministic: a change is the mutation
        for label, mutate in mutations.items():
            mutated = copy.deepcopy(model)
            mutate(mutated)
            out = logits(mutated, inputs)
            assert torch.isfinite(out).all(), label
            changes[f"{label}/{dtype}"] = relative_change(out, base)

    noise = relative_change(bases[torch.bfloat16], bases[torch.float32])
    assert noise < MARGIN / 3, noise
    assert min(changes.values()) > MARGIN, changes
