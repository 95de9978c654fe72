"""The plugin's Intern-S1-Pro model on LMDeploy's PyTorch engine, on CPU, against the vLLM path.

LMDeploy's operators come from `lmdeploy_reference_backend` (plain torch); the module map, the
layers (FoPE rotary, grouped routing, fused MoE), the weight loader and the step context are
LMDeploy's own. Requests go through LMDeploy's API-server preprocessing with the plugin's vision
model. The reference is the plugin's vLLM model on the same checkpoint, run by `vllm.LLM` in a
child process (this file as a script) on the same rendered prompts and media: its prompt
logprobs (top 5 and the prompt token, at every position) must equal LMDeploy's, float32 on both
sides, and the prompt ids must be identical.

Also: every checkpoint tensor consumed, chunked prefill and decode through the paged cache equal
one prefill, batched sequences keep their own items, malformed items are ValueErrors.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
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

HERE = Path(__file__).resolve().parent
#: float32 on both engines: only summation order differs.
LOGPROB_ATOL = 1e-4
STEP_ATOL = 1e-4
TOP_LOGPROBS = 5
CHILD_TIMEOUT_S = 900

#: name -> user content parts as (kind, media key or text); series parts may carry a rate.
CASES: dict[str, list[tuple[str, Any]]] = {
    "text": [("text", "Name three noble gases.")],
    "image": [("image", "small"), ("text", "Look.")],
    "two_images": [("image", "wide"), ("image", "tall"), ("text", "Both.")],
    "video": [("video", "video"), ("text", "Motion?")],
    "series_mono": [("time_series", ("mono", None)), ("text", "Signal?")],
    "series_3ch_rate": [("time_series", ("three", 50.0)), ("text", "Sensors?")],
    "image_and_series": [
        ("image", "small"),
        ("time_series", ("mono", None)),
        ("text", "Both?"),
    ],
}


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from interns1_plugin.testing.tiny_interns1_pro import build_tiny_interns1_pro

    return build_tiny_interns1_pro(tmp_path_factory.mktemp("lmdeploy-models-pro") / "model")


@pytest.fixture(scope="module")
def engine(engine_for: Any, checkpoint: Path) -> Any:
    return engine_for(checkpoint)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media")
    rng = np.random.default_rng(0)
    shapes = {"small": (100, 150), "wide": (96, 160), "tall": (128, 64)}
    files = write_images(root, shapes, rng)
    # 2 s at 10 fps: Pro samples 4 frames at 2 fps.
    files["video"] = write_video(root / "video.mp4", rng)
    t = np.arange(6000, dtype=np.float64)
    files["mono"] = root / "mono.npy"
    np.save(files["mono"], np.sin(t / 37.0) + 0.1 * rng.standard_normal(6000))
    files["three"] = root / "three.npy"
    np.save(files["three"], np.stack([np.sin(t[:3000] / k) for k in (5, 11, 23)], axis=1))
    return files


@pytest.fixture(scope="module")
def front_end(front_end_for: Any, checkpoint: Path) -> Any:
    return front_end_for(checkpoint)


@pytest.fixture(scope="module")
def requests(front_end: Any, media: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """What the API server hands the engine for each case."""
    return {
        name: front_end.prompt_input(
            [{"role": "user", "content": content_parts(parts, media)}],
            chat_template_kwargs={"enable_thinking": False},
        )
        for name, parts in CASES.items()
    }


def test_mixed_request_is_refused_only_for_the_builtin_engine_model(
    front_end: Any, media: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """LMDeploy's own Pro model takes one kind per request; with it kept, the mix is a 400."""
    from interns1_plugin.lmdeploy.models import KEEP_BUILTIN_ENV

    messages = [{"role": "user", "content": content_parts(CASES["image_and_series"], media)}]
    monkeypatch.setenv(KEEP_BUILTIN_ENV, "1")
    with pytest.raises(ValueError, match="built-in Intern-S1-Pro engine model"):
        front_end.prompt_input(messages, chat_template_kwargs={"enable_thinking": False})


def _vllm_parts(parts: list[tuple[str, Any]], media: dict[str, Path]) -> list[dict[str, Any]]:
    """The same parts in `vllm_expectations.py`'s spec form (media by path)."""
    out: list[dict[str, Any]] = []
    for kind, value in parts:
        if kind == "text":
            out.append({"type": "text", "text": value})
        elif kind == "time_series":
            key, rate = value
            out.append({"type": "time_series", "path": str(media[key]), "sampling_rate": rate})
        else:
            out.append({"type": kind, "path": str(media[value])})
    return out


