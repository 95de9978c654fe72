"""Suite-wide: `gpu` tests run only where CUDA is available."""

from __future__ import annotations

import importlib.util

import pytest


def _cuda_available() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if any("gpu" in item.keywords for item in items) and not _cuda_available():
        skip = pytest.mark.skip(reason="needs a CUDA device")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def stress_n(request: pytest.FixtureRequest) -> int:
    """The parser fuzzers' stress size; skips unless the run asked for stress (`-m stress` or
    the environment variable)."""
    from interns1_plugin.testing.fuzz_settings import STRESS_COUNT_ENV, stress_count

    count = stress_count(request.config.getoption("markexpr") or "")
    if count is None:
        pytest.skip(f"stress run: select with -m stress or set {STRESS_COUNT_ENV}")
    return count
