"""LMDeploy engine models at tensor-parallel size N on CPU: one `python -m` child per rank.

Each rank does what LMDeploy's worker does before building a model (a process group, then
`DistContext.build` with the backend's collective backend, made current through
`get_dist_manager()`), selects the plain-torch reference backend (whose collectives are gloo),
builds and loads the checkpoint through `EngineSteps` (LMDeploy's loader keeps the rank's
shard) and runs one prefill. The parent only reads the logits back, so no rank shares the test
process: a hung all-reduce or a crashed rank cannot take the session with it.

Networking stays on the loopback interface: the ranks rendezvous through a `FileStore` (torch's
`TCPStore` listens on every interface, whatever host it is given) and gloo's own connections
use `lo` (`GLOO_SOCKET_IFNAME`), bound to 127.0.0.1 on ports the kernel picks as free.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

#: Environment of every rank: loopback only, one thread each (ranks share the cores), offline.
RANK_ENV: dict[str, str] = {
    "GLOO_SOCKET_IFNAME": "lo",
    "MASTER_ADDR": "127.0.0.1",
    "OMP_NUM_THREADS": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}
#: How much of a failed rank's log an error shows.
LOG_TAIL = 6000
#: A collective waiting longer than this for its peer raises in the rank instead of hanging.
COLLECTIVE_TIMEOUT = timedelta(seconds=120)
_MODULE = "interns1_plugin.testing.lmdeploy_tensor_parallel"


def prefill_at_tp(
    model_path: str | os.PathLike,
    request: Mapping[str, Any],
    world_size: int,
    workdir: Path,
    *,
    timeout: float,
) -> list[torch.Tensor]:
    """Every rank's prompt logits for `request` (`input_ids`, `multimodal`) at TP `world_size`.

    Raises `RuntimeError` with the failed rank's log tail as soon as any rank exits non-zero
    (the others are killed), or when `timeout` seconds pass. `workdir` must be fresh.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    torch.save(dict(request), workdir / "request.pt")
    env = os.environ | RANK_ENV
    ranks: list[subprocess.Popen] = []
    try:
        for rank in range(world_size):
            with (workdir / f"rank{rank}.log").open("w") as log:
                command = [sys.executable, "-m", _MODULE, str(rank), str(world_size)]
                command += [os.fspath(model_path), str(workdir)]
                ranks.append(
                    subprocess.Popen(
                        command,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=env,
                        start_new_session=True,
                    )
                )
        _wait(ranks, workdir, time.monotonic() + timeout)
    finally:
        for child in ranks:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
    return [torch.load(workdir / f"logits{rank}.pt") for rank in range(world_size)]


def _wait(ranks: list[subprocess.Popen], workdir: Path, deadline: float) -> None:
    """Until every rank exits 0; raise on the first failure or at the deadline."""
    while True:
        codes = [child.poll() for child in ranks]
        for rank, code in enumerate(codes):
            if code not in (None, 0):
                raise RuntimeError(f"rank {rank} exited with {code}:\n{_log_tail(workdir, rank)}")
        if all(code == 0 for code in codes):
            return
        if time.monotonic() > deadline:
            tails = "\n".join(f"rank {r}:\n{_log_tail(workdir, r)}" for r in range(len(ranks)))
            raise RuntimeError(f"tensor-parallel ranks timed out:\n{tails}")
        time.sleep(0.2)


def _log_tail(workdir: Path, rank: int) -> str:
    return (workdir / f"rank{rank}.log").read_text(errors="replace")[-LOG_TAIL:]


def run_rank(rank: int, world_size: int, model_path: str, workdir: Path) -> None:
    """One rank: process group, LMDeploy's dist context, the model's shard, one prefill."""
    import torch.distributed as dist
    from lmdeploy.pytorch.config import DistConfig
    from lmdeploy.pytorch.distributed import DistContext, get_dist_manager

    from interns1_plugin.testing.lmdeploy_engine_steps import EngineSteps
    from interns1_plugin.testing.lmdeploy_reference_backend import use_reference_backend

    torch.set_num_threads(1)
    # A process of its own: the selector stays patched until it exits.
    backend = use_reference_backend(SimpleNamespace(setattr=setattr))
    store = dist.FileStore(str(workdir / "store"), world_size)
    dist.init_process_group(
        backend.ccl_backend(),
        store=store,
        rank=rank,
        world_size=world_size,
        timeout=COLLECTIVE_TIMEOUT,
    )
    dist_config = DistConfig(tp=world_size)
    context = DistContext.build(
        rank=rank,
        dist_config=dist_config,
        ccl_backend=backend.ccl_backend(),
        communicator_builder=backend.build_communicator,
    )
    try:
        with get_dist_manager().context(context):
            engine = EngineSteps(model_path, dist_config=dist_config)
            request = torch.load(workdir / "request.pt", weights_only=False)
            logits = engine.prefill_request(request)
        torch.save(logits, workdir / f"logits{rank}.pt")
        # No rank tears its groups down while its peer may still be in a collective: gloo
        # aborts the process (SIGABRT, "terminate called") when a peer's pair closes under it.
        dist.barrier()
    finally:
        context.close()
        dist.destroy_process_group()


if __name__ == "__main__":
    run_rank(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], Path(sys.argv[4]))


__all__ = ["RANK_ENV", "prefill_at_tp", "run_rank"]