@pytest.fixture(scope="module")
def vllm_results(
    checkpoint: Path,
    media: dict[str, Path],
    requests: dict[str, dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed: no reference to compare with")
    root = tmp_path_factory.mktemp("vllm-pro")
    spec = {
        "model": str(checkpoint),
        "cases": {
            name: {"prompt": requests[name]["prompt"], "parts": _vllm_parts(parts, media)}
            for name, parts in CASES.items()
        },
    }
    (root / "spec.json").write_text(json.dumps(spec))
    out = root / "out.json"
    child = subprocess.run(
        [sys.executable, __file__, str(root / "spec.json"), str(out)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        env={**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0"},
    )
    assert child.returncode == 0, child.stderr[-6000:]
    return json.loads(out.read_text())


# ----------------------------------------------------------------------------- registration


def test_load_weights_consumes_every_tensor(reference_backend: None, checkpoint: Path) -> None:
    loaded = load_recorded(checkpoint)
    assert sorted(loaded.seen) == sorted(loaded.expected)
    assert loaded.unfilled == []
    # The FoPE coefficients are the language model's rotary module's, loaded from the checkpoint.
    assert "language_model.model.rotary_emb.sin_coef" in dict(loaded.model.named_parameters())


def test_a_config_without_fope_is_refused(
    reference_backend: None, checkpoint: Path, tmp_path: Path
) -> None:
    """Plain RoPE would run silently wrong: the model checks LMDeploy built FoPE."""
    import shutil

    from interns1_plugin.testing.lmdeploy_engine_steps import EngineSteps

    copy = tmp_path / "no-fope"
    shutil.copytree(checkpoint, copy)
    config = json.loads((copy / "config.json").read_text())
    config["text_config"]["rope_scaling"] = None
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="needs FoPE"):
        EngineSteps(copy, load_weights=False)


@pytest.mark.parametrize(
    "weight",
    [
        "visual.blocks.0.attn.qkvx.weight",
        "visual.blocks.7.mlp.linear_fc1.weight",
        "time_series.encoder.unknown.weight",
        "language_model.model.layers.0.mlp.experts.99.gate_proj.weight",
    ],
)
def test_unknown_tensors_are_refused(weight: str, engine: Any) -> None:
    with pytest.raises(ValueError):
        engine.model.load_weights([(weight, torch.zeros(1))])


# ----------------------------------------------------------------------------- against vLLM


@pytest.mark.parametrize("case", CASES)
def test_prompt_logprobs_match_vllm(
    case: str, engine: Any, requests: dict[str, Any], vllm_results: dict[str, Any]
) -> None:
    request, expected = requests[case], vllm_results[case]
    assert request["input_ids"] == expected["prompt_ids"], "prompt expansion differs"
    logprobs = torch.log_softmax(engine.prefill_request(request), dim=-1)
    worst = 0.0
    for position, top in enumerate(expected["prompt_logprobs"]):
        if top is None:  # the first token has no prediction
            continue
        for token, value in top.items():
            worst = max(worst, abs(float(logprobs[position - 1, int(token)]) - value))
    first = expected["first_token"]
    assert int(logprobs[-1].argmax()) == first["token"]
    worst = max(worst, abs(float(logprobs[-1, first["token"]]) - first["logprob"]))
    print(f"{case}: {len(request['input_ids'])} tokens, max |logprob diff| {worst:.2e}")
    assert worst < LOGPROB_ATOL


def test_items_reach_the_logits(engine: Any, requests: dict[str, Any]) -> None:
    """Images and series move the logits after them, so the comparison above has teeth."""
    for case in ("image", "series_mono"):
        request = requests[case]
        with_items = engine.prefill_request(request)
        without = engine.prefill_request({"input_ids": request["input_ids"]})
        assert float((with_items[-1] - without[-1]).abs().max()) > 1e-2, case


# ----------------------------------------------------------------------------- the paged cache


@pytest.mark.parametrize("case", ["image", "video", "series_3ch_rate"])
def test_chunked_prefill_and_decode_match_one_prefill(
    case: str, engine: Any, requests: dict[str, Any]
) -> None:
    """The items arrive in the second chunk; then three greedy decode steps read the cache."""
    request = requests[case]
    start = min(i["offset"][0] for i in request["multimodal"])
    assert engine.chunk_drift(request, split=start - 3) < STEP_ATOL

    drift = engine.decode_drift(request, steps=3)
    assert len(drift) == 3
    assert max(drift) < STEP_ATOL, drift


def test_batched_sequences_keep_their_own_items(engine: Any, requests: dict[str, Any]) -> None:
    chosen = [requests["two_images"], requests["series_mono"], requests["image"]]
    alone = [engine.prefill_request(r) for r in chosen]
    together = engine.prefill_together(chosen)
    for single, batched in zip(alone, together, strict=True):
        assert float((single - batched).abs().max()) < STEP_ATOL


# ----------------------------------------------------------------------------- bad inputs


def _changed(request: dict[str, Any], **changes: Any) -> list[dict[str, Any]]:
    item = dict(request["multimodal"][0])
    item.update(changes)
    return [item]


@pytest.mark.parametrize(
    ("case", "changes", "match"),
    [
        ("image", {"pixel_values": torch.zeros(3, 7)}, r"pixel_values must be \("),
        ("image", {"pixel_values": None}, "pixel_values must be"),
        ("image", {"image_grid_thw": torch.tensor([1, 5, 6])}, "merge size"),
        ("image", {"image_grid_thw": torch.tensor([1, 4])}, r"image_grid_thw \(t, h, w\)"),
        ("image", {"offset": (3, 10)}, "spans 7 prompt positions"),
        ("image", {"offset": 5}, r"offset \(start, end\)"),
        ("image", {"image_token_id": 7}, "token id 7"),
        ("video", {"video_grid_thw": torch.tensor([2, 4, 6])}, "must be"),
        ("series_mono", {"ts_values": torch.zeros(6000, 1)}, "one series"),
        ("series_mono", {"ts_lens": torch.tensor([5999])}, "does not match"),
        ("series_mono", {"ts_sr": torch.tensor([0.0])}, "positive sampling rate"),
        ("series_mono", {"ts_sr": torch.tensor([20.0])}, "feature tokens spans"),
    ],
)
def test_bad_items_are_value_errors(
    case: str, changes: dict[str, Any], match: str, engine: Any, requests: dict[str, Any]
) -> None:
    request = requests[case]
    with pytest.raises(ValueError, match=match):
        engine.new_sequence(request["input_ids"], _changed(request, **changes))


def test_unknown_modality_is_a_value_error(engine: Any, requests: dict[str, Any]) -> None:
    request = requests["image"]
    with pytest.raises(ValueError, match="does not take"):
        engine.new_sequence(request["input_ids"], _changed(request, modality="audio"))


def test_input_processor_survives_pickling(engine: Any, requests: dict[str, Any]) -> None:
    """LMDeploy's multiprocess executor ships the processor from a worker to the engine."""
    import pickle

    processor = pickle.loads(pickle.dumps(engine.model.get_input_processor()))
    request = requests["series_mono"]
    result = processor.preprocess_input(request["input_ids"], request["multimodal"])
    (series,) = result.input_multimodals["time_series"]
    assert (series.start, series.end) == tuple(request["multimodal"][0]["offset"])


# ----------------------------------------------------------------------------- vLLM child


def run_vllm(spec: dict[str, Any]) -> dict[str, Any]:
    """Prompt logprobs of every case through `vllm.LLM` and the plugin's vLLM model."""
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    from vllm import LLM, SamplingParams
    from vllm.plugins import load_general_plugins
    from vllm_expectations import _mm_data, keep_pro_video_metadata

    load_general_plugins()
    keep_pro_video_metadata()
    llm = LLM(
        model=spec["model"],
        dtype="float32",
        enforce_eager=True,
        max_model_len=4096,
        max_num_seqs=2,
        kv_cache_memory_bytes=64 << 20,
        limit_mm_per_prompt={"image": 2, "video": 1, "time_series": 1},
        enable_prefix_caching=False,
        seed=0,
    )
    module = llm.apply_model(lambda model: type(model).__module__)
    assert module == ["interns1_plugin.vllm.models.interns1_pro"], module
    params = SamplingParams(
        temperature=0.0, max_tokens=1, logprobs=TOP_LOGPROBS, prompt_logprobs=TOP_LOGPROBS
    )
    names = list(spec["cases"])
    prompts = [
        {
            "prompt": spec["cases"][name]["prompt"],
            "multi_modal_data": _mm_data(spec["cases"][name]["parts"], "interns1_pro", {}),
        }
        for name in names
    ]
    results: dict[str, Any] = {}
    for name, output in zip(names, llm.generate(prompts, params, use_tqdm=False), strict=True):
        completion = output.outputs[0]
        token = completion.token_ids[0]
        results[name] = {
            "prompt_ids": list(output.prompt_token_ids),
            "prompt_logprobs": [
                None if top is None else {str(t): lp.logprob for t, lp in top.items()}
                for top in output.prompt_logprobs
            ],
            "first_token": {"token": token, "logprob": completion.logprobs[0][token].logprob},
        }
    return results


if __name__ == "__main__":
    Path(sys.argv[2]).write_text(json.dumps(run_vllm(json.loads(Path(sys.argv[1]).read_text()))))
