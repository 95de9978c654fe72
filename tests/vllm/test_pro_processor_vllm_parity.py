"""`InternS1ProProcessor` gives what the plugin's vLLM path gives for the same prompt and items.

The vLLM side runs in a child process (this file run as a script): the multimodal processor vLLM
builds for the tiny Intern-S1-Pro checkpoint (`MULTIMODAL_REGISTRY.create_processor`, float32),
fed the prompt's ids and the items as `multi_modal_data`. The transformers side is
`AutoProcessor.from_pretrained(checkpoint)` called with the prompt text and the same items. The
expanded `input_ids` must be identical and every tensor equal: images that are and are not
resized, decoded video frames, one- and three-channel series with and without a sampling rate,
in a prompt that mixes all of them out of modality order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("vllm")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from interns1_plugin.processing.pro_prompt import PLACEHOLDERS  # noqa: E402

pytestmark = pytest.mark.vllm

CHILD_TIMEOUT_S = 300
IMAGE, VIDEO, SERIES = (PLACEHOLDERS[k] for k in ("image", "video", "time_series"))

#: Each case: the prompt body and its items per modality, as plain specs both sides rebuild.
CASES: dict[str, dict[str, Any]] = {
    "image_resized": {"text": f"Look at {IMAGE} and say", "image": [[100, 150]]},
    "mixed": {
        "text": f"{SERIES} then {IMAGE} and {VIDEO}, finally {IMAGE} vs {SERIES}.",
        "image": [[64, 96], [128, 64]],
        "video": [[20, 64, 96]],
        "time_series": [[3000, 3, 50.0], [900, 1, None]],
    },
}
#: vLLM's names of the tensors both sides report.
TENSORS = (
    "pixel_values",
    "image_grid_thw",
    "pixel_values_videos",
    "video_grid_thw",
    "ts_sampling_rate",
    "ts_num_tokens",
)


def make_items(case: dict[str, Any]) -> dict[str, list[Any]]:
    """The case's items, seeded by position: PIL images, frame arrays, series payloads."""
    from PIL import Image

    rng = np.random.default_rng(0)
    items: dict[str, list[Any]] = {}
    for height, width in case.get("image", []):
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        items.setdefault("image", []).append(Image.fromarray(pixels))
    for frames, height, width in case.get("video", []):
        video = rng.integers(0, 256, (frames, height, width, 3), dtype=np.uint8)
        items.setdefault("video", []).append(video)
    for length, channels, rate in case.get("time_series", []):
        values = np.sin(np.arange(length)[:, None] / 7.0) + rng.standard_normal((length, channels))
        payload: dict[str, Any] = {"values": values[:, 0] if channels == 1 else values}
        if rate is not None:
            payload["sampling_rate"] = rate
        items.setdefault("time_series", []).append(payload)
    return items


def prompt(case: dict[str, Any]) -> str:
    return f"<|im_start|>user\n{case['text']}<|im_end|>\n<|im_start|>assistant\n"


def vllm_side(model_dir: str) -> dict[str, Any]:
    """Run in the child: the plugin's vLLM multimodal processor on every case."""
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    from vllm.config import ModelConfig
    from vllm.multimodal import MULTIMODAL_REGISTRY
    from vllm.plugins import load_general_plugins

    load_general_plugins()
    limits = {"image": 4, "video": 2, "time_series": 4}
    config = ModelConfig(model=model_dir, dtype="float32", limit_mm_per_prompt=limits)
    processor = MULTIMODAL_REGISTRY.create_processor(config)
    tokenizer = processor.info.get_tokenizer()
    results = {}
    for name, case in CASES.items():
        ids = tokenizer.encode(prompt(case), add_special_tokens=False)
        items = processor.info.parse_mm_data(make_items(case))
        processed = processor(ids, items, hf_processor_mm_kwargs={})
        data = processed["mm_kwargs"].get_data()
        out = {"input_ids": list(processed["prompt_token_ids"])}
        out |= {key: data[key] for key in TENSORS if key in data}
        if "ts_values" in data:
            out["ts_values"] = list(data["ts_values"])
        results[name] = out
    return results


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from interns1_plugin.testing.tiny_interns1_pro import build_tiny_interns1_pro

    return build_tiny_interns1_pro(tmp_path_factory.mktemp("pro") / "model")


@pytest.fixture(scope="module")
def expected(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("vllm") / "out.pt"
    proc = subprocess.run(
        [sys.executable, __file__, str(checkpoint), str(out)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr[-6000:]
    return torch.load(out, weights_only=False)


@pytest.mark.parametrize("name", sorted(CASES))
def test_processor_matches_the_vllm_path(checkpoint, expected, name):
    from transformers import AutoProcessor

    from interns1_plugin.configs import register_with_transformers

    register_with_transformers()
    processor = AutoProcessor.from_pretrained(checkpoint)
    case = CASES[name]
    items = make_items(case)
    ours = processor(
        text=prompt(case),
        images=items.get("image"),
        videos=items.get("video"),
        time_series=items.get("time_series"),
    )
    theirs = expected[name]
    assert ours["input_ids"][0].tolist() == theirs["input_ids"]
    assert {key for key in TENSORS if key in ours} == {key for key in TENSORS if key in theirs}
    for key in TENSORS:
        if key in theirs:
            assert ours[key].dtype == theirs[key].dtype, key
            assert torch.equal(ours[key], theirs[key]), key
    mine, vllm_values = ours.get("ts_values", []), theirs.get("ts_values", [])
    assert len(mine) == len(vllm_values)
    for ours_series, vllm_series in zip(mine, vllm_values, strict=True):
        assert torch.equal(ours_series, vllm_series)


if __name__ == "__main__":
    torch.save(vllm_side(sys.argv[1]), sys.argv[2])
    print(json.dumps({"saved": sys.argv[2]}))
