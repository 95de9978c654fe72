"""The servers the hostile cases go to: one per tiny checkpoint, restarted when a case kills one.

Also whether vLLM's built-in Intern-S1 models can be served here for the comparison column.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from _hostile_procfs import stat_fields

from interns1_plugin.demo import PARSER_FLAGS
from interns1_plugin.testing.server import VllmServer

BUILTIN_ENV = "INTERNS1_PLUGIN_KEEP_BUILTIN_MODEL"
NOT_RUNNABLE = "not runnable here (needs torchvision/GPU)"
MODELS = {"mini": "tiny-interns1-mini", "pro": "tiny-intern-s1-pro"}

#: Server flags per checkpoint, after the CPU defaults. The tiny mini's 8,192 positions hold
#: 16 one-tile frames (32 would be 8,256 tokens), so a long video can be served, not only
#: refused as too long; the Pro's context holds a 10^6-point series (as in its server test).
SERVER_ARGS: dict[str, list[str]] = {
    "mini": [
        *PARSER_FLAGS,
        "--max-model-len",
        "8192",
        "--kv-cache-memory-bytes",
        "128M",
        "--limit-mm-per-prompt",
        json.dumps({"image": 2, "video": 1}),
        "--mm-processor-kwargs",
        json.dumps({"num_frames": 16}),
    ],
    "pro": [*PARSER_FLAGS, "--max-model-len", "4096"],
}


class ServerPool:
    """One running server per checkpoint, restarted when a case kills it."""

    def __init__(self, checkpoints: dict[str, Path], workdir: Path, env: dict[str, str]) -> None:
        self.checkpoints = checkpoints
        self.workdir = workdir
        self.env = env
        self.servers: dict[str, VllmServer] = {}
        self.startup_s: dict[str, list[float]] = {}
        self.logs: dict[str, list[str]] = {}

    def get(self, kind: str) -> VllmServer:
        server = self.servers.get(kind)
        if server is not None and alive(server):
            return server
        if server is not None:
            server.stop()
        runs = self.logs.setdefault(kind, [])
        log = self.workdir / f"{kind}-{len(runs)}.log"
        args = [*SERVER_ARGS[kind], "--served-model-name", MODELS[kind]]
        server = VllmServer(
            self.checkpoints[kind], args, log_path=log, env=self.env, use_vllm_cli=True
        )
        server.start()
        runs.append(str(log))
        self.startup_s.setdefault(kind, []).append(round(server.startup_seconds or 0.0, 1))
        self.servers[kind] = server
        return server

    def stop(self, kind: str | None = None) -> None:
        for name in [kind] if kind else list(self.servers):
            server = self.servers.pop(name, None)
            if server is not None:
                server.stop()


def alive(server: VllmServer) -> bool:
    """Whether the server's leader process still runs (a zombie counts as dead; not reaped)."""
    try:
        stat = Path(f"/proc/{server.pid}/stat").read_bytes()
    except (OSError, TypeError):
        return False
    return stat_fields(stat)[0] not in (b"Z", b"X")


def builtin_availability() -> tuple[bool, str]:
    """Whether vLLM's built-in Intern-S1 models are to be measured, and why not if not."""
    if os.environ.get(BUILTIN_ENV, "").strip().lower() not in {"1", "true", "yes", "on"}:
        return False, f"{NOT_RUNNABLE}; set {BUILTIN_ENV}=1 where it can run"
    from serving import builtin_importable

    importable, reason = builtin_importable()
    return importable, reason if importable else f"{NOT_RUNNABLE}: {reason}"
