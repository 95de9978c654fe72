"""The published shapes of the Intern-S1 family as `config.json`-like dicts, for `plan --preset`.

Why: sizing a deployment should not need the checkpoint downloaded first. Only the keys the
planner reads are kept, with the sizes of the model cards. Intern-S1-Pro's real config also
carries a `ts_config` (its time-series encoder); its sizes are not published in the model card,
so the Pro presets leave it out and the plan says so.
"""

from __future__ import annotations

import copy
from typing import Any

#: FP8 checkpoints: block-wise e4m3 weights with one float32 scale per 128x128 block.
FP8_QUANTIZATION: dict[str, Any] = {
    "activation_scheme": "dynamic",
    "fmt": "e4m3",
    "quant_method": "fp8",
    "weight_block_size": [128, 128],
}

_QWEN3_TEXT: dict[str, Any] = {
    "attention_bias": False,
    "head_dim": 128,
    "hidden_act": "silu",
    "hidden_size": 4096,
    "max_position_embeddings": 40960,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "vocab_size": 153216,
}

_INTERNVIT_300M: dict[str, Any] = {
    "attention_bias": True,
    "hidden_size": 1024,
    "image_size": [448, 448],
    "intermediate_size": 4096,
    "layer_scale_init_value": 0.1,
    "model_type": "interns1_vision",
    "norm_type": "layer_norm",
    "num_attention_heads": 16,
    "num_channels": 3,
    "num_hidden_layers": 24,
    "patch_size": [14, 14],
    "use_absolute_position_embeddings": True,
    "use_mean_pooling": True,
    "use_qk_norm": False,
}

_INTERNVIT_6B: dict[str, Any] = _INTERNVIT_300M | {
    "attention_bias": False,
    "hidden_size": 3200,
    "intermediate_size": 12800,
    "norm_type": "rms_norm",
    "num_attention_heads": 25,
    "num_hidden_layers": 45,
    "use_qk_norm": True,
}


def _interns1(text: dict[str, Any], vision: dict[str, Any]) -> dict[str, Any]:
    return {
        "architectures": ["InternS1ForConditionalGeneration"],
        "downsample_ratio": 0.5,
        "image_seq_length": 256,
        "image_token_id": 152957,
        "model_type": "interns1",
        "projector_hidden_act": "gelu",
        "text_config": text,
        "torch_dtype": "bfloat16",
        "vision_config": vision,
    }


INTERN_S1_MINI = _interns1(
    _QWEN3_TEXT
    | {
        "architectures": ["Qwen3ForCausalLM"],
        "intermediate_size": 12288,
        "model_type": "qwen3",
        "num_attention_heads": 32,
        "num_hidden_layers": 36,
        "num_key_value_heads": 8,
    },
    _INTERNVIT_300M,
)

INTERN_S1 = _interns1(
    _QWEN3_TEXT
    | {
        "architectures": ["Qwen3MoeForCausalLM"],
        "decoder_sparse_step": 1,
        "intermediate_size": 12288,
        "mlp_only_layers": [],
        "model_type": "qwen3_moe",
        "moe_intermediate_size": 1536,
        "norm_topk_prob": True,
        "num_attention_heads": 64,
        "num_experts": 128,
        "num_experts_per_tok": 8,
        "num_hidden_layers": 94,
        "num_key_value_heads": 4,
    },
    _INTERNVIT_6B,
)

INTERN_S1_PRO: dict[str, Any] = {
    "architectures": ["InternS1ProForConditionalGeneration"],
    "image_token_id": 151655,
    "model_type": "interns1_pro",
    "text_config": {
        "attention_bias": False,
        "decoder_sparse_step": 1,
        "head_dim": 128,
        "hidden_act": "silu",
        "hidden_size": 4096,
        "max_position_embeddings": 262144,
        "mlp_only_layers": [],
        "moe_intermediate_size": 1536,
        "norm_topk_prob": True,
        "num_attention_heads": 64,
        "num_experts": 512,
        "num_experts_per_tok": 8,
        "num_hidden_layers": 94,
        "num_key_value_heads": 4,
        "rms_norm_eps": 1e-06,
        "rope_scaling": {
            "fope_init_factor": 0.5,
            "fope_sep_head": True,
            "num_inv_freq": None,
            "rope_type": "default",
        },
        "rope_theta": 5000000,
        "router_n_groups": 8,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "vocab_size": 155008,
    },
    "torch_dtype": "bfloat16",
    "video_token_id": 151656,
    "vision_config": {
        "depth": 24,
        "hidden_act": "gelu_pytorch_tanh",
        "hidden_size": 1024,
        "in_channels": 3,
        "intermediate_size": 4096,
        "num_heads": 16,
        "num_position_embeddings": 2304,
        "out_hidden_size": 4096,
        "patch_size": 16,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
    },
}


def _fp8(config: dict[str, Any]) -> dict[str, Any]:
    return config | {"quantization_config": dict(FP8_QUANTIZATION)}


PRESETS: dict[str, dict[str, Any]] = {
    "intern-s1": INTERN_S1,
    "intern-s1-fp8": _fp8(INTERN_S1),
    "intern-s1-mini": INTERN_S1_MINI,
    "intern-s1-pro": INTERN_S1_PRO,
    "intern-s1-pro-fp8": _fp8(INTERN_S1_PRO),
}


def preset(name: str) -> dict[str, Any]:
    """A fresh copy, so callers may edit it without changing the table."""
    return copy.deepcopy(PRESETS[name])


__all__ = ["FP8_QUANTIZATION", "PRESETS", "preset"]
