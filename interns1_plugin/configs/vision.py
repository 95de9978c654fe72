"""The `interns1_vision` config: InternViT as Intern-S1 and Intern-S1-mini ship it.

The published `vision_config` carries every key of transformers' InternVL vision config plus three
training-only keys (`drop_path_rate`, `dropout`, `initializer_factor`). Subclassing transformers'
`InternVLVisionConfig` keeps the math keys in one place, so the native InternVL vision tower can be
built from this config without remote code.
"""

from __future__ import annotations

from typing import Any

from transformers import InternVLVisionConfig

#: Keys the checkpoints carry for training only; kept so a config round-trips unchanged.
TRAINING_ONLY_KEYS = ("drop_path_rate", "dropout", "initializer_factor")


class InternS1VisionConfig(InternVLVisionConfig):
    """InternViT config under the checkpoint's own `model_type`.

    `norm_type` is `layer_norm` (mini, InternViT-300M, attention bias, no qk-norm) or `rms_norm`
    (Intern-S1, InternViT-6B, qk-norm over the full hidden size, no attention bias).
    """

    model_type = "interns1_vision"
    base_config_key = "vision_config"

    def __init__(
        self,
        drop_path_rate: float = 0.0,
        dropout: float = 0.0,
        initializer_factor: float = 0.1,
        **kwargs: Any,
    ) -> None:
        self.drop_path_rate = drop_path_rate
        self.dropout = dropout
        self.initializer_factor = initializer_factor
        super().__init__(**kwargs)


__all__ = ["TRAINING_ONLY_KEYS", "InternS1VisionConfig"]
