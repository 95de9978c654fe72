"""`python -m interns1_plugin.lmdeploy.check_pth`: fails unless the start-up hook is installed.

The `.pth` file is written by the build (`build_pth.py`); in an editable install setuptools only
prints a warning when that step fails, leaving LMDeploy without the plugin and nothing failing.
Environment builds run this right after installing the plugin.
"""

from __future__ import annotations

import os
import site
import sys

from interns1_plugin.lmdeploy.import_hook import PTH_FILENAME, PTH_LINE


def installed_pth_files() -> list[str]:
    """The hook's `.pth` files with the expected line, in this interpreter's site-packages."""
    folders = [*site.getsitepackages(), site.getusersitepackages()]
    found = []
    for folder in folders:
        path = os.path.join(folder, PTH_FILENAME)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as file:
                if file.read().strip() == PTH_LINE:
                    found.append(path)
    return found


def main() -> int:
    found = installed_pth_files()
    if not found:
        print(
            f"interns1-plugin: {PTH_FILENAME} is missing from site-packages; LMDeploy would run "
            "without the plugin. Reinstall the package and read the build output.",
            file=sys.stderr,
        )
        return 1
    print(f"interns1-plugin: start-up hook installed ({found[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
