"""Intern-S1-Pro on vLLM: image and time-series features land on their placeholder tokens.

For each multimodal prompt, vLLM greedy-decodes twice with the same engine (one child process,
this file run as a script):

1. the request with its `multi_modal_data`, as a user sends it;
2. a `prompt_embeds` request built here: the token embeddings of the expanded prompt (vLLM's own
   `prompt_token_ids`) with every `<|image_pad|>` / `<|ts_token|>` row replaced, item by item in
   prompt order, by features from the plugin's vision tower and time-series encoder built
   standalone from the checkpoint's safetensors and run on the processor's outputs.

Positions are 1-D for both (no M-RoPE), so the two runs see the same sequence exactly when the
model scatters each item's features over its own placeholder rows: same tokens, chosen-token
logprobs within float32 noise. The towers' numerics have reference tests of their own
(`test_interns1_pro_vision.py`, `tests/core/test_time_series_encoder.py`); this file checks
placement. It also shows the comparison has teeth: the two images' features in the wrong item
order, or a time series one row late, move the logprobs. Placeholder counts must equal the
processing module's `count_image_tokens` / `num_time_series_tokens`.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("vllm")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from interns1_plugin import formats  # noqa: E402

pytestmark = pytest.mark.vllm

PLUGIN_MODULE = "interns1_plugin.vllm.models.interns1_pro"
MAX_TOKENS = 6
TOP_LOGPROBS = 5
#: float32 on both sides; only batch composition (summation order) differs.
LOGPROB_ATOL = 1e-4
#: How far a misplaced feature must move the first step's top logprobs.
SENSITIVITY_MIN = 1e-3
CHILD_TIMEOUT_S = 300


# ----------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class ImageSpec:
    """A random-noise RGB image of `height` x `width`; the processor resizes a size that is not
    whole 32-pixel merge blocks."""

    height: int
    width: int

    def make(self, seed: int) -> Any:
        from PIL import Image

        rng = np.random.default_rng(seed)
        pixels = rng.integers(0, 256, (self.height, self.width, 3), dtype=np.uint8)
        return Image.fromarray(pixels)


@dataclass(frozen=True)
class SeriesSpec:
    """A noisy multi-frequency series `(length, channels)`; `sampling_rate` None is the
    processor's default (`length / 4`)."""

    length: int
    channels: int
    sampling_rate: float | None = None

    def make(self, seed: int) -> dict[str, Any]:
        rng = np.random.default_rng(seed)
        t = np.arange(self.length, dtype=np.float64)[:, None]
        freqs = rng.uniform(0.005, 0.05, self.channels)[None, :]
        values = np.sin(t * freqs) + 0.3 * rng.standard_normal((self.length, self.channels))
        payload: dict[str, Any] = {"values": values[:, 0] if self.channels == 1 else values}
        if self.sampling_rate is not None:
            payload["sampling_rate"] = self.sampling_rate
        return payload


Part = str | ImageSpec | SeriesSpec
IMAGE_PLACEHOLDER = formats.VISION_START + formats.IMAGE_PAD + formats.VISION_END
SERIES_PLACEHOLDER = formats.TS_START + formats.TS_TOKEN + formats.TS_END


@dataclass(frozen=True)
class Case:
    """A prompt as text and media items, in order; items are seeded by their position."""

    parts: tuple[Part, ...]

    @property
    def items(self) -> list[ImageSpec | SeriesSpec]:
        return [p for p in self.parts if not isinstance(p, str)]

    def prompt(self) -> str:
        def text(part: Part) -> str:
            if isinstance(part, ImageSpec):
                return IMAGE_PLACEHOLDER
            if isinstance(part, SeriesSpec):
                return SERIES_PLACEHOLDER
            return part

        return "".join(text(p) for p in self.parts)

    def multi_modal_data(self) -> dict[str, Any]:
        images = [i.make(n) for n, i in enumerate(self.items) if isinstance(i, ImageSpec)]
        series = [s.make(n) for n, s in enumerate(self.items) if isinstance(s, SeriesSpec)]
        data: dict[str, Any] = {}
        if images:
            data["image"] = images if len(images) > 1 else images[0]
        if series:
            data["time_series"] = series if len(series) > 1 else series[0]
        return data


