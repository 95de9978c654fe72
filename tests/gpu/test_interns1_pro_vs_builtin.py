"""The plugin's Intern-S1-Pro model against vLLM's built-in one on the same tiny weights (GPU only).

vLLM's built-in `InternS1ProForConditionalGeneration` reuses Qwen3-VL's processing, which loads
transformers' `Qwen3VLProcessor` (its image processor imports torchvision, which installs only
beside a CUDA torch), so this comparison runs on GPU machines. Each side runs in a child process
(this file run as a script), the built-in with `INTERNS1_PLUGIN_KEEP_BUILTIN_MODEL=1`, in
bfloat16 and float32, on text prompts and on a prompt with one image.

What the built-in needs beyond the tiny checkpoint, added to a copy of it: a
`processor_config.json` naming `Qwen3VLProcessor` (without it `AutoProcessor` returns the bare
tokenizer), and a `video_preprocessor_config.json` whose `video_processor_type` transformers knows
(`Qwen3VLVideoProcessor`; the plugin's own type picks its video loader and means nothing to
transformers). The token names are transformers' defaults (`<|image_pad|>`, `<|vision_start|>`,
...), which the tiny tokenizer has. Weights and the other files are the same.

Positions: the built-in subclasses `Qwen3VLForConditionalGeneration`, whose
`get_mrope_input_positions` would give image tokens 3-D (t, h, w) positions, but vLLM only asks
for those when `ModelConfig.uses_mrope` is true, and that reads the config, not the class: it
looks for `mrope_section` in the text config's rope parameters (vLLM 0.32,
`vllm/config/model.py` `ModelConfig.uses_mrope` -> `vllm/transformers_utils/config.py`
`uses_mrope` / `_mrope_section`; the runners branch on it in `v1/worker/gpu_model_runner.py`,
`self.uses_mrope = model_config.uses_mrope` and `_init_mrope_positions`, and
`v1/worker/gpu/mm/rope.py` `get_rope_state`). Intern-S1-Pro's `rope_scaling` holds only the FoPE
keys, so both sides run plain 1-D positions for text and image tokens alike, and the image prompt
is compared as exactly as the text ones. Each child reports `uses_mrope`; the test asserts it
is false, so a checkpoint or vLLM change that turns M-RoPE on shows here rather than as a
mysterious logprob gap.

The image is 64 x 96 pixels, a multiple of the 32-pixel merge block inside the pixel bounds, so
neither processor resamples it (the plugin resizes with PIL, transformers with torchvision: a
resized image would differ by interpolation, not by model).

vLLM 0.32's built-in constructor fails on every device (it reads `self.model_config`, which only
Qwen3-VL's skipped constructor sets); the built-in child sets that attribute first, see
`patch_builtin_model_config`. float32 is the strict comparison; bfloat16 allows for its rounding.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.vllm,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None or importlib.util.find_spec("torchvision") is None,
        reason="needs vLLM with torchvision (the built-in model's processor imports it)",
    ),
]

PLUGIN_MODULE = "interns1_plugin.vllm.models.interns1_pro"
BUILTIN_MODULE = "vllm.model_executor.models.interns1_pro"
KEEP_BUILTIN_ENV = "INTERNS1_PLUGIN_KEEP_BUILTIN_MODEL"
IMAGE_PROMPT = "Look at <|vision_start|><|image_pad|><|vision_end|> and tell"
PROMPTS: dict[str, str] = {
    "short": "Hello world, this is",
    "fox": "The quick brown fox jumps over the lazy",
    "gases": "Noble gases are helium, neon, argon, krypton, xenon and radon; they",
    "image": IMAGE_PROMPT,
}
IMAGE_SIZE = (64, 96)  # (height, width): whole merge blocks, nothing to resample
MAX_TOKENS = 8
TOP_LOGPROBS = 5
#: Chosen-token logprob tolerance: the language models share vLLM's kernels, the vision towers are
#: separate implementations, so bfloat16 rounds differently there (about 2e-2 on an image prompt).
LOGPROB_ATOL = {"float32": 1e-3, "bfloat16": 1e-1}
CHILD_TIMEOUT_S = 1200


def _image() -> Any:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    height, width = IMAGE_SIZE
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def prepare_builtin_checkpoint(source: Path, target: Path) -> Path:
    """A copy of `source` with the processor files transformers' `AutoProcessor` needs."""
    shutil.copytree(source, target)
    video_path = target / "video_preprocessor_config.json"
    video = json.loads(video_path.read_text())
    video["video_processor_type"] = "Qwen3VLVideoProcessor"
    video.pop("image_processor_type", None)
    video_path.write_text(json.dumps(video, indent=2))
    (target / "processor_config.json").write_text(
        json.dumps({"processor_class": "Qwen3VLProcessor"}, indent=2)
    )
    return target


# ----------------------------------------------------------------------------- vLLM child


def patch_builtin_model_config() -> None:
    """Give the built-in model the `model_config` attribute its constructor reads.

    vLLM 0.32's built-in `__init__` skips Qwen3-VL's (which sets `self.model_config`) yet calls
    `build_mm_input_norm(self.model_config)`, so it fails with an AttributeError on any device.
    Setting the attribute first is what Qwen3-VL's constructor does; harmless where vLLM sets it.
    """
    from vllm.model_executor.models import interns1_pro as builtin_module

    model_class = builtin_module.InternS1ProForConditionalGeneration
    original = model_class.__init__
    if getattr(original, "_sets_model_config", False):
        return

    def __init__(self: Any, *, vllm_config: Any, prefix: str = "") -> None:
        object.__setattr__(self, "model_config", vllm_config.model_config)
        original(self, vllm_config=vllm_config, prefix=prefix)

    __init__._sets_model_config = True  # type: ignore[attr-defined]
    model_class.__init__ = __init__


