"""Shared machinery of the distributed vLLM tests: run vLLM in a script child, compare layouts.

The distributed tests never import vLLM's engine in the pytest process: a rank crash, a hung
all-reduce or a leaked worker would take the whole session with it. Each test file instead runs
itself as a script in a child process that leads its own process group (so a timeout kills its
ranks too), writes its results as JSON and exits. pytest runs with `--import-mode=importlib`,
so the test files cannot share this code by importing each other; it lives here.

The protocol between parent and child is fixed: the script is called as
`script MODEL_DIR OUT_JSON PAYLOAD_JSON`; `child_main` reads that on the child side and
`run_script` builds it on the parent side.

Nothing here imports vLLM or pytest at module level, so the package stays importable without
either; pytest is imported only to fail a test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

#: How much of a child's stderr a failure message shows: enough for vLLM's traceback and the
#: worker that died, not the whole start-up log.
STDERR_TAIL = 6000

#: Environment of every child: in-process engine core (the ranks are the only other processes),
#: loopback-only addresses, no usage reporting, hub offline.
CHILD_ENV: dict[str, str] = {
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    "VLLM_HOST_IP": "127.0.0.1",
    "VLLM_LOOPBACK_IP": "127.0.0.1",
    "VLLM_NO_USAGE_STATS": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}

#: The CPU layouts: engine arguments on top of the single-rank ones.
CPU_LAYOUTS: dict[str, dict[str, Any]] = {
    "tp2": {"tensor_parallel_size": 2},
    # vLLM's CPU runner allocates the buffer a later stage receives activations into only in
    # its warm-up, which it skips in eager mode, so the second stage fails its first step
    # (`assert self.intermediate_tensors is not None`). Tracing once (mode 2,
    # DYNAMO_TRACE_ONCE) with dynamo's eager backend turns the warm-up on without compiling
    # kernels; the ops stay the same.
    "pp2": {
        "pipeline_parallel_size": 2,
        "enforce_eager": False,
        "compilation_config": {"mode": 2, "backend": "eager"},
    },
    "tp2_ep": {"tensor_parallel_size": 2, "enable_expert_parallel": True},
}


def _fail(message: str) -> NoReturn:
    """Fail the calling test; pytest is imported here so the module does not need it."""
    import pytest

    pytest.fail(message)


# --- layouts and environment -------------------------------------------------------------------


def layout_ranks(layout: Mapping[str, Any]) -> int:
    """Processes a layout starts: tensor times pipeline parallel size."""
    return layout.get("tensor_parallel_size", 1) * layout.get("pipeline_parallel_size", 1)


def layout_engine_args(layout: Mapping[str, Any]) -> dict[str, Any]:
    """The layout's engine arguments, with vLLM's multiprocessing executor when it has ranks.

    One process per rank (not Ray, not in-process) keeps the ranks killable with the child's
    process group; a single-rank layout needs no executor choice.
    """
    args = dict(layout)
    if layout_ranks(layout) > 1:
        args.setdefault("distributed_executor_backend", "mp")
    return args


def cpu_rank_env(ranks: int) -> dict[str, str]:
    """`VLLM_CPU_OMP_THREADS_BIND`: one core per rank, reusing cores when there are too few.

    Set in the child before the engine starts, so each CPU rank's OpenMP pool gets a core of
    its own instead of every rank claiming the same ones.
    """
    cores = sorted(os.sched_getaffinity(0))
    return {"VLLM_CPU_OMP_THREADS_BIND": "|".join(str(cores[r % len(cores)]) for r in range(ranks))}


def child_env(extra: Mapping[str, str] | None = None, drop: Iterable[str] = ()) -> dict[str, str]:
    """This process's environment for a child: `CHILD_ENV` and `extra` on top, `drop` removed.

    Dropping lets a test undo a CI-wide setting that would contradict its engine arguments
    (e.g. `VLLM_CPU_KVCACHE_SPACE` against `kv_cache_memory_bytes`).
    """
    dropped = set(drop)
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    return env | CHILD_ENV | dict(extra or {})


# --- child side ----------------------------------------------------------------------------------


def run_layouts(
    run: Callable[[Path, dict[str, Any]], dict[str, Any]],
    model_dir: Path,
    layouts: Mapping[str, dict[str, Any]],
) -> dict[str, Any]:
    """`run` for each layout in turn in this process (one vLLM import for all).

    A layout that raises records its traceback under `error` and the next one still runs, so
    one broken layout does not hide how the others fare.
    """
    results: dict[str, Any] = {}
    for name, layout in layouts.items():
        try:
            results[name] = run(model_dir, layout)
        except Exception:
            results[name] = {"error": traceback.format_exc()}
    return results


def completion_record(output: Any) -> dict[str, Any]:
    """Prompt ids, generated tokens and the chosen tokens' logprobs of one `RequestOutput`.

    Plain lists, so the record survives the JSON trip back to the parent.
    """
    completion = output.outputs[0]
    tokens = list(completion.token_ids)
    return {
        "prompt_ids": list(output.prompt_token_ids),
        "tokens": tokens,
        "logprobs": [step[t].logprob for t, step in zip(tokens, completion.logprobs, strict=True)],
    }


def child_main(run: Callable[[Path, Any], Any], argv: Sequence[str] | None = None) -> None:
    """The script side of `run_script`: `run(MODEL_DIR, PAYLOAD)` written to OUT_JSON."""
    model_dir, out, payload = (sys.argv if argv is None else argv)[1:4]
    result = run(Path(model_dir), json.loads(payload))
    Path(out).write_text(json.dumps(result))


# --- parent side ---------------------------------------------------------------------------------


@dataclass
class ScriptRun:
    """What a finished child left: its JSON result, its stderr tail and its wall time."""

    result: Any
    stderr_tail: str = ""
    seconds: float = 0.0


def run_script(
    script: str | Path,
    model_dir: Path,
    payload: Any,
    out: Path,
    *,
    timeout: float,
    env: Mapping[str, str],
    label: str,
) -> ScriptRun:
    """Run `script` in a child for `payload`; fail the test with its stderr tail if it fails.

    The child leads its own process group, so a timeout kills its ranks with it, and the group
    is killed after every run as well, for ranks a crashed run left behind. `label` names the
    run in failure messages ("... timed out", "... exited with N").
    """
    command = [sys.executable, str(script), str(model_dir), str(out), json.dumps(payload)]
    started = time.monotonic()
    child = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(env),
        start_new_session=True,
    )
    try:
        _, stderr = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        _, stderr = child.communicate()
        _fail(f"{label} timed out:\n{stderr[-STDERR_TAIL:]}")
    finally:
        try:
            os.killpg(child.pid, signal.SIGKILL)  # ranks a crashed run left behind
        except ProcessLookupError:
            pass
    if child.returncode != 0:
        _fail(f"{label} exited with {child.returncode}:\n{stderr[-STDERR_TAIL:]}")
    return ScriptRun(json.loads(out.read_text()), stderr[-STDERR_TAIL:], time.monotonic() - started)


def run_layouts_in_child(
    script: str | Path,
    model_dir: Path,
    layouts: Mapping[str, Mapping[str, Any]],
    out: Path,
    *,
    timeout_per_layout: float,
    env: Mapping[str, str],
) -> dict[str, Any]:
    """`run_script` for several layouts in one child, one after another.

    Each layout's result carries `stderr` (the child's tail) and `child_seconds`, so a later
    comparison failure can show what the child logged.
    """
    run = run_script(
        script,
        model_dir,
        dict(layouts),
        out,
        timeout=timeout_per_layout * len(layouts),
        env=env,
        label=str(list(layouts)),
    )
    for result in run.result.values():
        result["stderr"] = run.stderr_tail
        result["child_seconds"] = run.seconds
    return run.result


# --- requests ------------------------------------------------------------------------------------


def noise_image(height: int, width: int) -> Any:
    """Deterministic RGB noise (seed 0): the same pixels in every rank layout and run."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def chat_requests(
    tokenizer: Any, prompts: Iterable[list[dict[str, str]]], image: Callable[[], Any]
) -> list[dict[str, Any]]:
    """Each user turn through the checkpoint's chat template (thinking off), with `image()`
    for every image part."""
    requests = []
    for parts in prompts:
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": parts}],
            tokenize=False,
            add_generation_prompt=True,
            enable_thinking=False,
        )
        images = [image() for part in parts if part["type"] == "image"]
        requests.append({"prompt": prompt, "multi_modal_data": {"image": images} if images else {}})
    return requests


