"""LMDeploy's multimodal preprocessing through the plugin equals vLLM's, id for id, pixel for pixel.

The LMDeploy side runs the API server's own code up to the engine: `ImageEncoder` (which builds
the vision model LMDeploy's builder picks) and `MultimodalProcessor.get_prompt_input`, fed with
OpenAI-style content parts as a client sends them (file paths, data URLs, `time_series_url`).
The vLLM side runs in a child process (`vllm_expectations.py`): the checkpoint's chat template,
the plugin's vLLM video loaders and the processor vLLM builds for the checkpoint. For the same
inputs both must give the same prompt token ids and the same pixel / time-series tensors, and
LMDeploy's per-item offsets must sit exactly on the feature-token runs of those ids.

Also here: the registrations in a spawned child process, bad inputs answered with ValueError,
the chat template's thinking switch, and checkpoints whose bundled code must never run.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("lmdeploy.vl.model.builder", exc_type=ImportError)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from interns1_plugin import formats  # noqa: E402
from interns1_plugin.lmdeploy import import_hook  # noqa: E402

pytestmark = pytest.mark.lmdeploy

HERE = Path(__file__).resolve().parent
CHILD_TIMEOUT_S = 600
PLUGIN_VISION = {
    "mini": "interns1_plugin.lmdeploy.vision_interns1.InternS1VisionModel",
    "pro": "interns1_plugin.lmdeploy.vision_interns1_pro.InternS1ProVisionModel",
}
PLUGIN_TEMPLATE = {
    "mini": "interns1_plugin.lmdeploy.chat_template.InternS1ChatTemplate",
    "pro": "interns1_plugin.lmdeploy.chat_template.InternS1ProChatTemplate",
}
#: The token whose runs carry an item's features, per model.
FEATURE_TOKENS = {
    "mini": (formats.IMG_CONTEXT,),
    "pro": (formats.IMAGE_PAD, formats.VIDEO_PAD, formats.TS_TOKEN),
}


# ----------------------------------------------------------------------------- inputs


def _write_video(path: Path, frames: int, fps: float, seed: int) -> Path:
    import cv2

    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (96, 64))
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8))
    writer.release()
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files both engines read: images, videos, time series."""
    from PIL import Image

    root = tmp_path_factory.mktemp("media")
    rng = np.random.default_rng(0)
    files = {
        "wide": root / "wide.png",  # 2x1 tiles + thumbnail on Intern-S1
        "tall": root / "tall.png",  # 1x2 tiles + thumbnail
        "small": root / "small.png",
    }
    for name, shape in (("wide", (300, 600)), ("tall", (512, 256)), ("small", (100, 150))):
        Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8)).save(files[name])
    # 4.5 s at 10 fps: Intern-S1 keeps segment centres of it.
    files["long_video"] = _write_video(root / "long.mp4", 45, 10.0, seed=1)
    # 2 s: Pro samples 4 frames at 2 fps (the tiny Pro checkpoint allows at most 8).
    files["short_video"] = _write_video(root / "short.mp4", 20, 10.0, seed=2)
    t = np.arange(6000, dtype=np.float64)
    files["series_mono"] = root / "mono.npy"
    np.save(files["series_mono"], np.sin(t / 37.0) + 0.1 * rng.standard_normal(6000))
    files["series_3ch"] = root / "three.npy"
    np.save(files["series_3ch"], np.stack([np.sin(t[:3000] / k) for k in (5, 11, 23)], axis=1))
    return files


