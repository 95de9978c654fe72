"""The planner's one error type, so the command can tell bad input (exit 2) from a bug."""

from __future__ import annotations


class PlanError(ValueError):
    """A config or layout the planner cannot use; the command exits 2 on it."""


__all__ = ["PlanError"]
