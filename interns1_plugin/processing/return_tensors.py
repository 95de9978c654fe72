"""The `return_tensors` option of the plugin's transformers processors, in one place.

Every output is built as torch tensors; `"np"` turns them (and lists of them) into NumPy arrays,
anything else leaves them as they are.
"""

from __future__ import annotations

from typing import Any

import torch


def as_return_tensors(data: dict[str, Any], return_tensors: str | None) -> dict[str, Any]:
    """`data` in the kind of arrays `return_tensors` asks for."""
    if return_tensors != "np":
        return data
    return {key: _to_numpy(value) for key, value in data.items()}


def _to_numpy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.numpy()
    if isinstance(value, list) and value and isinstance(value[0], torch.Tensor):
        return [item.numpy() for item in value]
    return value


__all__ = ["as_return_tensors"]
