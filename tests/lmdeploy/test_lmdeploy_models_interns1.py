"""The plugin's Intern-S1 / mini model on LMDeploy's PyTorch engine, on CPU, against transformers.

LMDeploy's CUDA operators cannot run here, so LMDeploy's backend selector is pointed at
`lmdeploy_reference_backend` (its plain-torch `default` backend plus readable attention and
fused MoE); every layer, the module map, the weight loader and the step context are LMDeploy's
own. Inputs come from LMDeploy's API-server preprocessing through the plugin's vision model, as
a served request's do. The reference is transformers' native `InternVLForConditionalGeneration`
(the one the vLLM model is tested against) fed the same prompt ids and tiles: float32 on both
sides, so the logits agree to summation order.

Checked: every checkpoint tensor is consumed and every parameter filled (float32 and block-FP8),
unknown tensors are refused, prefill logits for text / images / video frames equal the
reference, chunked prefill and decode steps through the paged cache equal one long prefill, two
sequences batched in one step keep their own images, and malformed items are ValueErrors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("lmdeploy.pytorch.models.module_map", exc_type=ImportError)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from interns1_plugin.testing.chat_media import (  # noqa: E402
    content_parts,
    write_images,
    write_video,
)
from interns1_plugin.testing.lmdeploy_weight_load import load_recorded  # noqa: E402

pytestmark = pytest.mark.lmdeploy

#: float32 on both sides: only summation order differs (observed ~1.5e-5 on |logits| ~ 5).
LOGITS_ATOL = 1e-4
#: Decode steps and chunked prefill against one prefill, both through LMDeploy's path.
STEP_ATOL = 1e-4
VARIANTS = ("mini", "s1")


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from interns1_plugin.testing.tiny_interns1 import build_tiny_interns1

    root = tmp_path_factory.mktemp("lmdeploy-models-interns1")
    built = {v: build_tiny_interns1(root / v, v, dtype="float32") for v in VARIANTS}
    for variant in VARIANTS:
        built[f"{variant}-fp8"] = build_tiny_interns1(
            root / f"{variant}-fp8", variant, dtype="float32", fp8=True
        )
    return built


@pytest.fixture(scope="module")
def engines(engine_for: Any, checkpoints: dict[str, Path]):
    """`EngineSteps` per checkpoint name, built when first asked for."""
    return lambda name: engine_for(checkpoints[name])


@pytest.fixture(scope="module")
def references(checkpoints: dict[str, Path]):
    """transformers' InternVL per checkpoint (FP8 ones from their dequantized tensors)."""
    from interns1_plugin.configs import register_with_transformers

    register_with_transformers()
    built: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in built:
            from transformers import InternVLForConditionalGeneration

            path = checkpoints[name]
            if name.endswith("-fp8"):
                path = _dequantized_copy(path, path.parent / f"{name}-dequantized")
            model = InternVLForConditionalGeneration.from_pretrained(path, dtype=torch.float32)
            built[name] = model.eval()
        return built[name]

    return get