def _data_url(path: Path, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """float32 checkpoints: LMDeploy keeps features in the config's dtype, vLLM is told float32."""
    from interns1_plugin.testing.tiny_interns1 import build_tiny_interns1
    from interns1_plugin.testing.tiny_interns1_pro import build_tiny_interns1_pro

    root = tmp_path_factory.mktemp("lmdeploy-vision")
    return {
        "mini": build_tiny_interns1(root / "mini", "mini", dtype="float32"),
        "pro": build_tiny_interns1_pro(root / "pro"),
    }


# ----------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    """One user message; `parts` name media by key. `lmdeploy` and `vllm` hold each engine's
    spelling of the same options (LMDeploy: per modality; vLLM: flat)."""

    model: str
    parts: tuple[tuple[str, str], ...]
    lmdeploy_mm_kwargs: dict[str, Any] | None = None
    vllm_mm_kwargs: dict[str, Any] = field(default_factory=dict)
    media_io_kwargs: dict[str, Any] = field(default_factory=dict)
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)
    sampling_rate: float | None = None


CASES: dict[str, Case] = {
    "mini_image_file": Case("mini", (("image", "wide"), ("text", "Describe it."))),
    "mini_image_data_url": Case("mini", (("image_url", "tall"), ("text", "And this?"))),
    "mini_two_images_thinking_off": Case(
        "mini",
        (("image", "wide"), ("image", "tall"), ("text", "Compare.")),
        chat_template_kwargs={"enable_thinking": False},
    ),
    "mini_image_max_patches": Case(
        "mini",
        (("image", "wide"), ("text", "Fewer tiles.")),
        lmdeploy_mm_kwargs={"image": {"max_patches": 2}},
        vllm_mm_kwargs={"max_patches": 2},
    ),
    "mini_video_default": Case("mini", (("video", "long_video"), ("text", "What happens?"))),
    "mini_video_num_frames": Case(
        "mini",
        (("video", "long_video"), ("text", "Four frames.")),
        lmdeploy_mm_kwargs={"video": {"num_frames": 4}},
        vllm_mm_kwargs={"num_frames": 4},
    ),
    "mini_video_media_io_frames": Case(
        "mini",
        (("video", "long_video"), ("text", "Six decoded.")),
        media_io_kwargs={"video": {"num_frames": 6}},
    ),
    "mini_image_and_video": Case(
        "mini",
        (("image", "small"), ("video", "long_video"), ("text", "Same scene?")),
        lmdeploy_mm_kwargs={"video": {"num_frames": 3}},
        vllm_mm_kwargs={"num_frames": 3},
    ),
    "pro_image": Case("pro", (("image", "small"), ("text", "Look."))),
    "pro_two_images": Case("pro", (("image_url", "wide"), ("image", "tall"), ("text", "Both."))),
    "pro_image_max_pixels": Case(
        "pro",
        (("image", "wide"), ("text", "Smaller.")),
        lmdeploy_mm_kwargs={"image": {"max_pixels": 128 * 128}},
        vllm_mm_kwargs={"max_pixels": 128 * 128},
    ),
    "pro_video": Case("pro", (("video", "short_video"), ("text", "Motion?"))),
    "pro_image_and_video": Case(
        "pro",
        (("image", "small"), ("video", "short_video"), ("text", "Together.")),
        chat_template_kwargs={"enable_thinking": False},
    ),
    "pro_series_default_rate": Case(
        "pro", (("time_series_url", "series_mono"), ("text", "Signal?"))
    ),
    "pro_series_3ch_rate": Case(
        "pro", (("time_series", "series_3ch"), ("text", "Sensors?")), sampling_rate=50.0
    ),
}


def _lmdeploy_parts(case: Case, media: dict[str, Path]) -> list[dict[str, Any]]:
    """Content parts as a client sends them to `lmdeploy serve api_server`."""
    parts: list[dict[str, Any]] = []
    for kind, value in case.parts:
        if kind == "text":
            parts.append({"type": "text", "text": value})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": str(media[value])}})
        elif kind == "image_url":
            url = _data_url(media[value], "image/png")
            parts.append({"type": "image_url", "image_url": {"url": url}})
        elif kind == "video":
            parts.append({"type": "video_url", "video_url": {"url": str(media[value])}})
        else:  # time series: a data URL of the .npy file, or its path
            url = (
                _data_url(media[value], "application/x-npy")
                if kind == "time_series_url"
                else str(media[value])
            )
            spec: dict[str, Any] = {"url": url}
            if case.sampling_rate is not None:
                spec["sampling_rate"] = case.sampling_rate
            parts.append({"type": "time_series_url", "time_series_url": spec})
    return parts


def _vllm_parts(case: Case, media: dict[str, Path]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for kind, value in case.parts:
        if kind == "text":
            parts.append({"type": "text", "text": value})
        else:
            base = {"image_url": "image", "time_series_url": "time_series"}.get(kind, kind)
            part: dict[str, Any] = {"type": base, "path": str(media[value])}
            if base == "time_series":
                part["sampling_rate"] = case.sampling_rate
            parts.append(part)
    return parts


# ----------------------------------------------------------------------------- both engines


@pytest.fixture(scope="module")
def vllm_results(
    checkpoints: dict[str, Path], media: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed: no reference to compare with")
    root = tmp_path_factory.mktemp("vllm-expectations")
    spec = {
        "models": {name: str(path) for name, path in checkpoints.items()},
        "cases": {
            name: {
                "model": case.model,
                "parts": _vllm_parts(case, media),
                "chat_template_kwargs": case.chat_template_kwargs,
                "mm_processor_kwargs": case.vllm_mm_kwargs,
                "media_io_kwargs": case.media_io_kwargs,
            }
            for name, case in CASES.items()
        },
    }
    (root / "spec.json").write_text(json.dumps(spec))
    out = root / "out.pt"
    child = subprocess.run(
        [sys.executable, str(HERE / "vllm_expectations.py"), str(root / "spec.json"), str(out)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        env={**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0"},
    )
    assert child.returncode == 0, child.stderr[-6000:]
    return torch.load(out, weights_only=False)


class LMDeployFrontEnd:
    """What `VLAsyncEngine` builds in the API server, minus the engine: the vision encoder (the
    builder's choice of vision model), the chat template and the multimodal processor."""

    def __init__(self, model_path: Path) -> None:
        from lmdeploy.model import get_chat_template
        from lmdeploy.serve.processors import MultimodalProcessor
        from lmdeploy.tokenizer import Tokenizer
        from lmdeploy.vl.engine import ImageEncoder

        path = str(model_path)
        self.encoder = ImageEncoder(path, "pytorch")
        self.chat_template = get_chat_template(path)
        self.processor = MultimodalProcessor(
            Tokenizer(path), self.chat_template, vl_encoder=self.encoder, backend="pytorch"
        )

    @property
    def model(self) -> Any:
        return self.encoder.model

    def prompt_input(self, messages: list[dict], **kwargs: Any) -> dict[str, Any]:
        """`get_prompt_input` as `AsyncEngine.preprocess` calls it for a chat request."""
        return asyncio.run(self.processor.get_prompt_input(messages, do_preprocess=True, **kwargs))


@pytest.fixture(scope="module")
def front_ends(checkpoints: dict[str, Path]):
    """One front end per model, built when first asked for: building a vision model points
    LMDeploy's video loading at that model's loader, so a test uses one model at a time."""
    from interns1_plugin.lmdeploy.media import restore_media_loaders

    built: dict[str, LMDeployFrontEnd] = {}
    current: list[str] = []

    def get(model: str) -> LMDeployFrontEnd:
        if model not in built:
            built[model] = LMDeployFrontEnd(checkpoints[model])
        elif current != [model]:
            built[model].model.build_preprocessor()  # points video loading back at this model
        current[:] = [model]
        return built[model]

    yield get
    restore_media_loaders()


@pytest.fixture(scope="module")
def lmdeploy_results(front_ends, media: dict[str, Path]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for model in ("mini", "pro"):
        front = front_ends(model)
        for name, case in CASES.items():
            if case.model != model:
                continue
            messages = [{"role": "user", "content": _lmdeploy_parts(case, media)}]
            results[name] = front.prompt_input(
                messages,
                chat_template_kwargs=case.chat_template_kwargs or None,
                media_io_kwargs=case.media_io_kwargs or None,
                mm_processor_kwargs=case.lmdeploy_mm_kwargs,
            )
    return results


def _runs(ids: list[int], token_ids: set[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for position, token in enumerate(ids):
        if token not in token_ids:
            continue
        if runs and runs[-1][1] == position:
            runs[-1] = (runs[-1][0], position + 1)
        else:
            runs.append((position, position + 1))
    return runs


def _vllm_features(result: dict[str, Any]) -> list[torch.Tensor]:
    """vLLM's pixel tensors split per item and put in prompt order."""
    items: list[tuple[int, torch.Tensor]] = []
    for modality, counts_key, pixels_key in (
        ("image", "image_num_patches", "pixel_values"),
        ("video", "video_num_patches", "pixel_values_videos"),
    ):
        if pixels_key not in result:
            continue
        if counts_key in result:
            sizes = result[counts_key].flatten().tolist()
        else:
            grid_key = "image_grid_thw" if modality == "image" else "video_grid_thw"
            sizes = result[grid_key].reshape(-1, 3).prod(-1).tolist()
        pieces = result[pixels_key].split(sizes)
        places = result["placeholders"][modality]
        items += [(offset, piece) for (offset, _), piece in zip(places, pieces, strict=True)]
    return [piece for _, piece in sorted(items, key=lambda pair: pair[0])]


def _ours(result: dict[str, Any], key: str) -> torch.Tensor:
    return torch.cat([item[key] for item in result["multimodal"] if key in item])


@pytest.mark.parametrize("name", CASES)
def test_prompt_ids_equal_vllms(name: str, lmdeploy_results, vllm_results) -> None:
    ours, theirs = lmdeploy_results[name], vllm_results[name]
    assert ours["prompt"] == theirs["prompt"], "the chat templates render differently"
    assert ours["input_ids"] == theirs["prompt_token_ids"]


@pytest.mark.parametrize("name", CASES)
def test_features_equal_vllms(name: str, lmdeploy_results, vllm_results) -> None:
    ours, theirs = lmdeploy_results[name], vllm_results[name]
    expected = _vllm_features(theirs)
    if expected:
        pixels = [i.get("pixel_values", i.get("pixel_values_videos")) for i in ours["multimodal"]]
        got = torch.cat([p for p in pixels if p is not None])
        want = torch.cat(expected)
        assert got.dtype == want.dtype == torch.float32
        assert torch.equal(got, want)
    if "ts_values" in theirs:
        series = [i for i in ours["multimodal"] if "ts_values" in i]
        assert len(series) == len(theirs["ts_values"])
        for item, values, rate in zip(
            series, theirs["ts_values"], theirs["ts_sampling_rate"].flatten().tolist(), strict=True
        ):
            assert torch.equal(item["ts_values"][0], values)
            assert item["ts_values"].shape == (1, *values.shape)
            assert item["ts_lens"].tolist() == [values.shape[0]]
            assert item["ts_sr"].tolist() == pytest.approx([rate])


@pytest.mark.parametrize("name", CASES)
def test_offsets_sit_on_the_feature_runs(name: str, lmdeploy_results, front_ends) -> None:
    """Each engine item covers exactly one run of feature tokens, in prompt order, with as many
    feature rows as the engine will produce for it."""
    case, result = CASES[name], lmdeploy_results[name]
    tokenizer = front_ends(case.model).model.tokenizer
    feature_ids = {tokenizer.convert_tokens_to_ids(t) for t in FEATURE_TOKENS[case.model]}
    runs = _runs(result["input_ids"], feature_ids)
    items = result["multimodal"]
    assert len(items) == len(runs) > 0
    for item, (start, end) in zip(items, runs, strict=True):
        if case.model == "mini":  # InternVL's input processor: int offset + image_tokens
            assert (item["offset"], item["offset"] + item["image_tokens"]) == (start, end)
            assert item["image_tokens"] == 256 * item["pixel_values"].shape[0]
            assert result["input_ids"][start] == item["image_token_id"]
        else:  # Intern-S1-Pro's input processor: (start, end) offsets
            assert tuple(item["offset"]) == (start, end)
            if "ts_values" in item:
                assert result["input_ids"][start] == item["ts_token_id"]
                continue
            grid = item.get("image_grid_thw", item.get("video_grid_thw"))
            pixels = item.get("pixel_values", item.get("pixel_values_videos"))
            assert pixels.shape[0] == int(torch.as_tensor(grid).prod())
            assert end - start == pixels.shape[0] // 4  # 2x2 merge


@pytest.mark.parametrize("name", ["mini_image_and_video", "pro_image_and_video"])
def test_token_id_prompts_expand_like_text(
    name: str, front_ends, media: dict[str, Path], lmdeploy_results
) -> None:
    """`/generate` hands the vision model prompt ids instead of text: same expansion."""
    case, front = CASES[name], front_ends(CASES[name].model)
    messages = asyncio.run(
        front.processor.async_parse_multimodal_item(
            [{"role": "user", "content": _lmdeploy_parts(case, media)}]
        )
    )
    text = front.model.get_input_prompt(
        messages, front.chat_template, chat_template_kwargs=case.chat_template_kwargs
    )
    ids = front.model.tokenizer.encode(text, add_special_tokens=False)
    got = front.model.preprocess(messages, ids, case.lmdeploy_mm_kwargs)
    want = lmdeploy_results[name]
    assert "prompt" not in got
    assert got["input_ids"] == want["input_ids"]
    assert [i["offset"] for i in got["multimodal"]] == [i["offset"] for i in want["multimodal"]]


def test_video_frames_are_the_plugins_segment_centres(lmdeploy_results) -> None:
    """45 frames -> 32 by default, 4 on request, 6 when LMDeploy's loader decodes only 6."""
    counts = {
        name: sum(1 for _ in lmdeploy_results[name]["multimodal"])
        for name in ("mini_video_default", "mini_video_num_frames", "mini_video_media_io_frames")
    }
    assert counts == {
        "mini_video_default": 32,
        "mini_video_num_frames": 4,
        "mini_video_media_io_frames": 6,
    }


# ----------------------------------------------------------------------------- registration


CHILD_REPORT = """
import json, multiprocessing, sys

def report(paths):
    from lmdeploy.model import MODELS, get_chat_template
    from lmdeploy.vl.model.base import VISION_MODELS
    from lmdeploy.vl.model.builder import load_vl_model

    def name(obj):
        cls = obj if isinstance(obj, type) else type(obj)
        return f"{cls.__module__}.{cls.__qualname__}"

    out = {
        "vision_head": list(VISION_MODELS.module_dict)[:2],
        "template_head": list(MODELS.module_dict)[:2],
        "vision": {},
        "template": {},
    }
    for key, path in paths.items():
        out["vision"][key] = name(load_vl_model(path, "pytorch", trust_remote_code=True))
        out["template"][key] = name(get_chat_template(path, trust_remote_code=True))
    return out

if __name__ == "__main__":
    paths = json.loads(sys.argv[1])
    here = report(paths)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        spawned = pool.apply(report, (paths,))
    print(json.dumps({"parent": here, "spawned": spawned}))
"""


def _run_child(script: Path, *args: str, disable: bool = False) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != import_hook.DISABLE_ENV}
    if disable:
        env[import_hook.DISABLE_ENV] = "1"
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=CHILD_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr[-6000:]
    return json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])


def test_registration_in_a_spawned_child(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    """A fresh interpreter and a `spawn` child of it (as LMDeploy starts engine processes) both
    pick the plugin's vision models and chat templates, ahead of LMDeploy's own."""
    script = tmp_path / "child.py"
    script.write_text(CHILD_REPORT)
    paths = json.dumps({name: str(path) for name, path in checkpoints.items()})
    report = _run_child(script, paths)
    for side in ("parent", "spawned"):
        got = report[side]
        assert got["vision_head"] == [
            "interns1_plugin.InternS1VisionModel",
            "interns1_plugin.InternS1ProVisionModel",
        ]
        assert got["template_head"] == ["intern-s1", "intern-s1-pro"]
        assert got["vision"] == PLUGIN_VISION
        assert got["template"] == PLUGIN_TEMPLATE


CONTROL_CHILD = """
import json
import lmdeploy.vl.model.builder
from lmdeploy.model import MODELS
from lmdeploy.vl.model.base import VISION_MODELS
print(json.dumps({"vision_head": list(VISION_MODELS.module_dict)[:1],
                  "templates": "intern-s1" in MODELS.module_dict}))
"""


def test_without_the_hook_lmdeploy_picks_its_own(tmp_path: Path) -> None:
    """The control: it is the hook that puts the plugin's classes first."""
    script = tmp_path / "control.py"
    script.write_text(CONTROL_CHILD)
    report = _run_child(script, disable=True)
    assert report == {"vision_head": ["CogVLMVisionModel"], "templates": False}


# ----------------------------------------------------------------------------- bad inputs


def _image_message(url: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]


def _series_message(url: str, **params: Any) -> list[dict]:
    spec = {"url": url, **params}
    return [{"role": "user", "content": [{"type": "time_series_url", "time_series_url": spec}]}]


def _npy_url(values: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, values)
    return "data:application/x-npy;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_bad_images_are_value_errors(front_ends, tmp_path: Path) -> None:
    front = front_ends("mini")
    garbage = "data:image/png;base64," + base64.b64encode(b"not an image at all").decode()
    with pytest.raises(ValueError, match="image could not be decoded"):
        front.prompt_input(_image_message(garbage))
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="image could not be decoded"):
        front.prompt_input(_image_message(str(empty)))
    # Bytes handed to the vision model directly (the pipeline API) are checked there too.
    messages = [{"role": "user", "content": [{"type": "image", "data": b"\x89PNG broken"}]}]
    with pytest.raises(ValueError, match="image could not be read"):
        front.model.preprocess(messages, "<IMG_CONTEXT>")


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"", "empty|could not be decoded"), (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64, "decoded")],
    ids=["empty", "corrupt"],
)
def test_bad_videos_are_value_errors(front_ends, tmp_path: Path, content: bytes, match: str):
    for model in ("mini", "pro"):
        front = front_ends(model)
        path = tmp_path / f"{model}.mp4"
        path.write_bytes(content)
        messages = [
            {"role": "user", "content": [{"type": "video_url", "video_url": {"url": str(path)}}]}
        ]
        with pytest.raises(ValueError, match=match):
            front.prompt_input(messages)


