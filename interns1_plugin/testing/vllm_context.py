"""A single-process vLLM distributed context, for tests that build vLLM layers without a server.

vLLM's parallel layers (linear shards, rotary embeddings, MoE experts) ask the distributed state
for their tensor- and pipeline-parallel share as they are constructed, so even a one-process
test needs a world. This sets up the smallest one: world size 1 over gloo (CPU-only, no NCCL),
with model parallelism initialised under a default `VllmConfig`, and tears it down afterwards so
a later module can build its own.

vLLM is imported only inside `single_rank_vllm`, so this module imports (and the tests that use
it can be collected and skipped) where vLLM is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from interns1_plugin.testing.server import free_port


@contextmanager
def single_rank_vllm() -> Iterator[None]:
    """Hold a one-rank gloo group with tensor and pipeline parallel size 1 for the `with` body.

    The rendezvous uses a fresh loopback port so concurrent test processes never collide. The
    group is destroyed on exit, even if the body raises, so whatever runs next in the process
    (another test module's context) starts from vLLM's uninitialised state.
    """
    from vllm.config import VllmConfig, set_current_vllm_config
    from vllm.distributed import (
        destroy_distributed_environment,
        destroy_model_parallel,
        init_distributed_environment,
        initialize_model_parallel,
    )

    init_distributed_environment(
        world_size=1,
        rank=0,
        local_rank=0,
        distributed_init_method=f"tcp://127.0.0.1:{free_port()}",
        backend="gloo",
    )
    try:
        with set_current_vllm_config(VllmConfig()):
            initialize_model_parallel(1, 1)
        yield
    finally:
        destroy_model_parallel()
        destroy_distributed_environment()
