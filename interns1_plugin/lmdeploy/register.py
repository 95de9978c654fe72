"""Put the plugin's `intern-s1` parsers into LMDeploy's parser registries.

LMDeploy has no plugin discovery: `import_hook` calls `register()` in every process right after
LMDeploy's parser package is imported. LMDeploy 0.18 registers `intern-s1` itself (tool: its
InternLM2 parser; reasoning: a legacy name that `validate_parser_names` rewrites to `default`), so
ours replace those with `force=True`, and `intern-s1` is taken off the legacy-name table.
`api_server` always builds the response parser named `default`; ours is a subclass of LMDeploy's
that changes nothing unless intern-s1 parsers are configured.

The plugin's config, processor and tokenizer classes are registered with transformers at the same
moment: `lmdeploy serve api_server` imports the parser package before it builds its engine and
tokenizer, so the checkpoint then loads through them, never through its bundled code.
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType

from interns1_plugin import formats

PARSERS_PACKAGE = "lmdeploy.serve.parsers"
RESPONSE_PARSER_NAME = "default"
# Where LMDeploy keeps the table `validate_parser_names` reads (the package re-exports it).
_LEGACY_TABLE_MODULES = (
    f"{PARSERS_PACKAGE}.reasoning_parser",
    f"{PARSERS_PACKAGE}.reasoning_parser.reasoning_parser",
)
_LEGACY_TABLE = "LEGACY_REASONING_PARSER_NAMES"

# A child of LMDeploy's logger, so our lines go through its handlers and level.
logger = logging.getLogger("lmdeploy.interns1_plugin")


def _module(name: str) -> ModuleType:
    # `import lmdeploy.serve.x` breaks: `lmdeploy.serve` is also a function in `lmdeploy`.
    return importlib.import_module(name)


def _drop_legacy_name() -> bool:
    """Stop `validate_parser_names` rewriting `intern-s1` to `default`; True if it changed."""
    changed = False
    for module_name in _LEGACY_TABLE_MODULES:
        module = _module(module_name)
        names = getattr(module, _LEGACY_TABLE, ())
        if formats.PARSER_NAME in names:
            setattr(module, _LEGACY_TABLE, tuple(n for n in names if n != formats.PARSER_NAME))
            changed = True
    return changed


def register() -> None:
    """Register ours under `intern-s1` (and the response parser as `default`); idempotent."""
    _register_parsers()
    _register_transformers_classes()


def _register_transformers_classes() -> None:
    from interns1_plugin import configs, tokenizer

    configs.register_with_transformers()
    tokenizer.register_with_transformers()


def _register_parsers() -> None:
    # The built-in parser packages first: their decorators register `intern-s1` without `force`
    # and would fail if ours were already there.
    reasoning_registry = _module(f"{PARSERS_PACKAGE}.reasoning_parser").ReasoningParserManager
    tool_registry = _module(f"{PARSERS_PACKAGE}.tool_parser").ToolParserManager
    response_registry = _module(PARSERS_PACKAGE).ResponseParserManager

    from interns1_plugin.lmdeploy.reasoning_parser import InternS1ReasoningParser
    from interns1_plugin.lmdeploy.response_parser import InternS1ResponseParser
    from interns1_plugin.lmdeploy.tool_parser import InternS1ToolParser

    wanted = (
        (reasoning_registry, formats.PARSER_NAME, InternS1ReasoningParser),
        (tool_registry, formats.PARSER_NAME, InternS1ToolParser),
        (response_registry, RESPONSE_PARSER_NAME, InternS1ResponseParser),
    )
    changed = _drop_legacy_name()
    for registry, name, cls in wanted:
        current = registry.module_dict.get(name)
        if current is cls:
            continue
        if name == RESPONSE_PARSER_NAME and current not in (None, *InternS1ResponseParser.__mro__):
            logger.warning("interns1-plugin replaces response parser %r (%s)", name, current)
        registry.register_module(name=name, force=True, module=cls)
        changed = True
    if changed:
        logger.info(
            "interns1-plugin registered LMDeploy reasoning parser %r -> %s, tool parser %r -> %s, "
            "response parser %r -> %s",
            formats.PARSER_NAME,
            InternS1ReasoningParser.__qualname__,
            formats.PARSER_NAME,
            InternS1ToolParser.__qualname__,
            RESPONSE_PARSER_NAME,
            InternS1ResponseParser.__qualname__,
        )