@pytest.mark.parametrize(
    ("values", "params", "kwargs", "match"),
    [
        (np.array([1.0, np.nan] * 2000), {}, None, "finite"),
        (np.array([1.0, np.inf] * 2000), {}, None, "finite"),
        (np.zeros(0), {}, None, "empty"),
        (np.ones(2), {}, None, "too short"),
        (np.arange(5000.0), {"sampling_rate": -3.0}, None, "positive finite"),
        (np.arange(5000.0), {}, {"time_series": {"max_points": 4000}}, "not truncated"),
        (np.arange(5000.0), {}, {"time_series": {"bogus": 1}}, "unknown"),
    ],
    ids=["nan", "inf", "empty", "too_short", "negative_rate", "over_bound", "unknown_option"],
)
def test_bad_time_series_are_value_errors(front_ends, values, params, kwargs, match) -> None:
    front = front_ends("pro")
    with pytest.raises(ValueError, match=match):
        front.prompt_input(_series_message(_npy_url(values), **params), mm_processor_kwargs=kwargs)


def test_series_and_images_mix_unless_the_builtin_engine_model_is_kept(
    front_ends, media: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plugin's Pro engine model takes any mix; LMDeploy's own stacks one modality per pass."""
    from interns1_plugin.lmdeploy.models import KEEP_BUILTIN_ENV

    front = front_ends("pro")
    content = [
        {"type": "image_url", "image_url": {"url": str(media["small"])}},
        {"type": "time_series_url", "time_series_url": {"url": str(media["series_mono"])}},
    ]
    mixed = front.prompt_input([{"role": "user", "content": content}])
    kinds = {str(item["modality"].value) for item in mixed["multimodal"]}
    assert kinds == {"image", "time_series"}, kinds
    monkeypatch.setenv(KEEP_BUILTIN_ENV, "1")
    with pytest.raises(ValueError, match="time series together with images"):
        front.prompt_input([{"role": "user", "content": content}])


def test_stray_placeholder_text_is_refused(front_ends, media: dict[str, Path]) -> None:
    """A user-typed `<IMG_CONTEXT>` would give the engine more feature slots than features."""
    front = front_ends("mini")
    content = [
        {"type": "image_url", "image_url": {"url": str(media["small"])}},
        {"type": "text", "text": f"what is {formats.IMG_CONTEXT}?"},
    ]
    with pytest.raises(ValueError, match="IMG_CONTEXT"):
        front.prompt_input([{"role": "user", "content": content}])


def test_unknown_processor_option_is_refused(front_ends, media: dict[str, Path]) -> None:
    front = front_ends("mini")
    with pytest.raises(ValueError, match="unknown mm_processor_kwargs"):
        front.prompt_input(
            _image_message(str(media["small"])), mm_processor_kwargs={"max_tiles": 3}
        )


def test_lmdeploy_video_backend_env_wins(front_ends, monkeypatch: pytest.MonkeyPatch) -> None:
    from lmdeploy.vl.media.image import ImageMediaIO
    from lmdeploy.vl.media.video import VideoMediaIO

    from interns1_plugin.lmdeploy.media import InternS1VideoLoader

    front_ends("mini")
    assert isinstance(VideoMediaIO(ImageMediaIO()).video_loader, InternS1VideoLoader)
    monkeypatch.setenv("LMDEPLOY_VIDEO_BACKEND", "cv2")
    assert type(VideoMediaIO(ImageMediaIO()).video_loader).__name__ == "OpenCVVideoLoader"


# ----------------------------------------------------------------------------- chat template


def test_enable_thinking_none_means_not_given(front_ends) -> None:
    """LMDeploy's request field `enable_thinking` reaches the plugin's template; None (not
    given) is thinking on, as in vLLM with the plugin's template."""
    from lmdeploy.serve.core.chat_runner import _chat_template_kwargs_from_request
    from lmdeploy.serve.openai.protocol import ChatCompletionRequest

    template = front_ends("mini").chat_template
    messages = [{"role": "user", "content": "Hi"}]

    def render(**fields: Any) -> str:
        request = ChatCompletionRequest(model="m", messages=messages, **fields)
        kwargs = _chat_template_kwargs_from_request(request) or {}
        return template.messages2prompt(messages, **kwargs)

    on, off, unset = render(enable_thinking=True), render(enable_thinking=False), render()
    assert unset == on == render(chat_template_kwargs={"enable_thinking": None})
    assert on.endswith(f"{formats.IM_START}assistant\n{formats.THINK_START}")
    assert off.endswith(f"{formats.IM_START}assistant\n")
    assert "expert reasoner" in on and "expert reasoner" not in off
    assert render(chat_template_kwargs={"enable_thinking": False}) == off


def test_chat_template_by_name(checkpoints: dict[str, Path]) -> None:
    """`--chat-template intern-s1-pro` builds the same template the match picks."""
    from lmdeploy.model import ChatTemplateConfig

    config = ChatTemplateConfig("intern-s1-pro", model_path=str(checkpoints["pro"]))
    template = config.chat_template(trust_remote_code=True)
    assert type(template).__qualname__ == "InternS1ProChatTemplate"
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hel"}]
    assert template.messages2prompt(messages).endswith(f"{formats.IM_START}assistant\nHel")


# ----------------------------------------------------------------------------- remote code


REMOTE_CODE = "import pathlib\npathlib.Path({marker!r}).write_text('remote code ran')\n"

REMOTE_CHILD = """
import asyncio, json, sys
import lmdeploy.serve.openai.api_server  # what `lmdeploy serve api_server` imports
from lmdeploy.model import get_chat_template
from lmdeploy.serve.processors import MultimodalProcessor
from lmdeploy.tokenizer import Tokenizer
from lmdeploy.vl.engine import ImageEncoder

path, image = sys.argv[1], sys.argv[2]
encoder = ImageEncoder(path, "pytorch", trust_remote_code=True)
template = get_chat_template(path, trust_remote_code=True)
tokenizer = Tokenizer(path, trust_remote_code=True)
processor = MultimodalProcessor(tokenizer, template, vl_encoder=encoder, backend="pytorch")
messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": image}}]}]
out = asyncio.run(processor.get_prompt_input(messages, do_preprocess=True))
print(json.dumps({
    "vision": type(encoder.model).__qualname__,
    "config": type(encoder.model.hf_config).__qualname__,
    "tokenizer": type(tokenizer.model.model).__qualname__,
    "items": len(out["multimodal"]),
}))
"""


@pytest.mark.parametrize("model", ["mini", "pro"])
def test_bundled_code_never_runs(model: str, tmp_path: Path, media: dict[str, Path]) -> None:
    """Checkpoints with `auto_map` and Python files that would leave a marker, served with
    `trust_remote_code=True` everywhere LMDeploy takes the flag."""
    from interns1_plugin.testing.tiny_interns1 import build_tiny_interns1, write_dynamic_tokenizer
    from interns1_plugin.testing.tiny_interns1_pro import build_tiny_interns1_pro

    marker = tmp_path / "remote-code-ran"
    if model == "mini":
        path = build_tiny_interns1(
            tmp_path / "model",
            "mini",
            dtype="float32",
            with_auto_map=True,
            tokenizer_writer=write_dynamic_tokenizer,
        )
        modules = ("configuration_interns1", "tokenization_interns1", "processing_interns1")
        auto_map = {"AutoTokenizer": ["tokenization_interns1.InternS1Tokenizer", None]}
        processor_map = {"AutoProcessor": "processing_interns1.InternS1Processor"}
    else:
        path = build_tiny_interns1_pro(tmp_path / "model", with_auto_map=True)
        modules = ("configuration_interns1_pro", "modeling_interns1_pro", "processing_interns1_pro")
        auto_map, processor_map = {}, {"AutoProcessor": "processing_interns1_pro.Processor"}
    for module in modules:
        (path / f"{module}.py").write_text(REMOTE_CODE.format(marker=str(marker)))
    for name, extra in (
        ("tokenizer_config.json", auto_map),
        ("preprocessor_config.json", processor_map),
    ):
        data = json.loads((path / name).read_text())
        data["auto_map"] = {**data.get("auto_map", {}), **extra}
        (path / name).write_text(json.dumps(data))
    script = tmp_path / "child.py"
    script.write_text(REMOTE_CHILD)
    report = _run_child(script, str(path), str(media["small"]))
    assert report["vision"] == PLUGIN_VISION[model].rsplit(".", 1)[-1]
    assert report["config"] in {"InternS1Config", "InternS1ProConfig"}
    assert report["items"] == 1
    if model == "mini":
        assert report["tokenizer"] == "InternS1Tokenizer"
    assert not marker.exists(), "the checkpoint's bundled code ran"
