"""Load a checkpoint into an LMDeploy engine model and record what reached it and what did not.

The model is built as `EngineSteps` builds it, every parameter set to NaN, then loaded through
LMDeploy's own `load_model_weights` with a spy on the model's `load_weights`: a test can then
compare the tensor names the model was given with the checkpoint's (renamed by the model's
`rename_weight`, as LMDeploy's loader does) and list the parameters nothing filled.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass
class WeightLoad:
    model: Any
    #: Names `load_weights` received, in order.
    seen: list[str]
    #: The checkpoint's tensor names through `rename_weight`, shard by shard.
    expected: list[str]
    #: Parameters still holding NaN after loading.
    unfilled: list[str]


def load_recorded(model_path: str | os.PathLike) -> WeightLoad:
    """Build, NaN-fill and load the checkpoint's model; see the module doc."""
    from lmdeploy.pytorch.weight_loader.model_weight_loader import load_model_weights
    from safetensors import safe_open

    from interns1_plugin.testing.lmdeploy_engine_steps import EngineSteps

    path = Path(model_path)
    model = EngineSteps(path, load_weights=False).model
    for param in model.parameters():
        # Through float32: FP8 parameters take NaN by conversion.
        param.data.copy_(torch.full_like(param, float("nan"), dtype=torch.float32))
    seen: list[str] = []
    load = model.load_weights

    def spy(weights: Iterable[tuple[str, torch.Tensor]]) -> None:
        def names() -> Iterator[tuple[str, torch.Tensor]]:
            for name, tensor in weights:
                seen.append(name)
                yield name, tensor

        load(names())

    model.load_weights = spy
    load_model_weights(model, str(path))
    expected = []
    for shard in sorted(path.glob("*.safetensors")):
        with safe_open(str(shard), "pt") as file:
            expected += [model.rename_weight(key) for key in file.keys()]  # noqa: SIM118
    unfilled = [n for n, p in model.named_parameters() if p.float().isnan().any()]
    return WeightLoad(model, seen, expected, unfilled)


__all__ = ["WeightLoad", "load_recorded"]
