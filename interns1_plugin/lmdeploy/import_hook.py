"""Register the LMDeploy parsers in every process, with nothing for the user to import.

LMDeploy has no plugin discovery, so the wheel ships `PTH_FILENAME` into site-packages; Python
runs its line at every start-up. That line must stay cheap and must never break start-up: it
only installs a `sys.meta_path` finder, which ignores every import until LMDeploy's parser
package (`lmdeploy.serve.parsers`) is imported, then calls `register()` right after that package
has executed, and removes itself. A process that never imports LMDeploy pays one string
comparison per import. Set `INTERNS1_PLUGIN_DISABLE_LMDEPLOY_HOOK=1` to switch the hook off.

Start-up cost: only `os` and `sys` are imported here (both already loaded by `site`); `typing`
and `logging` are left for type checkers and failures, and nothing from LMDeploy is imported.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any

DISABLE_ENV = "INTERNS1_PLUGIN_DISABLE_LMDEPLOY_HOOK"
WATCHED_MODULE = "lmdeploy.serve.parsers"
PTH_FILENAME = "interns1_plugin_lmdeploy.pth"
#: The one line of the shipped .pth file (site.py executes lines that start with `import`).
PTH_LINE = "import interns1_plugin.lmdeploy.import_hook as h; h.install()"


def _warn(message: str) -> None:
    """Log the current exception; a failing hook must never stop the interpreter."""
    import logging

    logging.getLogger(__name__).warning(message, exc_info=True)


def hook_disabled() -> bool:
    return os.environ.get(DISABLE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _register() -> None:
    """Called once LMDeploy's parser package is in place; logs instead of raising."""
    try:
        from interns1_plugin.lmdeploy.register import register

        register()
    except Exception:
        _warn("interns1-plugin could not register its LMDeploy parsers")


class _RegisterAfterExec:
    """Loader wrapper: runs the real loader, then `register()`, then steps out of the way."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # Put the real loader back first, so the module looks exactly as if never hooked.
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        _register()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class LMDeployParsersFinder:
    """Meta-path finder that only ever answers for `WATCHED_MODULE`, and only once."""

    def find_spec(
        self, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != WATCHED_MODULE:
            return None
        uninstall()
        try:
            spec = _find_with_other_finders(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _RegisterAfterExec(spec.loader)
            return spec
        except Exception:
            _warn("interns1-plugin LMDeploy import hook failed")
            return None


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
    """Called by the .pth line at start-up: cheap, idempotent, never raises."""
    try:
        if hook_disabled() or any(isinstance(f, LMDeployParsersFinder) for f in sys.meta_path):
            return
        if WATCHED_MODULE in sys.modules:
            _register()
            return
        sys.meta_path.insert(0, LMDeployParsersFinder())
    except Exception:
        _warn("interns1-plugin could not install its LMDeploy import hook")


def uninstall() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, LMDeployParsersFinder)]