def _dequantized_copy(path: Path, out: Path) -> Path:
    """The FP8 checkpoint's tensors dequantized block by block, as a float32 checkpoint."""
    from safetensors.torch import load_file, save_file

    from interns1_plugin.testing.lmdeploy_reference_backend import dequantize_blocks

    tensors: dict[str, torch.Tensor] = {}
    for shard in sorted(path.glob("*.safetensors")):
        tensors.update(load_file(shard))
    plain = {
        name: dequantize_blocks(t, tensors[name + "_scale_inv"], torch.float32)
        if name + "_scale_inv" in tensors
        else t
        for name, t in tensors.items()
        if not name.endswith("_scale_inv")
    }
    out.mkdir(exist_ok=True)
    save_file(plain, str(out / "model.safetensors"))
    config = json.loads((path / "config.json").read_text())
    config.pop("quantization_config")
    (out / "config.json").write_text(json.dumps(config))
    return out


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 2x1-tile image, a 1x2-tile image, and a short video."""
    root = tmp_path_factory.mktemp("media")
    rng = np.random.default_rng(0)
    files = write_images(root, {"wide": (300, 600), "tall": (512, 256)}, rng)
    files["video"] = write_video(root / "video.mp4", rng)
    return files


@pytest.fixture(scope="module")
def front_ends(front_end_for: Any, checkpoints: dict[str, Path]):
    return lambda name: front_end_for(checkpoints[name])


# ----------------------------------------------------------------------------- requests

#: name -> content parts (media named by key), each a user message as a client sends it.
CASES: dict[str, list[tuple[str, str]]] = {
    "text": [("text", "Name three noble gases.")],
    "image": [("image", "wide"), ("text", "Describe it.")],
    "two_images": [("image", "wide"), ("image", "tall"), ("text", "Compare.")],
    "two_images_swapped": [("image", "tall"), ("image", "wide"), ("text", "Compare.")],
    "video": [("video", "video"), ("text", "What happens?")],
    "image_and_video": [("image", "tall"), ("video", "video"), ("text", "Same scene?")],
}


def _request(front_end: Any, case: str, media: dict[str, Path]) -> dict[str, Any]:
    """What the API server hands the engine; at most 3 frames per video keeps it quick."""
    return front_end.prompt_input(
        [{"role": "user", "content": content_parts(CASES[case], media)}],
        chat_template_kwargs={"enable_thinking": False},
        mm_processor_kwargs={"video": {"num_frames": 3}},
    )


def _logit_diff(name: str, request: dict[str, Any], engines: Any, references: Any) -> float:
    """Largest |logit| difference of LMDeploy's path from transformers' on one request."""
    tiles = [item["pixel_values"] for item in request.get("multimodal") or []]
    with torch.no_grad():
        out = references(name)(
            input_ids=torch.tensor([request["input_ids"]]),
            pixel_values=torch.cat(tiles) if tiles else None,
        )
    got = engines(name).prefill_request(request)
    return float((got - out.logits[0].float()).abs().max())


# ----------------------------------------------------------------------------- weights


@pytest.mark.parametrize("name", [*VARIANTS, *(f"{v}-fp8" for v in VARIANTS)])
def test_load_weights_consumes_every_tensor(
    name: str, reference_backend: None, checkpoints: dict[str, Path]
) -> None:
    """Every checkpoint tensor reaches `load_weights` and every parameter gets filled: all
    parameters start as NaN, and none may be left so. FP8 weights keep their FP8 dtype."""
    loaded = load_recorded(checkpoints[name])
    assert sorted(loaded.seen) == sorted(loaded.expected)
    assert loaded.unfilled == []
    fp8 = {n for n, p in loaded.model.named_parameters() if p.dtype == torch.float8_e4m3fn}
    if name.endswith("-fp8"):
        assert fp8 and all(n.startswith("language_model.model.layers.") for n in fp8)
        assert not any("vision_tower" in n or "multi_modal_projector" in n for n in fp8)
    else:
        assert fp8 == set()


@pytest.mark.parametrize(
    "weight",
    [
        "vision_tower.encoder.layer.0.attention.x_proj.weight",
        "vision_tower.encoder.layer.9.mlp.fc1.weight",
        "language_model.model.layers.0.self_attn.x_proj.weight",
        "unknown.weight",
    ],
)
def test_unknown_tensors_are_refused(weight: str, engines: Any) -> None:
    model = engines("mini").model
    with pytest.raises(ValueError, match="has no parameter"):
        model.load_weights([(weight, torch.zeros(1))])


# ----------------------------------------------------------------------------- logits


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_prefill_logits_match_transformers(
    variant: str, case: str, engines: Any, references: Any, front_ends: Any, media: Any
) -> None:
    request = _request(front_ends(variant), case, media)
    diff = _logit_diff(variant, request, engines, references)
    print(f"{variant}/{case}: {len(request['input_ids'])} tokens, max |logit diff| {diff:.2e}")
    assert diff < LOGITS_ATOL


@pytest.mark.parametrize("variant", VARIANTS)
def test_images_reach_the_logits(variant: str, engines: Any, front_ends: Any, media: Any) -> None:
    """Swapping two images changes the logits after them, so the comparison above has teeth."""
    front = front_ends(variant)
    first = engines(variant).prefill_request(_request(front, "two_images", media))
    swapped = engines(variant).prefill_request(_request(front, "two_images_swapped", media))
    assert first.shape == swapped.shape
    assert float((first[-1] - swapped[-1]).abs().max()) > 1e-2


@pytest.mark.parametrize("variant", VARIANTS)
def test_fp8_logits_match_the_dequantized_reference(
    variant: str, engines: Any, references: Any, front_ends: Any, media: Any
) -> None:
    """Block-FP8 weights and scales land where the dequantized checkpoint says (the reference
    backend dequantizes; CUDA kernels also quantize activations, which is not checked here)."""
    name = f"{variant}-fp8"
    request = _request(front_ends(name), "image", media)
    diff = _logit_diff(name, request, engines, references)
    print(f"{name}/image: max |logit diff| {diff:.2e}")
    assert diff < LOGITS_ATOL


# ----------------------------------------------------------------------------- the paged cache


@pytest.mark.parametrize("variant", VARIANTS)
def test_chunked_prefill_and_decode_match_one_prefill(
    variant: str, engines: Any, front_ends: Any, media: Any
) -> None:
    """The image arrives in the second chunk (its positions offset by the cached history); then
    three greedy decode steps read the paged cache. Each step's logits equal the last row of
    one prefill over the same tokens."""
    engine = engines(variant)
    request = _request(front_ends(variant), "image", media)
    start = request["multimodal"][0]["offset"]
    assert engine.chunk_drift(request, split=start - 5) < STEP_ATOL

    drift = engine.decode_drift(request, steps=3)
    assert len(drift) == 3
    assert max(drift) < STEP_ATOL, drift


@pytest.mark.parametrize("variant", VARIANTS)
def test_batched_sequences_keep_their_own_images(
    variant: str, engines: Any, front_ends: Any, media: Any
) -> None:
    """Two prompts with different images in one prefill step give each its own logits."""
    engine = engines(variant)
    front = front_ends(variant)
    requests = [_request(front, "image", media), _request(front, "image_and_video", media)]
    alone = [engine.prefill_request(r) for r in requests]
    together = engine.prefill_together(requests)
    for single, batched in zip(alone, together, strict=True):
        assert float((single - batched).abs().max()) < STEP_ATOL


# ----------------------------------------------------------------------------- bad inputs


def _item(engine: Any, ids: list[int], **changes: Any) -> dict[str, Any]:
    """A valid one-tile item over the first run of image tokens, with `changes` applied."""
    config = engine.model.config
    start = ids.index(config.image_token_id)
    item: dict[str, Any] = {
        "pixel_values": torch.zeros(1, 3, 448, 448),
        "offset": start,
        "image_tokens": 256,
        "image_token_id": config.image_token_id,
    }
    item.update(changes)
    return item


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"pixel_values": torch.zeros(1, 3, 224, 224)}, "tiles are"),
        ({"pixel_values": torch.zeros(3, 448, 448)}, "tiles, channels, height, width"),
        ({"pixel_values": None}, "tiles, channels, height, width"),
        ({"pixel_values": torch.zeros(2, 3, 448, 448)}, "need 512 feature tokens"),
        ({"image_tokens": 255}, "need 256 feature tokens"),
        ({"offset": 3}, "not all image tokens"),
        ({"offset": -1}, "not all image tokens"),
        ({"offset": "7"}, "integer offset"),
        ({"image_token_id": 5}, "image_token_id"),
    ],
)
def test_bad_items_are_value_errors(
    changes: dict[str, Any], match: str, engines: Any, front_ends: Any, media: Any
) -> None:
    engine = engines("mini")
    ids = _request(front_ends("mini"), "image", media)["input_ids"]
    with pytest.raises(ValueError, match=match):
        engine.new_sequence(ids, [_item(engine, ids, **changes)])


def test_overlapping_items_are_value_errors(engines: Any, front_ends: Any, media: Any) -> None:
    engine = engines("mini")
    ids = _request(front_ends("mini"), "image", media)["input_ids"]
    item = _item(engine, ids)
    with pytest.raises(ValueError, match="same prompt positions"):
        engine.new_sequence(ids, [item, dict(item)])


def test_input_processor_survives_pickling(engines: Any, front_ends: Any, media: Any) -> None:
    """LMDeploy's multiprocess executor ships the processor from a worker to the engine."""
    import pickle

    processor = pickle.loads(pickle.dumps(engines("mini").model.get_input_processor()))
    request = _request(front_ends("mini"), "image", media)
    result = processor.preprocess_input(request["input_ids"], request["multimodal"])
    (image,) = result.input_multimodals["image"]
    assert (image.start, image.end - image.start) == (
        request["multimodal"][0]["offset"],
        request["multimodal"][0]["image_tokens"],
    )