# --- comparison ----------------------------------------------------------------------------------


def compare_runs(
    reference: Mapping[str, Any],
    candidate: Mapping[str, Any],
    atol: float,
    prompts: Iterable[str],
    label: str,
) -> tuple[list[str], float]:
    """Mismatches of `candidate` against `reference` per prompt, and the largest logprob gap.

    Prompt ids and tokens must be equal and chosen-token logprobs within `atol`. Only the first
    mismatch of each prompt is reported: after different prompt ids or tokens the logprobs
    describe different sequences.
    """
    problems: list[str] = []
    worst = 0.0
    for name in prompts:
        ref, test = reference[name], candidate[name]
        if test["prompt_ids"] != ref["prompt_ids"]:
            problems.append(f"{label}/{name}: prompt ids differ")
            continue
        if test["tokens"] != ref["tokens"]:
            problems.append(f"{label}/{name}: tokens differ")
            continue
        gaps = [abs(a - b) for a, b in zip(ref["logprobs"], test["logprobs"], strict=True)]
        if max(gaps) > atol:
            problems.append(f"{label}/{name}: logprob gaps {gaps}")
        worst = max(worst, *gaps)
    return problems, worst


def assert_same_decoding(
    reference: Mapping[str, Any],
    tested: Mapping[str, Any],
    label: str,
    prompts: Iterable[str],
    atol: float,
) -> float:
    """Fail unless `tested` decodes like `reference` (`compare_runs`); return the largest gap.

    A layout whose child recorded an `error` (see `run_layouts`) fails with its traceback and
    the child's stderr tail instead.
    """
    if "error" in tested:
        _fail(f"{label} raised:\n{tested['error']}\nstderr tail:\n{tested.get('stderr', '')}")
    problems, worst = compare_runs(reference, tested, atol, prompts, label)
    if problems:
        raise AssertionError("\n".join(problems))
    return worst


# --- skips ---------------------------------------------------------------------------------------


def on_cpu() -> bool:
    """Whether vLLM runs on its CPU backend here (imports vLLM: call it in tests, not at import)."""
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def cpu_expert_parallel_crash(held: int, experts: int, symptom: str) -> str:
    """Skip reason for expert parallelism on vLLM's CPU backend.

    vLLM's CPU MoE passes global expert ids to its kernel and ignores the expert map, so a rank
    that holds only some experts indexes past its weights and the worker segfaults. `symptom`
    says how it showed for the model at hand.
    """
    return (
        "vLLM's CPU MoE experts pass global expert ids to cpu_fused_moe and ignore the "
        f"expert map, so a rank holding {held} of {experts} experts reads past its weights: "
        f"{symptom}"
    )


def cpu_skip_reason(layout: str, cpu_unsupported: Mapping[str, str]) -> str | None:
    """Why `layout` cannot run here, if it is one vLLM's CPU backend cannot run and this is CPU."""
    if layout in cpu_unsupported and on_cpu():
        return cpu_unsupported[layout]
    return None
