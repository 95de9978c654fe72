"""Register the plugin with LMDeploy in every process, with nothing for the user to import.

LMDeploy has no plugin discovery, so the wheel ships `PTH_FILENAME` into site-packages; Python
runs its line at every start-up. That line must stay cheap and must never break start-up: it
only installs `sys.meta_path` finders, one per LMDeploy module the plugin waits for. Each finder
ignores every import until its module is imported, lets it execute, calls its registration
function from `interns1_plugin.lmdeploy.register`, and removes itself:

| watched module                       | registered right after it executes                  |
|--------------------------------------|-----------------------------------------------------|
| `lmdeploy.model`                     | chat templates, ahead of LMDeploy's (`MODELS`)       |
| `lmdeploy.hf_configs`                | config / tokenizer classes with transformers         |
| `lmdeploy.serve.parsers`             | `intern-s1` parsers (and the transformers classes)   |
| `lmdeploy.vl.model.builder`          | vision models, ahead of LMDeploy's (`VISION_MODELS`) |
| `lmdeploy.pytorch.models.module_map` | engine model classes (`CUSTOM_MODULE_MAP`)           |

Each is the module that defines or consumes the registry, so registration happens after
LMDeploy's own entries exist and before LMDeploy reads them, in the API server and in spawned
engine processes alike. A process that never imports LMDeploy pays a few string comparisons per
import. Set `INTERNS1_PLUGIN_DISABLE_LMDEPLOY_HOOK=1` to switch the hook off.

Start-up cost: only `sys` is imported at module level, and the plugin's standard-library-only
`env_flags` when the hook installs (`os` and `sys` are already loaded by `site`); `typing` and
`logging` are left for type checkers and failures, and nothing from LMDeploy is imported.

Importing this module needs the standard library alone: the build (`build_pth.py`) executes it by
path to read `PTH_FILENAME` / `PTH_LINE` while the plugin is not importable yet.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any

DISABLE_ENV = "INTERNS1_PLUGIN_DISABLE_LMDEPLOY_HOOK"
#: The parser package (the first module the hook watched; kept for callers of this name).
WATCHED_MODULE = "lmdeploy.serve.parsers"
PTH_FILENAME = "interns1_plugin_lmdeploy.pth"
#: The one line of the shipped .pth file (site.py executes lines that start with `import`).
PTH_LINE = "import interns1_plugin.lmdeploy.import_hook as h; h.install()"
_REGISTER_MODULE = "interns1_plugin.lmdeploy.register"


def _warn(message: str) -> None:
    """Log the current exception; a failing hook must never stop the interpreter."""
    import logging

    logging.getLogger(__name__).warning(message, exc_info=True)


def hook_disabled() -> bool:
    from interns1_plugin.env_flags import env_flag

    return env_flag(DISABLE_ENV)


def _call_register(function: str, what: str) -> None:
    """Run `register.<function>()`; logs instead of raising."""
    try:
        import importlib

        getattr(importlib.import_module(_REGISTER_MODULE), function)()
    except Exception:
        _warn(f"interns1-plugin could not register its LMDeploy {what}")


class _RegisterAfterExec:
    """Loader wrapper: runs the real loader, then the registration, then steps out of the way."""

    def __init__(self, loader: Any, after: Callable[[], None]) -> None:
        self._loader = loader
        self._after = after

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # Put the real loader back first, so the module looks exactly as if never hooked.
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        self._after()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _AfterImportFinder:
    """Meta-path finder that only ever answers for `watched`, and only once."""

    watched: str = ""
    #: Function of `interns1_plugin.lmdeploy.register` to call, and what it registers (for logs).
    function: str = ""
    what: str = ""

    @classmethod
    def register(cls) -> None:
        _call_register(cls.function, cls.what)

    def find_spec(
        self, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != self.watched:
            return None
        _uninstall(type(self))
        try:
            spec = _find_with_other_finders(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _RegisterAfterExec(spec.loader, self.register)
            return spec
        except Exception:
            _warn("interns1-plugin LMDeploy import hook failed")
            return None


class LMDeployParsersFinder(_AfterImportFinder):
    watched = WATCHED_MODULE
    function = "register"
    what = "parsers"


class LMDeployVisionModelsFinder(_AfterImportFinder):
    watched = "lmdeploy.vl.model.builder"
    function = "register_vision_models"
    what = "vision models"


class LMDeployChatTemplatesFinder(_AfterImportFinder):
    watched = "lmdeploy.model"
    function = "register_chat_templates"
    what = "chat templates"


class LMDeployConfigsFinder(_AfterImportFinder):
    watched = "lmdeploy.hf_configs"
    function = "register_transformers_classes"
    what = "config and tokenizer classes"


class LMDeployModuleMapFinder(_AfterImportFinder):
    watched = "lmdeploy.pytorch.models.module_map"
    function = "register_engine_models"
    what = "engine model classes"


FINDERS: tuple[type[_AfterImportFinder], ...] = (
    LMDeployChatTemplatesFinder,
    LMDeployConfigsFinder,
    LMDeployParsersFinder,
    LMDeployVisionModelsFinder,
    LMDeployModuleMapFinder,
)


def _find_with_other_finders(
    fullname: str, path: Any, target: ModuleType | None
) -> ModuleSpec | None:
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        spec = find_spec(fullname, path, target)
        if spec is not None:
            return spec
    return None


def install() -> None:
    """Called by the .pth line at start-up: cheap, idempotent, never raises.

    A watched module that is already imported gets its registration at once.
    """
    try:
        if hook_disabled():
            return
        for finder in FINDERS:
            if any(isinstance(f, finder) for f in sys.meta_path):
                continue
            if finder.watched in sys.modules:
                finder.register()
            else:
                sys.meta_path.insert(0, finder())
    except Exception:
        _warn("interns1-plugin could not install its LMDeploy import hook")


def _uninstall(finder: type[_AfterImportFinder]) -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, finder)]


def uninstall() -> None:
    """Remove every finder of this hook."""
    _uninstall(_AfterImportFinder)
