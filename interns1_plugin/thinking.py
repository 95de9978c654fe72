"""One rule for whether a request has thinking on, shared by templates' callers and parsers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def thinking_enabled(chat_template_kwargs: Mapping[str, Any] | None) -> bool:
    """`enable_thinking` missing or None means the model's default: thinking on.

    The official template treats None as off while the engines treat a missing value as on; the
    plugin's templates and parsers both use this rule so prompt and parsing always agree.
    """
    if not chat_template_kwargs:
        return True
    value = chat_template_kwargs.get("enable_thinking")
    return True if value is None else bool(value)
