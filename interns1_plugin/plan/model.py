"""A whole checkpoint as the planner sees it: `config.json` (a file or a preset) read into a
`ModelShape` with its parameter counts.

Why: the family's two config layouts (Intern-S1 / mini with InternViT, Pro with a Qwen3-VL-style
ViT and a time-series encoder) are told apart here, once, so the rest of the planner only sees
sizes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interns1_plugin.plan.encoders import (
    internvit_params,
    projector_params,
    qwen3_vl_vision_params,
    time_series_params,
)
from interns1_plugin.plan.errors import PlanError
from interns1_plugin.plan.fields import read_int, read_section
from interns1_plugin.plan.parameters import stage_tensors
from interns1_plugin.plan.shapes import Quant, TextShape, parse_quant, parse_text
from interns1_plugin.plan.sharding import Shard
from interns1_plugin.plan.units import BF16_BYTES

INTERNS1_TYPES = ("interns1",)
PRO_TYPES = ("interns1_pro", "interns1_1")


@dataclass(frozen=True)
class ModelShape:
    """What the planner knows about one checkpoint."""

    name: str
    model_type: str
    text: TextShape
    quant: Quant
    vision_params: int
    other_params: int
    notes: tuple[str, ...] = ()

    @property
    def language_params(self) -> int:
        tensors = stage_tensors(self.text, range(self.text.layers), True, True, Shard())
        return sum(t.params for t in tensors)

    @property
    def total_params(self) -> int:
        return self.language_params + self.vision_params + self.other_params

    @property
    def checkpoint_bytes(self) -> int:
        tensors = stage_tensors(self.text, range(self.text.layers), True, True, Shard())
        language = sum(t.nbytes(self.quant) for t in tensors)
        return language + BF16_BYTES * (self.vision_params + self.other_params)


def parse_config(config: Any, name: str = "model") -> ModelShape:
    """An Intern-S1 / mini / Pro `config.json`, already loaded; PlanError on anything else."""
    if not isinstance(config, dict):
        raise PlanError("config.json must hold a JSON object")
    model_type = config.get("model_type")
    text = read_section(config, "text_config")
    vision = read_section(config, "vision_config")
    shape = parse_text(text, config)
    notes: list[str] = []
    other = 0
    if model_type in INTERNS1_TYPES:
        ratio = config.get("downsample_ratio", 0.5)
        if not isinstance(ratio, int | float) or isinstance(ratio, bool) or not 0 < ratio <= 1:
            raise PlanError(f"`downsample_ratio` must be in (0, 1], got {ratio!r}")
        vision_hidden = read_int(vision, "hidden_size", "vision_config")
        vision_params = internvit_params(vision) + projector_params(
            vision_hidden, shape.hidden, ratio
        )
    elif model_type in PRO_TYPES:
        vision_params = qwen3_vl_vision_params(vision)
        ts = config.get("ts_config")
        if isinstance(ts, dict):
            other = time_series_params(ts)
            notes.append(
                "time-series encoder counted roughly from ts_config, whole on every rank "
                "(vLLM's built-in Pro model does not load it)"
            )
        else:
            notes.append("no ts_config: the time-series encoder is not counted")
    else:
        raise PlanError(
            f"model_type {model_type!r} is not an Intern-S1 family config "
            f"(expected one of {', '.join(INTERNS1_TYPES + PRO_TYPES)})"
        )
    return ModelShape(
        name=name,
        model_type=str(model_type),
        text=shape,
        quant=parse_quant(config, text),
        vision_params=vision_params,
        other_params=other,
        notes=tuple(notes),
    )


def load_config(path: str | Path) -> dict[str, Any]:
    """Read config.json, turning I/O and JSON errors into PlanError."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlanError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PlanError(f"{path} is not valid JSON: {exc}") from exc


__all__ = ["INTERNS1_TYPES", "PRO_TYPES", "ModelShape", "load_config", "parse_config"]
