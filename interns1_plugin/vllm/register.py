"""The `vllm.general_plugins` entry point.

vLLM calls `register()` in every process it starts (API server, engine core, workers), possibly
more than once, so it is idempotent and cheap: parsers and models are registered lazily as
"module:Class" strings and imported only when vLLM asks for them. Config and tokenizer classes
are the exception (transformers' and vLLM's registries take classes): they import transformers,
which every vLLM process has loaded already.
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


def _register_parsers() -> None:
    from vllm.reasoning import ReasoningParserManager
    from vllm.tool_parsers import ToolParserManager

    for name, (module, cls) in REASONING_PARSERS.items():
        ReasoningParserManager.register_lazy_module(name, module, cls)
    for name, (module, cls) in TOOL_PARSERS.items():
        ToolParserManager.register_lazy_module(name, module, cls)
    _logger().info(
        "interns1-plugin registered reasoning parsers %s and tool parsers %s",
        sorted(REASONING_PARSERS),
        sorted(TOOL_PARSERS),
    )


def _register_configs() -> None:
    """Config and tokenizer classes where vLLM looks first, so they win under --trust-remote-code.

    vLLM consults its own config registry before transformers' AutoConfig and then treats the
    class as local code; transformers' Auto* registration covers the tokenizer and processor
    lookups that follow.
    """
    from vllm.transformers_utils.config import _CONFIG_REGISTRY

    from interns1_plugin import tokenizer
    from interns1_plugin.configs import (
        InternS1_1Config,
        InternS1Config,
        InternS1ProConfig,
        register_with_transformers,
    )

    register_with_transformers()
    tokenizer.register_with_transformers()
    for config_class in (InternS1Config, InternS1ProConfig, InternS1_1Config):
        _CONFIG_REGISTRY[config_class.model_type] = config_class


def register() -> None:
    """Register the plugin with vLLM; a no-op without vLLM or when already done.

    Runs in every vLLM process (API server, engine core, workers): a registration made only in
    the parent is not seen by the workers.
    """
    global _registered
    if _registered or importlib.util.find_spec("vllm") is None:
        return
    from interns1_plugin.vllm import structured_output, time_series_part
    from interns1_plugin.vllm.models import register_models

    _register_parsers()
    _register_configs()
    register_models(_logger())
    # The engine-core process compiles grammars: xgrammar must learn the dynamic vocabulary there.
    structured_output.install()
    # The API server parses chat requests: Intern-S1-Pro's time_series parts are read there.
    time_series_part.install()
    _registered = True
