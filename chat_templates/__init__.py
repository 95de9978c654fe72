"""Chat templates shipped with the plugin, found through the installed package.

The published checkpoints carry templates that differ from what the engines expect (for example
`enable_thinking=None` switching thinking off), so the plugin ships its own. They are package
data, read through importlib.resources so the lookup works the same from a source checkout, an
editable install or a wheel.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Final

#: Intern-S1 and Intern-S1-mini use "interns1"; Intern-S1-Pro uses "interns1_pro".
TEMPLATE_NAMES: Final[tuple[str, ...]] = ("interns1", "interns1_pro")


def _resource(name: str) -> Traversable:
    """Return the packaged template resource, rejecting unknown names early with the valid ones."""
    if name not in TEMPLATE_NAMES:
        raise ValueError(f"unknown chat template {name!r}; expected one of {TEMPLATE_NAMES}")
    return files(__name__) / f"{name}.jinja"


def template_path(name: str) -> Path:
    """Return the template's file path, for engines that take a path (`--chat-template PATH`).

    Raises RuntimeError when the package is not installed as plain files (e.g. imported from a
    zip), because such an install has no path to hand to an engine; use `read_template` there.
    """
    resource = _resource(name)
    if not isinstance(resource, Path):
        raise RuntimeError(
            f"chat template {name!r} is not a plain file ({resource!r}); use read_template()"
        )
    return resource


def read_template(name: str) -> str:
    """Return the template text, for callers that pass the template itself rather than a path."""
    return _resource(name).read_text(encoding="utf-8")


__all__ = ["TEMPLATE_NAMES", "read_template", "template_path"]