CASES: dict[str, Case] = {
    "image": Case(("Look at ", ImageSpec(100, 150), " and say")),
    "two_images": Case(("First ", ImageSpec(96, 160), " then ", ImageSpec(128, 64), " so")),
    "series_mono": Case(("Signal ", SeriesSpec(6000, 1), " means")),
    "series_3ch_rate": Case(("Sensors ", SeriesSpec(3000, 3, 50.0), " show")),
    # The series first: items of two modalities must still land in prompt order.
    "series_and_image": Case(("Trace ", SeriesSpec(4000, 2, 200.0), " and ", ImageSpec(64, 96))),
}
#: prompt-embeds variants that misplace features: (case, how)
MISPLACED = (("two_images", "swap_images"), ("series_mono", "shift"), ("series_3ch_rate", "shift"))


# ----------------------------------------------------------------------------- vLLM child


def _checkpoint_tensors(model_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    tensors: dict[str, torch.Tensor] = {}
    for shard in sorted(model_dir.glob("*.safetensors")):
        tensors.update(load_file(shard))
    return tensors


def _strip(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _standalone_towers(llm: Any, tensors: dict[str, torch.Tensor]) -> tuple[Any, Any]:
    """The plugin's vision tower and time-series encoder, built apart from the engine's model and
    loaded from the safetensors; the engine's one-rank parallel groups serve the tower."""
    from vllm.config import set_current_vllm_config
    from vllm.model_executor.layers.quantization.base_config import QuantizeMethodBase

    from interns1_plugin.modeling.time_series_encoder import (
        InternS1ProTimeSeriesEncoder,
    )
    from interns1_plugin.vllm.models.interns1_pro_vision import InternS1ProVisionTransformer

    vllm_config = llm.llm_engine.vllm_config
    hf_config = vllm_config.model_config.hf_config
    with set_current_vllm_config(vllm_config):
        vision = InternS1ProVisionTransformer(hf_config.vision_config, prefix="visual")
    weights = _strip(tensors, "model.visual.")
    assert vision.load_weights(weights.items()) == set(weights)
    for module in vision.modules():  # what vLLM's loader does after `load_weights`
        method = getattr(module, "quant_method", None)
        if isinstance(method, QuantizeMethodBase):
            method.process_weights_after_loading(module)
    series = InternS1ProTimeSeriesEncoder(hf_config.ts_config)
    weights = _strip(tensors, "model.time_series.")
    assert set(weights) <= series.load_weights(weights.items())
    return vision.eval(), series.eval()


def _features_in_prompt_order(processed: Any, vision: Any, series: Any) -> list[torch.Tensor]:
    """One feature matrix per item, ordered by where the processor placed its placeholder."""
    data = processed["mm_kwargs"].get_data()
    found: list[tuple[int, torch.Tensor]] = []
    ranges = processed["mm_placeholders"]
    if "image" in ranges:
        grids = data["image_grid_thw"].reshape(-1, 3)
        pixels = data["pixel_values"].split(grids.prod(-1).tolist())
        for place, grid, rows in zip(ranges["image"], grids, pixels, strict=True):
            found.append((place.offset, vision(rows, grid[None])))
    if "time_series" in ranges:
        rates = data["ts_sampling_rate"].flatten().tolist()
        for index, (place, rate) in enumerate(zip(ranges["time_series"], rates, strict=True)):
            found.append((place.offset, series([data["ts_values"][index]], [rate])[0]))
    return [features for _, features in sorted(found, key=lambda pair: pair[0])]


def placeholder_runs(ids: list[int], placeholder_ids: set[int]) -> list[tuple[int, int]]:
    """`(start, length)` of each maximal run of placeholder tokens: one run per item."""
    runs: list[tuple[int, int]] = []
    for position, token in enumerate(ids):
        if token not in placeholder_ids:
            continue
        if runs and sum(runs[-1]) == position:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((position, 1))
    return runs


def _embedded_ranges(placeholders: dict[str, list[Any]]) -> list[list[int]]:
    """`[start, length]` of the rows vLLM's processor marks for features, in prompt order."""
    ranges = []
    for places in placeholders.values():
        for place in places:
            mask = torch.ones(place.length, dtype=torch.bool)
            if place.is_embed is not None:
                mask = place.is_embed
            rows = mask.nonzero().flatten()
            assert torch.equal(rows, torch.arange(rows[0], rows[0] + len(rows))), "not contiguous"
            ranges.append([place.offset + int(rows[0]), len(rows)])
    return sorted(ranges)


def _prompt_embeds(
    embed_table: torch.Tensor,
    ids: list[int],
    runs: list[tuple[int, int]],
    features: list[torch.Tensor],
    misplace: str | None = None,
) -> torch.Tensor:
    """Token embeddings with each run's rows replaced by its item's features.

    `swap_images`: the items' features concatenated in reverse order over the same rows (an
    item-order bug). `shift`: every item's features one row later (an off-by-one bug), the first
    placeholder keeping its token embedding.
    """
    embeds = embed_table[torch.tensor(ids)].clone()
    if misplace == "swap_images":
        rows = torch.cat([torch.arange(s, s + n) for s, n in runs])
        embeds[rows] = torch.cat(features[::-1])
        return embeds
    offset = 1 if misplace == "shift" else 0
    for (start, length), item in zip(runs, features, strict=True):
        assert item.shape[0] == length, (item.shape, length)
        embeds[start + offset : start + offset + length] = item
    return embeds


def _result(output: Any) -> dict[str, Any]:
    completion = output.outputs[0]
    return {
        "tokens": list(completion.token_ids),
        "top": [{str(t): lp.logprob for t, lp in step.items()} for step in completion.logprobs],
    }


def run_vllm(model_dir: Path) -> dict[str, Any]:
    """Both runs of every case in this (child) process, with one engine."""
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    from vllm import LLM, SamplingParams
    from vllm.multimodal import MULTIMODAL_REGISTRY

    from interns1_plugin.configs import register_with_transformers
    from interns1_plugin.vllm.models import register_models

    register_with_transformers()
    register_models()
    llm = LLM(
        model=str(model_dir),
        dtype="float32",
        enforce_eager=True,
        max_model_len=1024,
        max_num_seqs=4,
        kv_cache_memory_bytes=64 << 20,
        limit_mm_per_prompt={"image": 2, "video": 0, "time_series": 1},
        enable_prompt_embeds=True,
        enable_prefix_caching=False,
        seed=0,
    )
    params = SamplingParams(temperature=0.0, max_tokens=MAX_TOKENS, logprobs=TOP_LOGPROBS)
    requests = [
        {"prompt": case.prompt(), "multi_modal_data": case.multi_modal_data()}
        for case in CASES.values()
    ]
    outputs = llm.generate(requests, params, use_tqdm=False)

    tokenizer = llm.get_tokenizer()
    placeholder_ids = {
        int(tokenizer.convert_tokens_to_ids(t)) for t in (formats.IMAGE_PAD, formats.TS_TOKEN)
    }
    processor = MULTIMODAL_REGISTRY.create_processor(llm.llm_engine.model_config)
    tensors = _checkpoint_tensors(model_dir)
    embed_table = tensors["model.language_model.embed_tokens.weight"]
    vision, series = _standalone_towers(llm, tensors)

    cases: dict[str, dict[str, Any]] = {}
    embeds: dict[str, torch.Tensor] = {}
    with torch.inference_mode():
        for (name, case), request, output in zip(CASES.items(), requests, outputs, strict=True):
            ids = list(output.prompt_token_ids)
            processed = processor(
                case.prompt(), processor.info.parse_mm_data(request["multi_modal_data"])
            )
            features = _features_in_prompt_order(processed, vision, series)
            runs = placeholder_runs(ids, placeholder_ids)
            embeds[name] = _prompt_embeds(embed_table, ids, runs, features)
            for misplaced, how in MISPLACED:
                if misplaced == name:
                    embeds[f"{name}:{how}"] = _prompt_embeds(embed_table, ids, runs, features, how)
            cases[name] = {
                "prompt_ids": ids,
                "processor_prompt_ids": list(processed["prompt_token_ids"]),
                "runs": runs,
                "placeholders": _embedded_ranges(processed["mm_placeholders"]),
                "feature_rows": [int(f.shape[0]) for f in features],
                "multimodal": _result(output),
            }
    embedded = llm.generate([{"prompt_embeds": e} for e in embeds.values()], params, use_tqdm=False)
    return {
        "model_module": llm.apply_model(lambda model: type(model).__module__),
        "cases": cases,
        "embeds": {name: _result(out) for name, out in zip(embeds, embedded, strict=True)},
    }


# ----------------------------------------------------------------------------- the test


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from interns1_plugin.testing.tiny_interns1_pro import build_tiny_interns1_pro

    return build_tiny_interns1_pro(tmp_path_factory.mktemp("interns1-pro-mm") / "model")


@pytest.fixture(scope="module")
def tested(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("interns1-pro-mm-out") / "vllm.json"
    child = subprocess.run(
        [sys.executable, __file__, str(model_dir), str(out)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        env={**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0"},
    )
    assert child.returncode == 0, child.stderr[-6000:]
    result = json.loads(out.read_text())
    assert result["model_module"] == [PLUGIN_MODULE], "vLLM did not run the plugin's model"
    return result


def _expected_counts(case: Case, model_dir: Path) -> list[int]:
    """Placeholders per item from the processing module's own counting functions."""
    from interns1_plugin.processing.pro_vision import ProVisionConfig, count_image_tokens
    from interns1_plugin.processing.time_series import num_time_series_tokens

    config = ProVisionConfig.from_preprocessor_config(
        json.loads((model_dir / "preprocessor_config.json").read_text()),
        json.loads((model_dir / "video_preprocessor_config.json").read_text()),
    )
    counts = []
    for item in case.items:
        if isinstance(item, ImageSpec):
            counts.append(count_image_tokens(item.height, item.width, config))
        else:
            counts.append(num_time_series_tokens(item.length, item.sampling_rate))
    return counts


@pytest.mark.parametrize("name", CASES)
def test_placeholders_match_the_token_counts(
    name: str, tested: dict[str, Any], model_dir: Path
) -> None:
    case, result = CASES[name], tested["cases"][name]
    assert result["processor_prompt_ids"] == result["prompt_ids"]
    counts = [length for _, length in result["runs"]]
    assert counts == _expected_counts(case, model_dir)
    assert all(count > 1 for count in counts), counts  # a shift or swap would move something
    assert result["feature_rows"] == counts
    assert [list(run) for run in result["runs"]] == result["placeholders"]


@pytest.mark.parametrize("name", CASES)
def test_features_replace_their_placeholders(name: str, tested: dict[str, Any]) -> None:
    """The multimodal request decodes like the prompt embeddings built here."""
    multimodal = tested["cases"][name]["multimodal"]
    embedded = tested["embeds"][name]
    assert multimodal["tokens"] == embedded["tokens"], name
    worst = 0.0
    for step, token in enumerate(multimodal["tokens"]):
        got, want = multimodal["top"][step][str(token)], embedded["top"][step][str(token)]
        worst = max(worst, abs(got - want))
    assert worst < LOGPROB_ATOL, (name, worst)
    print(f"{name}: max chosen-token logprob difference {worst:.3e}")


def _first_step_shift(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Largest change of the first step's top logprobs (infinite if the top set changes)."""
    first, other = a["top"][0], b["top"][0]
    return max(abs(lp - other[t]) if t in other else math.inf for t, lp in first.items())


@pytest.mark.parametrize(("name", "how"), MISPLACED)
def test_misplaced_features_change_the_output(name: str, how: str, tested: dict[str, Any]) -> None:
    shift = _first_step_shift(tested["embeds"][name], tested["embeds"][f"{name}:{how}"])
    assert shift > SENSITIVITY_MIN, (name, how, shift)
    print(f"{name} with {how}: first-step logprobs move by {shift:.3g}")


if __name__ == "__main__":
    Path(sys.argv[2]).write_text(json.dumps(run_vllm(Path(sys.argv[1]))))
