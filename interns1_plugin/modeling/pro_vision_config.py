"""What Intern-S1-Pro's vision tower reads from its `vision_config`, checked once for both engines.

The tower is Qwen3-VL's without deepstack; some of its constants are fixed by the architecture
rather than carried by the config.
"""

from __future__ import annotations

import math
from typing import Any

#: Qwen3-VL hard-codes this eps for every LayerNorm of the tower; the config does not carry it.
LAYER_NORM_EPS = 1e-6
#: Rotary base of the vision rope when the config names none.
ROPE_THETA = 10000.0


def check_no_deepstack(config: Any) -> None:
    """Refuse a config that asks for deepstack mergers: Intern-S1-Pro's tower has none."""
    if getattr(config, "deepstack_visual_indexes", None):
        raise NotImplementedError(
            "deepstack_visual_indexes is set, but Intern-S1-Pro's vision tower has no "
            f"deepstack mergers: {list(config.deepstack_visual_indexes)}"
        )


def position_grid_side(config: Any) -> int:
    """Side of the learned square position table (`num_position_embeddings` rows)."""
    count = config.num_position_embeddings
    side = math.isqrt(count)
    if side * side != count:
        raise ValueError(f"num_position_embeddings {count} is not a square")
    return side


def vision_rope_theta(config: Any) -> float:
    """The vision rope's base: `rope_parameters.rope_theta`, else Qwen3-VL's default."""
    rope_parameters = getattr(config, "rope_parameters", None) or {}
    return float(rope_parameters.get("rope_theta", ROPE_THETA))


__all__ = [
    "LAYER_NORM_EPS",
    "ROPE_THETA",
    "check_no_deepstack",
    "position_grid_side",
    "vision_rope_theta",
]
