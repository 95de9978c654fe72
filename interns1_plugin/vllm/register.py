"""The `vllm.general_plugins` entry point.

vLLM calls `register()` in every process it starts (API server, engine core, workers), possibly
more than once, so it must be idempotent and cheap: everything is registered lazily as
"module:Class" strings and imported only when vLLM asks for it.
"""

from __future__ import annotations

import importlib.util
import logging

from interns1_plugin import formats

_PACKAGE = "interns1_plugin.vllm"

REASONING_PARSERS: dict[str, tuple[str, str]] = {
    formats.PARSER_NAME: (f"{_PACKAGE}.reasoning_parser", "InternS1ReasoningParser"),
}
TOOL_PARSERS: dict[str, tuple[str, str]] = {
    formats.PARSER_NAME: (f"{_PACKAGE}.tool_parser", "InternS1ToolParser"),
}

_registered = False


def _logger() -> logging.Logger:
    from vllm.logger import init_logger

    # Under vLLM's logger namespace so its handlers show our lines beside its own.
    return init_logger("vllm.plugins.interns1")


def register() -> None:
    """Register the plugin's parsers with vLLM; a no-op without vLLM or when already done."""
    global _registered
    if _registered or importlib.util.find_spec("vllm") is None:
        return
    from vllm.reasoning import ReasoningParserManager
    from vllm.tool_parsers import ToolParserManager

    for name, (module, cls) in REASONING_PARSERS.items():
        ReasoningParserManager.register_lazy_module(name, module, cls)
    for name, (module, cls) in TOOL_PARSERS.items():
        ToolParserManager.register_lazy_module(name, module, cls)
    _registered = True
    _logger().info(
        "interns1-plugin registered reasoning parsers %s and tool parsers %s",
        sorted(REASONING_PARSERS),
        sorted(TOOL_PARSERS),
    )
