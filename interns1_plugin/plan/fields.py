"""Validated reads of `config.json` fields.

Why: a config with a missing or mistyped size must stop the planner with a message naming the
key (exit 2), not with a TypeError deep in the arithmetic.
"""

from __future__ import annotations

from typing import Any

from interns1_plugin.plan.errors import PlanError


def read_section(config: dict[str, Any], key: str) -> dict[str, Any]:
    """A nested object such as `text_config`; PlanError when absent or not an object."""
    value = config.get(key)
    if not isinstance(value, dict):
        raise PlanError(f"config.json has no `{key}` object")
    return value


def read_int(
    section: dict[str, Any], key: str, where: str, default: int | None = None, minimum: int = 1
) -> int:
    """An integer >= `minimum` (booleans refused); `where` names the section in the error."""
    value = section.get(key, default)
    if value is None:
        raise PlanError(f"`{where}.{key}` is missing")
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PlanError(f"`{where}.{key}` must be an integer >= {minimum}, got {value!r}")
    return value


def read_pair(section: dict[str, Any], key: str, where: str, default: int) -> tuple[int, int]:
    """A size given either as one positive integer or as a [rows, cols] pair of them."""
    value = section.get(key, default)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value, value
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        return value[0], value[1]
    raise PlanError(f"`{where}.{key}` must be a positive integer or a pair of them, got {value!r}")


__all__ = ["read_int", "read_pair", "read_section"]
