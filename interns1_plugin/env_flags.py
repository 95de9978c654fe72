"""How the plugin reads its on/off environment variables, in one place.

Standard library only: the LMDeploy start-up hook reads a flag in every Python process.
"""

from __future__ import annotations

import os

#: Values that switch a flag on (case and surrounding spaces ignored); anything else is off.
TRUE_VALUES = frozenset({"1", "true", "yes", "on"})


def env_flag(name: str) -> bool:
    """Whether the environment variable `name` is set to one of `TRUE_VALUES`."""
    return os.environ.get(name, "").strip().lower() in TRUE_VALUES


__all__ = ["TRUE_VALUES", "env_flag"]