def run_vllm(model_dir: Path, dtype: str, *, builtin: bool) -> dict[str, Any]:
    """Greedy generation with logprobs through `vllm.LLM`, in this (child) process."""
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    if builtin:
        os.environ[KEEP_BUILTIN_ENV] = "1"
    from vllm import LLM, SamplingParams

    from interns1_plugin.configs import register_with_transformers

    register_with_transformers()
    if builtin:
        patch_builtin_model_config()  # the engine builds the model in this process
    limits = {"image": 1, "video": 0}
    if not builtin:
        limits["time_series"] = 0  # the built-in knows no time-series modality
    llm = LLM(
        model=str(model_dir),
        dtype=dtype,
        enforce_eager=True,
        max_model_len=1024,
        max_num_seqs=4,
        kv_cache_memory_bytes=256 << 20,
        limit_mm_per_prompt=limits,
        seed=0,
    )
    requests: list[Any] = []
    for text in PROMPTS.values():
        if text == IMAGE_PROMPT:
            requests.append({"prompt": text, "multi_modal_data": {"image": _image()}})
        else:
            requests.append(text)
    params = SamplingParams(temperature=0.0, max_tokens=MAX_TOKENS, logprobs=TOP_LOGPROBS)
    outputs = llm.generate(requests, params, use_tqdm=False)
    results = {}
    for name, output in zip(PROMPTS, outputs, strict=True):
        completion = output.outputs[0]
        results[name] = {
            "prompt_ids": list(output.prompt_token_ids),
            "tokens": list(completion.token_ids),
            "top": [{str(t): lp.logprob for t, lp in step.items()} for step in completion.logprobs],
        }
    return {
        "model_module": llm.apply_model(lambda model: type(model).__module__),
        "uses_mrope": llm.llm_engine.model_config.uses_mrope,
        "results": results,
    }


# ----------------------------------------------------------------------------- the test


def _generate(model_dir: Path, out: Path, dtype: str, builtin: bool) -> dict[str, Any]:
    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    if builtin:
        env[KEEP_BUILTIN_ENV] = "1"  # before vLLM loads the plugin's entry point
    else:
        env.pop(KEEP_BUILTIN_ENV, None)
    args = [sys.executable, __file__, str(model_dir), str(out), dtype]
    child = subprocess.run(
        [*args, "builtin"] if builtin else args,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        env=env,
    )
    assert child.returncode == 0, child.stderr[-6000:]
    return json.loads(out.read_text())


def compare(reference: dict[str, Any], tested: dict[str, Any], atol: float) -> tuple[int, float]:
    """vLLM's `check_logprobs_close` rule plus the chosen tokens' logprobs.

    Tokens must agree up to the first divergence, where each side's token must be in the other's
    top logprobs; returns (steps that agreed, largest chosen-token logprob difference).
    """
    worst = 0.0
    pairs = zip(reference["tokens"], tested["tokens"], strict=True)
    for step, (ref_token, test_token) in enumerate(pairs):
        ref_top, test_top = reference["top"][step], tested["top"][step]
        if ref_token != test_token:
            assert str(ref_token) in test_top and str(test_token) in ref_top, (
                f"step {step}: {ref_token} (built-in) vs {test_token} (plugin), "
                f"not in each other's top {TOP_LOGPROBS}"
            )
            return step, worst
        diff = abs(ref_top[str(ref_token)] - test_top[str(test_token)])
        worst = max(worst, diff)
        assert diff <= atol, f"step {step}: token {ref_token} logprobs differ by {diff}"
    return len(reference["tokens"]), worst


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_greedy_logprobs_match_the_builtin_model(dtype: str, tmp_path: Path) -> None:
    from interns1_plugin.testing.tiny_interns1_pro import build_tiny_interns1_pro

    model_dir = build_tiny_interns1_pro(tmp_path / "model", dtype=dtype)
    builtin_dir = prepare_builtin_checkpoint(model_dir, tmp_path / "model-builtin")
    builtin = _generate(builtin_dir, tmp_path / "builtin.json", dtype, builtin=True)
    plugin = _generate(model_dir, tmp_path / "plugin.json", dtype, builtin=False)

    assert builtin["model_module"] == [BUILTIN_MODULE]
    assert plugin["model_module"] == [PLUGIN_MODULE]
    assert builtin["uses_mrope"] is False and plugin["uses_mrope"] is False, (
        "M-RoPE is on: image positions are no longer comparable (see the module doc)"
    )
    for name in PROMPTS:
        ref, test = builtin["results"][name], plugin["results"][name]
        assert test["prompt_ids"] == ref["prompt_ids"], f"{name}: prompt expansion differs"
        agreed, worst = compare(ref, test, LOGPROB_ATOL[dtype])
        assert agreed >= 1, f"{name}: first token differs"
        print(f"{dtype} {name}: {agreed} tokens agree, max logprob difference {worst:.2e}")


if __name__ == "__main__":
    result = run_vllm(Path(sys.argv[1]), sys.argv[3], builtin=sys.argv[4:] == ["builtin"])
    Path(sys.argv[2]).write_text(json.dumps(result))
