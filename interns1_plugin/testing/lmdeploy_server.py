"""Start and stop a local `lmdeploy serve api_server` for end-to-end tests.

The same process handling as `server.VllmServer` (127.0.0.1 only, its own process group, the log
tail when start-up dies, stopped by its own process id), with LMDeploy's command line. Started as
`python -m lmdeploy serve api_server` with this interpreter, which is what the `lmdeploy` script
runs; `/health` answers once the engine is up.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from interns1_plugin.testing.server import LOOPBACK, VllmServer

#: The PyTorch engine, a context that fits the tiny checkpoints, a small share of GPU memory.
LMDEPLOY_DEFAULT_ARGS: tuple[str, ...] = (
    "--backend",
    "pytorch",
    "--session-len",
    "4096",
    "--cache-max-entry-count",
    "0.2",
)


class LMDeployServer(VllmServer):
    """`lmdeploy serve api_server MODEL` on 127.0.0.1; `extra_args` follow the defaults."""

    def __init__(
        self,
        model: str | Path,
        extra_args: Sequence[str] = (),
        *,
        defaults: Sequence[str] = LMDEPLOY_DEFAULT_ARGS,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, extra_args, defaults=defaults, **kwargs)

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "lmdeploy",
            "serve",
            "api_server",
            self.model,
            "--server-name",
            LOOPBACK,
            "--server-port",
            str(self.port),
            *self.args,
        ]


__all__ = ["LMDEPLOY_DEFAULT_ARGS", "LMDeployServer"]
