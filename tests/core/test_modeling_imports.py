"""`interns1_plugin.modeling` is engine-agnostic: none of its modules may import an engine.

Each module is imported in a fresh interpreter, so what an earlier test imported cannot hide a
dependency.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import interns1_plugin.modeling

MODULES = sorted(
    f"interns1_plugin.modeling.{info.name}"
    for info in pkgutil.iter_modules(interns1_plugin.modeling.__path__)
)
#: Top-level packages a modeling module must not import, even indirectly.
FORBIDDEN = ("vllm", "lmdeploy", "transformers")


def test_modules_are_listed() -> None:
    assert "interns1_plugin.modeling.pro_vision_positions" in MODULES
    assert "interns1_plugin.modeling.time_series_encoder" in MODULES


@pytest.mark.parametrize("module", MODULES)
def test_imports_without_an_engine(module: str) -> None:
    code = (
        f"import sys; import {module}; "
        f"loaded = [n for n in {FORBIDDEN!r} if n in sys.modules]; "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
