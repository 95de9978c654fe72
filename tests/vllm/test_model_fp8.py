"""Block-FP8 Intern-S1 checkpoints reach vLLM's FP8 path for the language model only.

The FP8 repositories ship a `quantization_config` (128x128 blocks, e4m3, dynamic activations)
and `<name>.weight_scale_inv` tensors. What must hold, checked here without a GPU:

- vLLM's own config path reads it as `fp8` with 128x128 blocks;
- the plugin's model, built by vLLM's `initialize_model`, gives every language-model linear
  layer (and the MoE experts) vLLM's FP8 method, while the ViT, the projector and the
  ignore-listed `lm_head` and `mlp.gate` stay unquantized;
- vLLM's default loader puts every checkpoint tensor, FP8 weights and their block scales
  included, into the right parameter (strict tracking on).

CPU has no block-FP8 GEMM, so the one call that picks a kernel is stubbed and nothing runs a
forward pass; `tests/gpu/test_interns1_fp8.py` generates with the real kernels.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest

pytest.importorskip("vllm")

import torch  # noqa: E402

if TYPE_CHECKING:
    from vllm.config import VllmConfig

pytestmark = pytest.mark.vllm

LM = "language_model.model.layers"
CKPT_LM = "model.language_model.layers"


@dataclass
class _StubKernel:
    """Stands in for the block-FP8 GEMM vLLM cannot find on CPU; never asked to compute."""

    kwargs: dict[str, Any]

    def process_weights_after_loading(self, layer: torch.nn.Module) -> None:
        raise AssertionError("the test must not post-process FP8 weights")

    def apply_weights(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        raise AssertionError("the test must not run FP8 kernels")


@pytest.fixture(scope="module")
def distributed() -> Iterator[None]:
    """A one-rank gloo group: vLLM's parallel layers ask it for their shard sizes."""
    from interns1_plugin.testing.vllm_context import single_rank_vllm

    with single_rank_vllm():
        yield


