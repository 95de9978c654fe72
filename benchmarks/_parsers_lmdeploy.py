"""Which LMDeploy response parsers the benchmark measures: the built-ins and the plugin's adapter.

Both are resolved by the `intern-s1` names, as `lmdeploy serve api_server --reasoning-parser
intern-s1 --tool-call-parser intern-s1` resolves them, on subclasses so the registries' shared
classes stay untouched.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from interns1_plugin import formats


def lmdeploy_builtin_parser(tokenizer: Any) -> type:
    """LMDeploy 0.18's own parsers for `--reasoning-parser intern-s1 --tool-call-parser intern-s1`.

    Configured on a subclass so the registry's shared class is left untouched. If something
    (our adapter) has re-registered those names, LMDeploy's own classes are used directly, so this
    row always measures the built-ins.
    """
    from lmdeploy.serve.parsers import ResponseParserManager
    from lmdeploy.serve.parsers.reasoning_parser.reasoning_parser import ReasoningParser
    from lmdeploy.serve.parsers.response_parser import BaseResponseParser
    from lmdeploy.serve.parsers.tool_parser.internlm2_tool_parser import Internlm2ToolParser

    base = ResponseParserManager.get("default")
    if not _is_lmdeploy_own(base):
        base = BaseResponseParser

    builtin = _configured(base, "BuiltinResponseParser", tokenizer)
    if not _is_lmdeploy_own(builtin.reasoning_parser_cls):
        builtin.reasoning_parser_cls = ReasoningParser
    if not _is_lmdeploy_own(builtin.tool_parser_cls):
        builtin.tool_parser_cls = Internlm2ToolParser
    return builtin


def _configured(base: type, name: str, tokenizer: Any) -> type:
    """A subclass of `base` with the `intern-s1` names resolved, leaving `base` untouched."""
    cls = type(name, (base,), {})
    cls.set_parsers(
        reasoning_parser_name=formats.PARSER_NAME,
        tool_parser_name=formats.PARSER_NAME,
        tokenizer=tokenizer,
    )
    return cls


def _is_lmdeploy_own(cls: Any) -> bool:
    return cls is not None and cls.__module__.startswith("lmdeploy.")


def ours_via_lmdeploy_parser(tokenizer: Any) -> type | None:
    """The plugin's LMDeploy adapter configured as `api_server` would; None if there is none.

    The adapter's `register()` (run by its import hook when the wheel's .pth is installed, called
    here otherwise) puts our parsers into LMDeploy's registries under `intern-s1`. The names are
    then resolved exactly as `lmdeploy serve api_server --reasoning-parser intern-s1
    --tool-call-parser intern-s1` resolves them; the row is measured only if that reaches our code.
    """
    register = _adapter_register()
    if register is None:
        return None
    register()
    from lmdeploy.serve.parsers import ResponseParserManager

    base = ResponseParserManager.get("default")

    ours = _configured(base, "OursResponseParser", tokenizer)
    resolved = (base, ours.reasoning_parser_cls, ours.tool_parser_cls)
    if not any(c is not None and c.__module__.startswith("interns1_plugin") for c in resolved):
        return None
    return ours


def _adapter_register() -> Callable[[], None] | None:
    """`register` of `interns1_plugin.lmdeploy` (package or its `register` module), if present."""
    for name in ("interns1_plugin.lmdeploy.register", "interns1_plugin.lmdeploy"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        register = getattr(module, "register", None)
        if callable(register):
            return register
    return None
