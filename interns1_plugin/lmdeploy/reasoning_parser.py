"""LMDeploy `--reasoning-parser intern-s1`.

LMDeploy 0.18's reasoning parsers only describe the reasoning section (its tags, and whether the
output starts inside it); `InternS1ResponseParser` does the splitting with the plugin's core. What
this class adds over LMDeploy's generic parser is the per-request thinking switch: with
`enable_thinking` false the prompt has no open `<think>`, so the output starts as content.
"""

from __future__ import annotations

from typing import Any

from lmdeploy.serve.parsers.reasoning_parser import ReasoningParser

from interns1_plugin import formats
from interns1_plugin.thinking import thinking_enabled


class InternS1ReasoningParser(ReasoningParser):
    """Built by LMDeploy once per request with the request's chat-template kwargs."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.thinking = thinking_enabled(kwargs)

    @classmethod
    def get_reasoning_open_tag(cls) -> str:
        return formats.THINK_START

    @classmethod
    def get_reasoning_close_tag(cls) -> str:
        return formats.THINK_END

    def starts_in_reasoning_mode(self) -> bool:
        """The Intern-S1 prompt ends in `<think>` exactly when thinking is on."""
        return self.thinking
