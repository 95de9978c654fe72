"""Per-request preprocessing options from LMDeploy's `mm_processor_kwargs`.

LMDeploy hands a request's `mm_processor_kwargs` to the vision model untouched, and its own
models read them per modality (`{"image": {...}, "video": {...}}`). vLLM's processors take the
same options flat (`max_patches`, `num_frames`, ...). Both spellings are accepted here, so one
request body works on both engines; an unknown key is an error rather than silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def request_options(
    kwargs: Mapping[str, Any] | None,
    *,
    flat: frozenset[str],
    nested: Mapping[str, Mapping[str, str]],
) -> dict[str, Any]:
    """The options of one request under their flat names.

    `flat` are the accepted top-level keys; `nested` maps a modality to `{key: flat name}` for
    its sub-dict. A value given twice (flat and nested) must agree. Raises ValueError naming
    the accepted keys for anything else.
    """
    options: dict[str, Any] = {}

    def put(name: str, value: Any, where: str) -> None:
        if name in options and options[name] != value:
            raise ValueError(
                f"mm_processor_kwargs gives {name!r} twice with different values "
                f"({options[name]!r} and {value!r} in {where})"
            )
        options[name] = value

    if kwargs is None:
        return options
    if not isinstance(kwargs, Mapping):
        raise ValueError(f"mm_processor_kwargs must be an object, got {type(kwargs).__name__}")
    for key, value in kwargs.items():
        if key in nested:
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise ValueError(f"mm_processor_kwargs[{key!r}] must be an object")
            names = nested[key]
            for sub_key, sub_value in value.items():
                if sub_key not in names:
                    raise ValueError(
                        f"unknown mm_processor_kwargs[{key!r}] key {sub_key!r}; "
                        f"accepted: {sorted(names)}"
                    )
                if sub_value is not None:
                    put(names[sub_key], sub_value, f"mm_processor_kwargs[{key!r}]")
        elif key in flat:
            if value is not None:
                put(key, value, "mm_processor_kwargs")
        else:
            accepted = sorted(flat) + [f"{m}: {{...}}" for m in sorted(nested)]
            raise ValueError(f"unknown mm_processor_kwargs key {key!r}; accepted: {accepted}")
    return options


def positive_int(options: Mapping[str, Any], name: str, default: int) -> int:
    """`options[name]` as a positive integer (the default when absent), else ValueError."""
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if int(value) <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return int(value)


def positive_float(options: Mapping[str, Any], name: str) -> float | None:
    """`options[name]` as a positive float, None when absent, else ValueError."""
    if name not in options:
        return None
    value = options[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


__all__ = ["positive_float", "positive_int", "request_options"]
