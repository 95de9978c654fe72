"""The `interns1` / `interns1_vision` configs read the published config.json files faithfully.

The fixtures below reproduce the shape of Intern-S1-mini's and Intern-S1's `config.json` (every
top-level, text and vision key, legacy text keys included) with the sizes of the model cards.
Loading goes through `AutoConfig` with remote code off, from directories that also hold the hub's
`auto_map` and Python files rigged to leave a marker if anything executes them.
"""

from __future__ import annotations

import copy
import json
import runpy
from pathlib import Path
from typing import Any

import pytest

transformers = pytest.importorskip("transformers")

from interns1_plugin.configs import (  # noqa: E402
    InternS1Config,
    InternS1VisionConfig,
    register_with_transformers,
)
from interns1_plugin.configs.interns1 import DEFAULT_IMAGE_TOKEN_ID  # noqa: E402

#: The image token id training used; the published files carry it, not the class default.
PUBLISHED_IMAGE_TOKEN_ID = 152957

HUB_AUTO_MAP = {
    "AutoConfig": "configuration_interns1.InternS1Config",
    "AutoModel": "modeling_interns1.InternS1Model",
    "AutoModelForCausalLM": "modeling_interns1.InternS1ForConditionalGeneration",
}


def _vision(**overrides: Any) -> dict[str, Any]:
    base = {
        "architectures": ["InternVisionModel"],
        "attention_bias": True,
        "attention_dropout": 0.0,
        "drop_path_rate": 0.1,
        "dropout": 0.0,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "hidden_size": 1024,
        "image_size": [448, 448],
        "initializer_factor": 0.1,
        "initializer_range": 1e-10,
        "intermediate_size": 4096,
        "layer_norm_eps": 1e-06,
        "layer_scale_init_value": 0.1,
        "model_type": "interns1_vision",
        "norm_type": "layer_norm",
        "num_attention_heads": 16,
        "num_channels": 3,
        "num_hidden_layers": 24,
        "patch_size": [14, 14],
        "projection_dropout": 0.0,
        "torch_dtype": "bfloat16",
        "use_absolute_position_embeddings": True,
        "use_mask_token": False,
        "use_mean_pooling": True,
        "use_qk_norm": False,
    }
    return base | overrides


def _top(text_config: dict[str, Any], vision_config: dict[str, Any]) -> dict[str, Any]:
    return {
        "architectures": ["InternS1ForConditionalGeneration"],
        "auto_map": dict(HUB_AUTO_MAP),
        "downsample_ratio": 0.5,
        "image_seq_length": 256,
        "image_token_id": PUBLISHED_IMAGE_TOKEN_ID,
        "model_type": "interns1",
        "projector_hidden_act": "gelu",
        "text_config": text_config,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.55.2",
        "vision_config": vision_config,
        "vision_feature_layer": -1,
        "vision_feature_select_strategy": "default",
    }


_QWEN3_COMMON = {
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "head_dim": 128,
    "hidden_act": "silu",
    "hidden_size": 4096,
    "initializer_range": 0.02,
    "max_position_embeddings": 40960,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 1000000,
    "sliding_window": None,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "use_sliding_window": False,
    "vocab_size": 153216,
}

INTERN_S1_MINI_CONFIG = _top(
    _QWEN3_COMMON
    | {
        "architectures": ["Qwen3ForCausalLM"],
        "intermediate_size": 12288,
        "max_window_layers": 36,
        "model_type": "qwen3",
        "num_attention_heads": 32,
        "num_hidden_layers": 36,
        "num_key_value_heads": 8,
    },
    _vision(),
)

INTERN_S1_CONFIG = _top(
    _QWEN3_COMMON
    | {
        "architectures": ["Qwen3MoeForCausalLM"],
        "decoder_sparse_step": 1,
        "intermediate_size": 12288,
        "max_window_layers": 94,
        "mlp_only_layers": [],
        "model_type": "qwen3_moe",
        "moe_intermediate_size": 1536,
        "norm_topk_prob": True,
        "num_attention_heads": 64,
        "num_experts": 128,
        "num_experts_per_tok": 8,
        "num_hidden_layers": 94,
        "num_key_value_heads": 4,
        "output_router_logits": False,
        "router_aux_loss_coef": 0.001,
    },
    _vision(
        attention_bias=False,
        hidden_size=3200,
        intermediate_size=12800,
        norm_type="rms_norm",
        num_attention_heads=25,
        num_hidden_layers=45,
        use_qk_norm=True,
    ),
)

