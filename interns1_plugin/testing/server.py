"""Start and stop a local `vllm serve` (OpenAI-compatible server) for end-to-end tests and demos.

Tests need a real server process to prove the plugin's parsers work where users meet them, but
a stray server would leak a port, CPU and memory. `VllmServer` binds to 127.0.0.1 only, runs in
its own process group, fails fast with the log tail when start-up dies, and stops what it
started, by its own process id, on exit.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

LOOPBACK = "127.0.0.1"

#: Defaults that let a tiny checkpoint start quickly on a CPU-only machine.
CPU_DEFAULT_ARGS: tuple[str, ...] = (
    "--kv-cache-memory-bytes",
    "64M",
    "--max-model-len",
    "2048",
    "--max-num-seqs",
    "4",
    "--enforce-eager",
)

#: Environment for the server: V1 multiprocessing off, every address vLLM picks pinned to
#: loopback, no usage reporting, and the hub offline (models are local directories; pass `env`
#: to override). VLLM_CPU_KVCACHE_SPACE is removed so it cannot override --kv-cache-memory-bytes.
_SERVER_ENV: dict[str, str] = {
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    "VLLM_HOST_IP": LOOPBACK,
    "VLLM_LOOPBACK_IP": LOOPBACK,
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}
_UNSET_ENV = ("VLLM_CPU_KVCACHE_SPACE",)


def _flag_name(token: str) -> str | None:
    """`--max-model-len` for `--max-model-len` or `--max-model-len=8192`; None for a value."""
    return token.split("=", 1)[0] if token.startswith("--") else None


def merge_args(defaults: Sequence[str], extra: Sequence[str]) -> list[str]:
    """`defaults` then `extra`, without the defaults (flag and values) that `extra` overrides."""
    given = {name for name in map(_flag_name, extra) if name}
    kept: list[str] = []
    dropping = False
    for token in defaults:
        name = _flag_name(token)
        if name is not None:
            dropping = name in given
        if not dropping:
            kept.append(token)
    return [*kept, *extra]


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port the OS reports free on `host` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class ServerStartError(RuntimeError):
    """The server process died or did not become healthy in time."""


class VllmServer:
    """A vLLM OpenAI-compatible server subprocess on 127.0.0.1, usable as a context manager.

    Started as `python -m vllm.entrypoints.openai.api_server` with this interpreter rather than
    `vllm serve`: the CLI looks up the `vllm` distribution's metadata, which a `vllm-cpu`
    install lacks, while the module works with any build (it only warns that it is deprecated).
    `extra_args` go after the defaults (`CPU_DEFAULT_ARGS` unless `defaults` replaces them); a
    default whose flag `extra_args` also gives is left out, so the printed command says each
    flag once.
    """

    def __init__(
        self,
        model: str | Path,
        extra_args: Sequence[str] = (),
        *,
        port: int | None = None,
        startup_timeout: float = 300.0,
        stop_timeout: float = 15.0,
        log_path: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        defaults: Sequence[str] = CPU_DEFAULT_ARGS,
        use_vllm_cli: bool = False,
    ) -> None:
        self.model = str(model)
        # `vllm serve` (what users type) needs a distribution named `vllm`; see the class doc.
        self.use_vllm_cli = use_vllm_cli
        self.port = port if port is not None else free_port()
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.log_path = Path(log_path) if log_path else _temp_log_path()
        self.args = merge_args(defaults, extra_args)
        self._env = env
        self._process: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None

    @property
    def base_url(self) -> str:
        """Root URL of the server, e.g. `http://127.0.0.1:8123` (append `/v1/...`)."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id of the server (also its process-group id), or None when not started."""
        return self._process.pid if self._process else None

    def command(self) -> list[str]:
        """The argv the server is started with."""
        if self.use_vllm_cli:
            launcher = [str(Path(sys.executable).with_name("vllm")), "serve", self.model]
        else:
            launcher = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model"]
            launcher.append(self.model)
        return [
            *launcher,
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            *self.args,
        ]

    def start(self) -> VllmServer:
        """Launch the server and block until `/health` answers 200."""
        if self._process is not None:
            raise RuntimeError("server already started")
        env = {k: v for k, v in os.environ.items() if k not in _UNSET_ENV}
        env |= _SERVER_ENV | dict(self._env or {})
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        try:
            self._wait_healthy(started)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _wait_healthy(self, started: float) -> None:
        """Poll `/health`; raise with the log tail if the process exits or time runs out."""
        assert self._process is not None
        while True:
            code = _exit_status(self._process)
            if code is not None:
                raise ServerStartError(
                    f"vLLM server exited with status {code} during start-up; log tail:\n"
                    + self.log_tail()
                )
            if _health_ok(self.base_url + "/health"):
                return
            if time.monotonic() - started > self.startup_timeout:
                raise ServerStartError(
                    f"vLLM server not healthy after {self.startup_timeout:.0f}s; log tail:\n"
                    + self.log_tail()
                )
            time.sleep(0.5)

    def stop(self) -> None:
        """Terminate the server's process group, then kill it after the grace period.

        The leader is left unreaped until its group has been killed, so its id cannot have been
        reused by an unrelated process group when the signals are sent.
        """
        process, self._process = self._process, None
        if process is None:
            return
        if process.returncode is None:
            if not _wait_exit(process, 0):
                _signal_group(process.pid, signal.SIGTERM)
                if not _wait_exit(process, self.stop_timeout):
                    _signal_group(process.pid, signal.SIGKILL)
                    _wait_exit(process, self.stop_timeout)
            # Children the server spawned share its group; none may outlive it.
            _signal_group(process.pid, signal.SIGKILL)
        process.wait()

    def log_tail(self, lines: int = 60) -> str:
        """The last `lines` lines of the server log."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "<no log>"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> VllmServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _temp_log_path() -> Path:
    handle, name = tempfile.mkstemp(prefix="vllm-server-", suffix=".log")
    os.close(handle)
    return Path(name)


def _health_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _exit_status(process: subprocess.Popen[bytes]) -> int | None:
    """The exit status if the process has ended, without reaping it (None while running)."""
    if process.returncode is not None:
        return process.returncode
    try:
        info = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return -1
    return None if info is None else info.si_status


def _wait_exit(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait up to `timeout` seconds for the process to end, leaving it unreaped."""
    deadline = time.monotonic() + timeout
    while _exit_status(process) is None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    """Signal the process group the server leads (it was started with a new session)."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
