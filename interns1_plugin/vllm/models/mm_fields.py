"""Reading the multimodal fields vLLM hands to a model's `embed_multimodal`.

vLLM batches an item field into one tensor when every item's shape agrees and into a list of
tensors when it does not, so the models accept both.
"""

from __future__ import annotations

import torch


def flat(value: object) -> torch.Tensor:
    """A flat field (items concatenated along dim 0) as one tensor."""
    if isinstance(value, torch.Tensor):
        return value
    return torch.cat(list(value))  # type: ignore[arg-type]


__all__ = ["flat"]