@pytest.fixture(scope="module", params=["mini", "s1"])
def fp8_checkpoint(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    from interns1_plugin.testing.tiny_interns1 import build_tiny_interns1

    root = tmp_path_factory.mktemp(f"interns1-{request.param}-fp8")
    return build_tiny_interns1(root / "model", request.param, fp8=True)


def _vllm_config(path: Path) -> VllmConfig:
    """The config a `vllm serve <path>` process builds, through vLLM's engine arguments."""
    from vllm.config import VllmConfig
    from vllm.engine.arg_utils import EngineArgs
    from vllm.plugins import load_general_plugins

    load_general_plugins()
    model_config = EngineArgs(model=str(path), max_model_len=2048).create_model_config()
    return VllmConfig(model_config=model_config)


def _checkpoint(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    tensors: dict[str, torch.Tensor] = {}
    for shard in sorted(path.glob("*.safetensors")):
        with safe_open(str(shard), framework="pt") as handle:
            tensors |= {name: handle.get_tensor(name) for name in handle.keys()}
    return tensors


@dataclass
class Loaded:
    """The plugin's model with the FP8 checkpoint's weights in it, and what it came from."""

    model: torch.nn.Module
    vllm_config: VllmConfig
    tensors: dict[str, torch.Tensor]
    moe: bool


@pytest.fixture(scope="module")
def loaded(fp8_checkpoint: Path, distributed: None) -> Loaded:
    """`initialize_model` + `DefaultModelLoader.load_weights`, as a worker does, minus kernels."""
    import vllm.model_executor.layers.quantization.fp8 as fp8
    from vllm.config import set_current_vllm_config
    from vllm.model_executor.model_loader import get_model_loader
    from vllm.model_executor.model_loader.utils import initialize_model
    from vllm.utils.torch_utils import set_default_torch_dtype

    vllm_config = _vllm_config(fp8_checkpoint)
    model_config = vllm_config.model_config
    loader = get_model_loader(vllm_config.load_config)
    # Every parameter but the KV-cache scales must come from the checkpoint.
    loader.enable_weights_track = True
    with (
        mock.patch.object(fp8, "init_fp8_linear_kernel", lambda **kw: _StubKernel(kw)),
        set_current_vllm_config(vllm_config),
        set_default_torch_dtype(model_config.dtype),
        torch.device("cpu"),
    ):
        model = initialize_model(vllm_config)
        loader.load_weights(model, model_config)
    moe = model_config.hf_config.text_config.model_type == "qwen3_moe"
    return Loaded(model, vllm_config, _checkpoint(fp8_checkpoint), moe)


def test_vllm_reads_block_fp8_config(fp8_checkpoint: Path) -> None:
    from vllm.model_executor.layers.quantization.fp8 import Fp8Config

    vllm_config = _vllm_config(fp8_checkpoint)
    assert vllm_config.model_config.quantization == "fp8"
    quant = vllm_config.quant_config
    assert isinstance(quant, Fp8Config)
    assert quant.weight_block_size == [128, 128]
    assert quant.activation_scheme == "dynamic"
    assert quant.is_checkpoint_fp8_serialized
    assert "lm_head" in quant.ignored_layers


def test_only_language_model_linears_get_fp8(loaded: Loaded) -> None:
    from vllm.model_executor.layers.fused_moe import RoutedExperts
    from vllm.model_executor.layers.linear import LinearBase, UnquantizedLinearMethod
    from vllm.model_executor.layers.quantization.fp8 import Fp8LinearMethod, Fp8MoEMethod
    from vllm.model_executor.layers.vocab_parallel_embedding import UnquantizedEmbeddingMethod

    from interns1_plugin.vllm.models.interns1 import InternS1ForConditionalGeneration

    model = loaded.model
    assert isinstance(model, InternS1ForConditionalGeneration)
    methods: dict[str, type] = {}
    for name, module in model.named_modules():
        if isinstance(module, LinearBase | RoutedExperts):
            methods[name] = type(module.quant_method)
    fp8_layers = [n for n, m in methods.items() if m in (Fp8LinearMethod, Fp8MoEMethod)]
    for name, method in methods.items():
        ignored = name.endswith(".mlp.gate")
        if name.startswith(LM) and not ignored:
            expected = Fp8MoEMethod if name.endswith(".routed_experts") else Fp8LinearMethod
        else:
            expected = UnquantizedLinearMethod
        assert method is expected, f"{name}: {method.__name__}, expected {expected.__name__}"
    towers = [n for n in methods if n.startswith(("vision_tower.", "multi_modal_projector."))]
    assert towers and fp8_layers
    assert any(n.endswith("self_attn.qkv_proj") for n in fp8_layers)
    if loaded.moe:
        assert any(n.endswith("mlp.gate") for n in methods)
        assert any(n.endswith("routed_experts") for n in fp8_layers)
    else:
        assert any(n.endswith("mlp.gate_up_proj") for n in fp8_layers)
    lm_head = model.language_model.lm_head
    assert isinstance(lm_head.quant_method, UnquantizedEmbeddingMethod)
    assert lm_head.weight.dtype == torch.bfloat16


def _num_experts(tensors: dict[str, torch.Tensor]) -> int:
    """Number of experts in layer 0 of a checkpoint, from its tensor names."""
    prefix = f"{CKPT_LM}.0.mlp.experts."
    return len({name[len(prefix) :].split(".")[0] for name in tensors if name.startswith(prefix)})


def _bytes(tensor: torch.Tensor) -> torch.Tensor:
    """FP8 tensors compared bit for bit (float8 has no `equal` on every build)."""
    return tensor.contiguous().view(torch.uint8)


def test_loader_places_fp8_weights_and_block_scales(loaded: Loaded) -> None:
    params = dict(loaded.model.named_parameters())
    ckpt = loaded.tensors
    attn = f"{CKPT_LM}.0.self_attn."
    qkv = [ckpt[f"{attn}{p}_proj.weight"] for p in "qkv"]
    qkv_scales = [ckpt[f"{attn}{p}_proj.weight_scale_inv"] for p in "qkv"]
    fused = f"{LM}.0.self_attn.qkv_proj."
    assert params[fused + "weight"].dtype == torch.float8_e4m3fn
    assert torch.equal(_bytes(params[fused + "weight"]), _bytes(torch.cat(qkv)))
    assert torch.equal(params[fused + "weight_scale_inv"], torch.cat(qkv_scales))

    if loaded.moe:
        experts = f"{LM}.0.mlp.experts.routed_experts."
        for expert in range(_num_experts(ckpt)):
            src = f"{CKPT_LM}.0.mlp.experts.{expert}."
            gate_up = torch.cat([ckpt[src + f"{p}_proj.weight_scale_inv"] for p in ("gate", "up")])
            assert torch.equal(params[experts + "w13_weight_scale_inv"][expert], gate_up)
            down = ckpt[src + "down_proj.weight_scale_inv"]
            assert torch.equal(params[experts + "w2_weight_scale_inv"][expert], down)
            assert torch.equal(
                _bytes(params[experts + "w2_weight"][expert]),
                _bytes(ckpt[src + "down_proj.weight"]),
            )
        router = params[f"{LM}.0.mlp.gate.weight"]
        assert router.dtype == torch.bfloat16
        assert torch.equal(router, ckpt[f"{CKPT_LM}.0.mlp.gate.weight"])
    else:
        src = f"{CKPT_LM}.0.mlp."
        gate_up = torch.cat([ckpt[src + f"{p}_proj.weight_scale_inv"] for p in ("gate", "up")])
        assert torch.equal(params[f"{LM}.0.mlp.gate_up_proj.weight_scale_inv"], gate_up)

    assert torch.equal(params["language_model.lm_head.weight"], ckpt["lm_head.weight"])
    vit_q = params["vision_tower.encoder.layer.0.attention.qkv_proj.weight"]
    assert vit_q.dtype == torch.bfloat16
    src = "model.vision_tower.encoder.layer.0.attention."
    assert torch.equal(vit_q, torch.cat([ckpt[f"{src}{p}_proj.weight"] for p in "qkv"]))
    projector = params["multi_modal_projector.linear_1.weight"]
    assert torch.equal(projector, ckpt["model.multi_modal_projector.linear_1.weight"])
