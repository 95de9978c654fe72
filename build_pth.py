"""setuptools `build_py` that also puts the plugin's start-up `.pth` file in site-packages.

LMDeploy has no plugin discovery, so the plugin registers its parsers from a `.pth` file, which
Python only reads from site-packages itself. Its name and line are defined once, in
`interns1_plugin/lmdeploy/import_hook.py` (read here by path: only the standard library runs).
A regular build writes the file to `build_lib`, the wheel's root. An editable build (PEP 660)
installs no build_lib; setuptools' `editable_wheel` points the `install` command's `install_lib`
at the unpacked editable wheel, so the file goes there and lands in site-packages too.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from setuptools.command.build_py import build_py

_HOOK_MODULE = Path(__file__).parent / "interns1_plugin" / "lmdeploy" / "import_hook.py"


def _pth_name_and_line() -> tuple[str, str]:
    spec = importlib.util.spec_from_file_location("_interns1_import_hook", _HOOK_MODULE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PTH_FILENAME, module.PTH_LINE


class BuildPyWithPth(build_py):
    """`build_py`, plus the `.pth` file at the root of the (editable or regular) wheel."""

    def run(self) -> None:
        super().run()
        name, line = _pth_name_and_line()
        target = Path(self._pth_dir(), name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(line + "\n", encoding="utf-8")

    def _pth_dir(self) -> str:
        if self.editable_mode:
            return self.get_finalized_command("install").install_lib
        return self.build_lib

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        if self.editable_mode:
            return outputs
        return [*outputs, str(Path(self.build_lib, _pth_name_and_line()[0]))]

    def get_source_files(self) -> list[str]:
        """Source files for the sdist: this hook is needed to build from it."""
        return [*super().get_source_files(), Path(__file__).name]
