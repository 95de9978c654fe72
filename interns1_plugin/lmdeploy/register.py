"""Put the plugin's classes into LMDeploy's registries: parsers, vision models, chat templates.

LMDeploy has no plugin discovery: `import_hook` calls each entry point here in every process,
right after the LMDeploy module that holds (or consumes) the registry has been imported:

- `register()` after `lmdeploy.serve.parsers`: the `intern-s1` reasoning and tool parsers.
  LMDeploy 0.18 registers `intern-s1` itself (tool: its InternLM2 parser; reasoning: a legacy
  name that `validate_parser_names` rewrites to `default`), so ours replace those with
  `force=True`, and `intern-s1` is taken off the legacy-name table. `api_server` always builds the
  response parser named `default`; ours is a subclass of LMDeploy's that changes nothing unless
  intern-s1 parsers are configured.
- `register_vision_models()` after `lmdeploy.vl.model.builder`: the plugin's vision models for
  Intern-S1 / mini and Intern-S1-Pro. `load_vl_model` takes the first `VISION_MODELS` entry whose
  `match` accepts the architecture, in registry order, and LMDeploy's own models match the same
  architectures; ours are therefore moved to the front of the registry.
- `register_chat_templates()` after `lmdeploy.model`: `intern-s1` / `intern-s1-pro` chat
  templates, also moved to the front of `MODELS`, where `get_chat_template` asks in order.
- `register_engine_models()` after `lmdeploy.pytorch.models.module_map`: the plugin's
  PyTorch-engine model classes for Intern-S1 / mini and Intern-S1-Pro, by fully qualified name
  in `CUSTOM_MODULE_MAP`, whose entries LMDeploy merges over its own `MODULE_MAP` when it picks
  the class for a checkpoint's architecture (engine processes included, as the hook runs there).
- `register_transformers_classes()` after `lmdeploy.hf_configs` (and with the parsers): the
  plugin's config, processor and tokenizer classes, so every LMDeploy process (API server,
  engine workers) loads the checkpoint through them, never through its bundled code.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from types import ModuleType
from typing import Any

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
    register_transformers_classes()


def register_transformers_classes() -> None:
    """The plugin's config, processor and tokenizer classes with transformers; idempotent."""
    from interns1_plugin.lmdeploy.checkpoint import register_transformers_classes as register_

    register_()


def put_first(registry: Any, entries: Sequence[tuple[str, type]]) -> bool:
    """Register `entries` (name, class) in an mmengine registry, ahead of every other entry.

    LMDeploy walks `registry.module_dict` in insertion order and takes the first match, so the
    order is rewritten in place (the dict object itself is what LMDeploy reads). True if the
    registry changed.
    """
    table = registry.module_dict
    wanted = dict(entries)
    if list(table.items())[: len(wanted)] == list(wanted.items()):
        return False
    for name, cls in wanted.items():
        registry.register_module(name=name, force=True, module=cls)
    rest = [(name, cls) for name, cls in table.items() if name not in wanted]
    table.clear()
    table.update(wanted)
    table.update(rest)
    return True


def register_vision_models() -> None:
    """The plugin's Intern-S1 and Intern-S1-Pro vision models, first in `VISION_MODELS`."""
    from lmdeploy.vl.model.base import VISION_MODELS

    from interns1_plugin.lmdeploy.vision_interns1 import InternS1VisionModel
    from interns1_plugin.lmdeploy.vision_interns1_pro import InternS1ProVisionModel

    register_transformers_classes()
    models = (InternS1VisionModel, InternS1ProVisionModel)
    if put_first(VISION_MODELS, [(f"interns1_plugin.{m.__name__}", m) for m in models]):
        logger.info(
            "interns1-plugin registered LMDeploy vision models %s ahead of LMDeploy's own",
            ", ".join(f"{m.__qualname__} ({', '.join(m._arch)})" for m in models),
        )


def register_engine_models() -> None:
    """The plugin's engine model classes in LMDeploy's `CUSTOM_MODULE_MAP`; idempotent.

    Only names go in (LMDeploy imports the class when it builds a model), so this runs while
    `lmdeploy.pytorch.models` is still importing without touching it. The configs must load
    through the plugin's classes, which drop the hub's `auto_map` (LMDeploy would otherwise pick
    the class by `auto_map` rather than by architecture).
    """
    from lmdeploy.pytorch.models.module_map import CUSTOM_MODULE_MAP

    from interns1_plugin.lmdeploy.models import KEEP_BUILTIN_ENV, MODULE_MAP, keep_builtin

    if keep_builtin():
        logger.info(
            "interns1-plugin leaves LMDeploy's own %s models in place (%s=1)",
            ", ".join(MODULE_MAP),
            KEEP_BUILTIN_ENV,
        )
        return
    register_transformers_classes()
    if all(CUSTOM_MODULE_MAP.get(arch) == target for arch, target in MODULE_MAP.items()):
        return
    CUSTOM_MODULE_MAP.update(MODULE_MAP)
    logger.info(
        "interns1-plugin serves %s with its own LMDeploy PyTorch-engine models",
        ", ".join(MODULE_MAP),
    )


def register_chat_templates() -> None:
    """The plugin's `intern-s1` / `intern-s1-pro` chat templates, first in `MODELS`.

    Only the classes are registered here: `lmdeploy.model` is imported by `import lmdeploy`,
    so this must stay cheap; the tokenizer loads when LMDeploy builds a template for a model.
    """
    from lmdeploy.model import MODELS

    from interns1_plugin.lmdeploy.chat_template import CHAT_TEMPLATES

    if put_first(MODELS, [(t.name, t) for t in CHAT_TEMPLATES]):
        logger.debug(
            "interns1-plugin registered LMDeploy chat templates %s",
            ", ".join(repr(t.name) for t in CHAT_TEMPLATES),
        )


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
