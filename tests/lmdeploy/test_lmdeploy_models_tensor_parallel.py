"""The plugin's LMDeploy engine models at tensor-parallel size 2 on CPU equal them at size 1.

Two ranks (child processes, gloo over loopback) each build the model under the plain-torch
reference backend with LMDeploy's dist context for TP=2, load the tiny checkpoint through
LMDeploy's loader (which keeps each rank's shard: attention heads, MLP and expert columns,
ViT heads and their qk-norm weights, vocab rows) and run one prefill of a text + image request
(+ a time series for Pro). Both ranks' logits must equal the single-process TP=1 logits of the
same request: float32, so only the split of the reductions differs.

Covered: Intern-S1 mini (dense, ViT without qk-norm), the Intern-S1-like MoE variant (ViT with
the all-reduced qk-norm, one KV head replicated over both ranks) and Pro (FoPE, grouped routing,
its vision tower and time-series encoder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("lmdeploy.pytorch.models.module_map", exc_type=ImportError)

import numpy as np  # noqa: E402

from interns1_plugin.testing.chat_media import content_parts, write_images  # noqa: E402

pytestmark = [pytest.mark.lmdeploy, pytest.mark.distributed]

#: float32 on both sides: TP only splits the sums of sharded matmuls and norms in two (~7e-6 seen).
LOGITS_ATOL = 1e-5
#: Both ranks import LMDeploy, build, load and prefill on shared cores.
RANKS_TIMEOUT_S = 300
TP = 2

#: case -> (model, user content parts: media by key, series as (key, sampling rate)).
CASES: dict[str, tuple[str, list[tuple[str, Any]]]] = {
    "mini": ("mini", [("image", "wide"), ("text", "Describe it.")]),
    "s1": ("s1", [("image", "wide"), ("text", "Describe it.")]),
    "pro": (
        "pro",
        [("image", "small"), ("time_series", ("mono", None)), ("text", "Both?")],
    ),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from interns1_plugin.testing.tiny_interns1 import build_tiny_interns1
    from interns1_plugin.testing.tiny_interns1_pro import build_tiny_interns1_pro

    root = tmp_path_factory.mktemp("lmdeploy-models-tp")
    built = {v: build_tiny_interns1(root / v, v, dtype="float32") for v in ("mini", "s1")}
    built["pro"] = build_tiny_interns1_pro(root / "pro")
    return built


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media")
    rng = np.random.default_rng(0)
    files = write_images(root, {"wide": (300, 600), "small": (100, 150)}, rng)
    files["mono"] = root / "mono.npy"
    np.save(files["mono"], np.sin(np.arange(6000) / 37.0) + 0.1 * rng.standard_normal(6000))
    return files


@pytest.mark.parametrize("case", CASES)
def test_tp2_prefill_logits_equal_tp1(
    case: str,
    checkpoints: dict[str, Path],
    media: dict[str, Path],
    engine_for: Any,
    front_end_for: Any,
    tmp_path: Path,
) -> None:
    from interns1_plugin.testing.lmdeploy_tensor_parallel import prefill_at_tp

    model, parts = CASES[case]
    path = checkpoints[model]
    request = front_end_for(path).prompt_input(
        [{"role": "user", "content": content_parts(parts, media)}],
        chat_template_kwargs={"enable_thinking": False},
    )
    assert request["multimodal"], "the request must carry its media"
    single = engine_for(path).prefill_request(request)
    ranks = prefill_at_tp(path, request, TP, tmp_path / "ranks", timeout=RANKS_TIMEOUT_S)
    diffs = [float((logits - single).abs().max()) for logits in ranks]
    print(f"{case}: {len(request['input_ids'])} tokens, max |logit diff| per rank {diffs}")
    assert all(logits.shape == single.shape for logits in ranks)
    assert max(diffs) < LOGITS_ATOL, diffs
    assert bool(single.isfinite().all())
    assert float(single.abs().max()) > 1e-1, "logits this small would hide a wrong shard"