FIXTURES = {"mini": INTERN_S1_MINI_CONFIG, "s1": INTERN_S1_CONFIG}

MARKER = "remote_code_ran"
_HUB_FILES = ("configuration_interns1.py", "modeling_interns1.py", "processing_interns1.py")


def write_checkpoint_dir(path: Path, config: dict[str, Any]) -> Path:
    """A directory with `config.json` and hub-named Python files that betray any execution."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    plant_remote_code(path)
    return path


def plant_remote_code(path: Path) -> None:
    for name in _HUB_FILES:
        body = (
            "from pathlib import Path\n"
            f"(Path(__file__).parent / {MARKER!r}).write_text({name!r})\n"
            "raise RuntimeError('remote code must not run')\n"
        )
        (path / name).write_text(body, encoding="utf-8")


@pytest.fixture(scope="module", autouse=True)
def registered() -> None:
    register_with_transformers()


@pytest.fixture(params=sorted(FIXTURES))
def published(request, tmp_path) -> tuple[str, Path]:
    name = request.param
    return name, write_checkpoint_dir(tmp_path / name, copy.deepcopy(FIXTURES[name]))


@pytest.mark.parametrize("trust_remote_code", [False, None])
def test_autoconfig_reads_published_config_without_remote_code(published, trust_remote_code):
    name, path = published
    kwargs = {} if trust_remote_code is None else {"trust_remote_code": trust_remote_code}
    config = transformers.AutoConfig.from_pretrained(path, **kwargs)

    assert type(config) is InternS1Config
    assert type(config.vision_config) is InternS1VisionConfig
    assert not (path / MARKER).exists()
    assert not hasattr(config, "auto_map")
    assert config.image_token_id == PUBLISHED_IMAGE_TOKEN_ID != DEFAULT_IMAGE_TOKEN_ID
    assert config.image_seq_length == 256
    assert config.downsample_ratio == 0.5
    assert config.projector_hidden_act == "gelu"
    assert config.vision_feature_layer == -1
    assert config.vision_feature_select_strategy == "default"
    assert config.architectures == ["InternS1ForConditionalGeneration"]


def test_planted_hub_code_is_live(published):
    """Control: executing a planted file leaves the marker, so a missing marker means no run."""
    _, path = published
    with pytest.raises(RuntimeError, match="remote code must not run"):
        runpy.run_path(str(path / _HUB_FILES[0]))
    assert (path / MARKER).exists()


def test_registered_config_wins_even_when_remote_code_is_trusted(published):
    """transformers prefers an explicitly registered local class over the `auto_map`."""
    _, path = published
    config = transformers.AutoConfig.from_pretrained(path, trust_remote_code=True)
    assert type(config) is InternS1Config
    assert not (path / MARKER).exists()


def test_mini_text_config_is_qwen3_with_legacy_keys_read(tmp_path):
    path = write_checkpoint_dir(tmp_path / "mini", copy.deepcopy(INTERN_S1_MINI_CONFIG))
    text = transformers.AutoConfig.from_pretrained(path).text_config

    assert type(text) is transformers.Qwen3Config
    assert (text.num_hidden_layers, text.hidden_size, text.intermediate_size) == (36, 4096, 12288)
    assert (text.num_attention_heads, text.num_key_value_heads) == (32, 8)
    assert text.rope_parameters["rope_theta"] == 1000000
    assert text.max_position_embeddings == 40960
    assert text.vocab_size == 153216
    assert str(text.dtype) == "torch.bfloat16"
    assert text.tie_word_embeddings is False


def test_s1_text_config_is_qwen3_moe_with_legacy_keys_read(tmp_path):
    path = write_checkpoint_dir(tmp_path / "s1", copy.deepcopy(INTERN_S1_CONFIG))
    text = transformers.AutoConfig.from_pretrained(path).text_config

    assert type(text) is transformers.Qwen3MoeConfig
    assert (text.num_hidden_layers, text.hidden_size, text.head_dim) == (94, 4096, 128)
    assert (text.num_attention_heads, text.num_key_value_heads) == (64, 4)
    assert text.num_experts == 128
    assert text.num_experts_per_tok == 8
    assert text.moe_intermediate_size == 1536
    assert text.rope_parameters["rope_theta"] == 1000000


@pytest.mark.parametrize(
    ("name", "norm_type", "qk_norm", "bias", "hidden", "layers", "heads", "inner"),
    [
        ("mini", "layer_norm", False, True, 1024, 24, 16, 4096),
        ("s1", "rms_norm", True, False, 3200, 45, 25, 12800),
    ],
)
def test_vision_config_keeps_every_published_key(
    tmp_path, name, norm_type, qk_norm, bias, hidden, layers, heads, inner
):
    path = write_checkpoint_dir(tmp_path / name, copy.deepcopy(FIXTURES[name]))
    vision = transformers.AutoConfig.from_pretrained(path).vision_config

    assert vision.norm_type == norm_type
    assert vision.use_qk_norm is qk_norm
    assert vision.attention_bias is bias
    assert (vision.hidden_size, vision.num_hidden_layers) == (hidden, layers)
    assert (vision.num_attention_heads, vision.intermediate_size) == (heads, inner)
    assert list(vision.image_size) == [448, 448] and list(vision.patch_size) == [14, 14]
    assert vision.layer_scale_init_value == 0.1
    assert vision.layer_norm_eps == 1e-06
    assert vision.use_mean_pooling is True
    assert vision.hidden_act == "gelu"
    assert (vision.drop_path_rate, vision.dropout, vision.initializer_factor) == (0.1, 0.0, 0.1)
    assert vision.hidden_dropout_prob == vision.attention_dropout == vision.projection_dropout == 0


def test_tie_word_embeddings_follows_the_text_config():
    untied = InternS1Config(text_config={"model_type": "qwen3", "tie_word_embeddings": False})
    tied = InternS1Config(text_config={"model_type": "qwen3", "tie_word_embeddings": True})
    explicit = InternS1Config(
        text_config={"model_type": "qwen3", "tie_word_embeddings": True}, tie_word_embeddings=False
    )
    assert untied.tie_word_embeddings is False
    assert tied.tie_word_embeddings is True
    assert explicit.tie_word_embeddings is False


def test_defaults_and_untyped_text_config():
    config = InternS1Config()
    assert config.image_token_id == DEFAULT_IMAGE_TOKEN_ID == 151667
    assert config.text_config.model_type == "qwen3"
    assert config.vision_config.model_type == "interns1_vision"
    assert isinstance(config, transformers.InternVLConfig)
    assert isinstance(config.vision_config, transformers.InternVLVisionConfig)


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_save_and_reload_round_trips(tmp_path, name):
    source = write_checkpoint_dir(tmp_path / "source", copy.deepcopy(FIXTURES[name]))
    config = transformers.AutoConfig.from_pretrained(source)
    config.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())
    again = transformers.AutoConfig.from_pretrained(tmp_path / "saved")

    assert saved["model_type"] == "interns1"
    assert saved["vision_config"]["model_type"] == "interns1_vision"
    assert "auto_map" not in saved
    assert type(again) is InternS1Config
    assert _without_path(again.to_dict()) == _without_path(config.to_dict())


def _without_path(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key != "_name_or_path"}


def test_registration_is_idempotent():
    register_with_transformers()
    register_with_transformers()
    assert type(transformers.AutoConfig.for_model("interns1")) is InternS1Config
    assert type(transformers.AutoConfig.for_model("interns1_vision")) is InternS1VisionConfig


@pytest.mark.parametrize("trust_remote_code", [False, True])
def test_auto_classes_load_tiny_checkpoint_without_remote_code(tmp_path, trust_remote_code):
    pytest.importorskip("safetensors")
    from interns1_plugin.processing.processor import InternS1Processor
    from interns1_plugin.testing.tiny_interns1 import build_tiny_interns1

    path = build_tiny_interns1(tmp_path / "tiny", "mini", with_auto_map=True)
    plant_remote_code(path)
    trust = {"trust_remote_code": trust_remote_code}
    config = transformers.AutoConfig.from_pretrained(path, **trust)
    model = transformers.AutoModelForImageTextToText.from_pretrained(path, **trust)
    processor = transformers.AutoProcessor.from_pretrained(path, **trust)

    assert type(config) is InternS1Config
    assert type(model) is transformers.InternVLForConditionalGeneration
    assert type(processor) is InternS1Processor
    assert not (path / MARKER).exists()


def test_auto_model_maps_to_native_internvl_classes():
    config = InternS1Config(
        text_config={"model_type": "qwen3", "hidden_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 32,
                     "intermediate_size": 64, "vocab_size": 128},
        vision_config={"hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "intermediate_size": 64},
    )  # fmt: skip
    model = transformers.AutoModel.from_config(config)
    vision = transformers.AutoModel.from_config(config.vision_config)
    assert type(model) is transformers.InternVLModel
    assert type(vision) is transformers.InternVLVisionModel
