"""Serving throughput and time to first token of the plugin's Intern-S1 model on vLLM.

Why: the plugin replaces vLLM's built-in Intern-S1 model, so it must serve at least as fast
(target: >= 0.97x). One run measures, on the same tiny checkpoint:

- text requests: the plugin's `InternS1ForConditionalGeneration` against vLLM's own
  `Qwen3ForCausalLM` on the very same language weights (the checkpoint's language model
  extracted into a plain Qwen3 checkpoint), i.e. what wrapping the LM costs; the plugin once
  more with `--language-model-only`, which separates vLLM's multimodal runner path (that any
  multimodal model pays) from the wrapper; and vLLM's built-in Intern-S1 where it can be
  imported (it needs torchvision: GPU machines), started with INTERNS1_PLUGIN_KEEP_BUILTIN_MODEL=1;
- image requests: the plugin's figures, and the built-in's where it imports.

Each engine is a `vllm.LLM` in its own worker process (this script with `--worker`), all loaded
at once and driven in alternation, round by round, rotating the order, so load from other
processes hits every engine alike. Throughput is generated tokens per second for a batch of
greedy requests with `ignore_eos` (every request yields exactly `--output-tokens`); time to
first token (TTFT) is the latency of one request with `max_tokens=1`, median of several. Prompts
differ in every round and prefix / multimodal caches are off, so nothing is served from cache.
The same rounds check that the plugin and Qwen3 generate identical greedy tokens. On CPU the
figures are also taken on each engine's own CPU time (one torch thread, engine in-process),
which other processes on a shared machine cannot inflate; the target is judged on it there,
on wall-clock time on GPU.

    python benchmarks/serving.py [--rounds 10] [--prompts 32] [--output-tokens 128]
                                 [--variant mini|s1] [--no-builtin] [--quick]
                                 [--out benchmarks/results/serving.png]

Writes Markdown tables to stdout, a PNG to --out and the numbers as JSON beside it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, markdown_table, median, save_figure, write_json  # noqa: E402

DEFAULT_OUT = Path("benchmarks/results/serving.png")
TARGET_RATIO = 0.97
MAX_MODEL_LEN = 2048
KV_CACHE_BYTES = 512 << 20
GPU_MEMORY_SHARE = 0.15  # of the device, per engine (up to four run at once)
IMAGE_SIDE = 448  # one tile: 256 image tokens
#: Byte tokens of the tiny tokenizer: any of them is a valid, non-special prompt token.
PROMPT_VOCAB = 256
BUILTIN_ENV = "INTERNS1_PLUGIN_KEEP_BUILTIN_MODEL"
WARMUP_SEED = 10**6  # prompts no timed round uses
CLOCK_NAMES = {"cpu": "engine CPU time", "wall": "wall clock"}
#: CPU workers: the engine core in the worker's own process (no second busy process per engine)
#: and one torch thread, as vLLM's CPU serving process uses: spinning OpenMP threads would make
#: every figure depend on what else the shared cores run. An OMP_NUM_THREADS already set wins.
CPU_WORKER_ENV = {
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
}
#: Files a text-only checkpoint needs besides config and weights.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "generation_config.json",
    "chat_template.jinja",
)


#: `vllm.LLM` options of an engine that takes images: one per prompt, and no processor cache
#: (every image request pays its preprocessing, as distinct images do).
IMAGE_OPTIONS: dict[str, Any] = {
    "limit_mm_per_prompt": {"image": 1, "video": 0},
    "mm_processor_cache_gb": 0,
}


@dataclass(frozen=True)
class Engine:
    """One model served by one worker: its name, checkpoint, extra `LLM` options, environment."""

    name: str
    label: str
    checkpoint: Path
    options: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def multimodal(self) -> bool:
        return "limit_mm_per_prompt" in self.options


@dataclass(frozen=True)
class Settings:
    """Workload sizes, shared by the parent and every worker."""

    rounds: int
    prompts: int
    prompt_tokens: int
    output_tokens: int
    image_requests: int
    ttft_repeats: int
    dtype: str
    eager: bool


# --- checkpoints ---------------------------------------------------------------------------------


def extract_language_model(checkpoint: Path, out: Path) -> Path:
    """A plain Qwen3 checkpoint holding exactly the Intern-S1 checkpoint's language model.

    `model.language_model.*` becomes `model.*`, `lm_head.*` stays, `config.json` is the
    `text_config`, the tokenizer is the same files: vLLM then serves it with its own
    `Qwen3ForCausalLM` (or `Qwen3MoeForCausalLM`), the model the plugin wraps.
    """
    from safetensors import safe_open
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    config = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
    text = dict(config["text_config"])
    text.setdefault("torch_dtype", config.get("torch_dtype", "bfloat16"))
    (out / "config.json").write_text(json.dumps(text, indent=2) + "\n", encoding="utf-8")
    tensors = {}
    for shard in sorted(checkpoint.glob("*.safetensors")):
        with safe_open(str(shard), framework="pt") as handle:
            for name in handle.keys():
                if name.startswith("model.language_model."):
                    tensors["model." + name.removeprefix("model.language_model.")] = (
                        handle.get_tensor(name)
                    )
                elif name.startswith("lm_head."):
                    tensors[name] = handle.get_tensor(name)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    for name in TOKENIZER_FILES:
        if (checkpoint / name).exists():
            shutil.copy2(checkpoint / name, out / name)
    return out


def builtin_importable(timeout: float = 180.0) -> tuple[bool, str]:
    """Whether vLLM's own Intern-S1 model imports here (it needs a working torchvision).

    Checked in a child process: a torchvision built for another torch can abort the importer.
    """
    if importlib.util.find_spec("torchvision") is None:
        return False, "torchvision is not installed"
    code = "import torchvision, vllm.model_executor.models.interns1"
    try:
        child = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return False, "importing vLLM's interns1 module timed out"
    if child.returncode != 0:
        last = (child.stderr.strip().splitlines() or [f"exit status {child.returncode}"])[-1]
        return False, f"vLLM's interns1 module does not import: {last}"
    return True, "imports"


# --- worker --------------------------------------------------------------------------------------


def text_prompts(seed: int, count: int, length: int) -> list[list[int]]:
    """Token-id prompts, the same for every engine in a round and new in every round."""
    rng = random.Random(seed)
    return [[rng.randrange(PROMPT_VOCAB) for _ in range(length)] for _ in range(count)]


def image_requests(llm: Any, seed: int, count: int) -> list[dict[str, Any]]:
    """Chat prompts with one fresh random 448x448 image each (one tile)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    tokenizer = llm.get_tokenizer()
    requests = []
    for index in range(count):
        parts = [{"type": "image"}, {"type": "text", "text": f"Describe image {seed}-{index}."}]
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": parts}],
            tokenize=False,
            add_generation_prompt=True,
            enable_thinking=False,
        )
        pixels = rng.integers(0, 256, (IMAGE_SIDE, IMAGE_SIDE, 3), dtype=np.uint8)
        requests.append({"prompt": prompt, "multi_modal_data": {"image": Image.fromarray(pixels)}})
    return requests


def _requests(llm: Any, case: str, seed: int, count: int, settings: Settings) -> list[Any]:
    if case == "image":
        return image_requests(llm, seed, count)
    return [{"prompt_token_ids": ids} for ids in text_prompts(seed, count, settings.prompt_tokens)]


def run_worker(engine: str, checkpoint: Path, settings: Settings, options: dict[str, Any]) -> None:
    """Load one engine, then answer the parent's JSON commands (one per line) until `quit`.

    Replies go to the original stdout; everything else that writes to stdout (vLLM's logs)
    is sent to stderr, so the protocol stream stays clean.
    """
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    from vllm import LLM, SamplingParams

    llm = LLM(
        model=str(checkpoint),
        dtype=settings.dtype,
        enforce_eager=settings.eager,
        max_model_len=MAX_MODEL_LEN,
        max_num_seqs=max(settings.prompts, settings.image_requests),
        kv_cache_memory_bytes=KV_CACHE_BYTES,
        enable_prefix_caching=False,
        seed=0,
        **options,
    )
    architecture = llm.llm_engine.model_config.architectures[0]
    _reply(
        replies,
        {"ready": engine, "architecture": architecture, "model_class": _model_class(architecture)},
    )
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "quit":
            break
        case, seed = command["case"], command["seed"]
        if command["op"] == "throughput":
            count = settings.image_requests if case == "image" else settings.prompts
            requests = _requests(llm, case, seed, count, settings)
            params = SamplingParams(
                temperature=0.0, max_tokens=settings.output_tokens, ignore_eos=True
            )
            wall, cpu = time.perf_counter(), time.process_time()
            outputs = llm.generate(requests, params, use_tqdm=False)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            tokens = [list(out.outputs[0].token_ids) for out in outputs]
            generated = sum(len(t) for t in tokens)
            _reply(
                replies,
                {"wall_s": wall, "cpu_s": cpu, "output_tokens": generated, "tokens": tokens},
            )
        else:  # ttft: one request at a time, the first token only
            requests = _requests(llm, case, seed, settings.ttft_repeats, settings)
            params = SamplingParams(temperature=0.0, max_tokens=1, ignore_eos=True)
            walls, cpus = [], []
            for request in requests:
                wall, cpu = time.perf_counter(), time.process_time()
                llm.generate([request], params, use_tqdm=False)
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
            _reply(replies, {"wall_s": walls, "cpu_s": cpus})


def _model_class(architecture: str) -> str:
    """The class vLLM's registry serves `architecture` with: tells plugin from built-in."""
    from vllm import ModelRegistry

    entry = ModelRegistry.models.get(architecture)
    module, name = getattr(entry, "module_name", None), getattr(entry, "class_name", None)
    return f"{module}.{name}" if module and name else architecture


def _reply(stream: IO[str], message: dict[str, Any]) -> None:
    stream.write(json.dumps(message) + "\n")
    stream.flush()


# --- parent --------------------------------------------------------------------------------------


class Worker:
    """The parent's handle on one worker process (its own process group, log in a file)."""

    def __init__(self, engine: Engine, settings: Settings, workdir: Path) -> None:
        self.engine = engine
        self.log_path = workdir / f"{engine.name}.log"
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            engine.name,
            "--worker-checkpoint",
            str(engine.checkpoint),
            "--worker-settings",
            json.dumps(settings.__dict__),
        ]
        command += ["--worker-options", json.dumps(engine.options)]
        env = {**os.environ, "VLLM_NO_USAGE_STATS": "1", "HF_HUB_OFFLINE": "1", **engine.env}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                text=True,
                start_new_session=True,
            )
        self.architecture = self.model_class = ""

    def wait_ready(self) -> None:
        ready = self.receive()
        self.architecture, self.model_class = ready["architecture"], ready["model_class"]

    def ask(self, op: str, case: str, seed: int) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"op": op, "case": case, "seed": seed}) + "\n")
        self.process.stdin.flush()
        return self.receive()

    def receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            raise RuntimeError(
                f"{self.engine.name} worker exited ({self.process.returncode}); log tail:\n"
                + self.log_tail()
            )
        return json.loads(line)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the worker to quit; kill its process group if it does not."""
        process = self.process
        if process.poll() is None:
            try:
                assert process.stdin is not None
                process.stdin.write(json.dumps({"op": "quit"}) + "\n")
                process.stdin.close()
                process.wait(timeout)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            process.wait()


def check_served_class(engine: Engine, model_class: str) -> None:
    """The plugin's engines must run the plugin's class and the built-in must not."""
    ours = model_class.startswith("interns1_plugin.")
    if ours != engine.name.startswith("plugin"):
        raise RuntimeError(f"{engine.name} engine is served by {model_class}")


def _cases(engine: Engine) -> list[str]:
    return ["text", "image"] if engine.multimodal else ["text"]


def measure(workers: Sequence[Worker], settings: Settings) -> dict[str, Any]:
    """Warm every engine up, then time each case on every engine, rotating the order by round."""
    raw: dict[str, dict[str, dict[str, list]]] = {
        w.engine.name: {c: {"throughput": [], "ttft": []} for c in _cases(w.engine)}
        for w in workers
    }
    greedy: dict[str, list[list[list[int]]]] = {w.engine.name: [] for w in workers}
    for worker in workers:  # warm-up: first-call costs are not serving costs
        for case in _cases(worker.engine):
            worker.ask("throughput", case, seed=WARMUP_SEED)
            worker.ask("ttft", case, seed=WARMUP_SEED)
    for round_index in range(settings.rounds):
        shift = round_index % len(workers)
        order = [*workers[shift:], *workers[:shift]]
        for case_index, case in enumerate(("text", "image")):
            seed = 1000 * round_index + case_index
            for op in ("throughput", "ttft"):
                for worker in order:
                    if case not in _cases(worker.engine):
                        continue
                    reply = worker.ask(op, case, seed)
                    raw[worker.engine.name][case][op].append(reply)
                    if op == "throughput" and case == "text":
                        greedy[worker.engine.name].append(reply["tokens"])
    return {"raw": raw, "greedy": greedy}


def summarize(raw: dict[str, Any], clocks: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per engine, case and clock: median tokens/s over rounds, median TTFT over requests.

    The first clock is the one the target is judged on; `tokens_per_s` / `ttft_ms` repeat it.
    """
    summary: dict[str, dict[str, Any]] = {}
    for engine, cases in raw.items():
        summary[engine] = {}
        for case, ops in cases.items():
            row: dict[str, float] = {}
            for clock in clocks:
                rates = [r["output_tokens"] / r[f"{clock}_s"] for r in ops["throughput"]]
                latencies = [s for r in ops["ttft"] for s in r[f"{clock}_s"]]
                row |= {
                    f"{clock}_tokens_per_s": median(rates),
                    f"{clock}_best_tokens_per_s": max(rates),
                    f"{clock}_ttft_ms": median(latencies) * 1e3,
                    f"{clock}_best_ttft_ms": min(latencies) * 1e3,
                }
            row["tokens_per_s"] = row[f"{clocks[0]}_tokens_per_s"]
            row["ttft_ms"] = row[f"{clocks[0]}_ttft_ms"]
            row["output_tokens"] = sum(r["output_tokens"] for r in ops["throughput"])
            summary[engine][case] = row
    return summary


#: (engine, reference) pairs the ratios are taken for, where both ran: the plugin against the
#: built-in (the target), against Qwen3 on the same weights, and without vLLM's multimodal path.
COMPARISONS = (("plugin", "builtin"), ("plugin", "qwen3"), ("plugin_lm", "qwen3"))


def ratios(summary: dict[str, Any], clocks: Sequence[str]) -> list[dict[str, Any]]:
    """Each comparison per case and clock: >= 1 means the engine is at least as fast."""
    rows = []
    for engine, reference in COMPARISONS:
        if engine not in summary or reference not in summary:
            continue
        for case, ref in summary[reference].items():
            ours = summary[engine].get(case)
            if ours is None:
                continue
            row: dict[str, Any] = {"case": case, "engine": engine, "reference": reference}
            for clock in clocks:
                row[f"{clock}_throughput_ratio"] = (
                    ours[f"{clock}_tokens_per_s"] / ref[f"{clock}_tokens_per_s"]
                )
                row[f"{clock}_ttft_ratio"] = ref[f"{clock}_ttft_ms"] / ours[f"{clock}_ttft_ms"]
            row["throughput_ratio"] = row[f"{clocks[0]}_throughput_ratio"]
            row["ttft_ratio"] = row[f"{clocks[0]}_ttft_ratio"]
            rows.append(row)
    return rows


def tables(report: dict[str, Any]) -> str:
    """Figures per engine and case on every clock, then the ratios against the target."""
    labels, clocks = report["engines"], report["clocks"]
    figures = [
        [
            case,
            f"{labels[engine]['label']} ({engine})",
            *(
                f"{row[f'{clock}_tokens_per_s']:.0f} / {row[f'{clock}_ttft_ms']:.2f}"
                for clock in clocks
            ),
        ]
        for case in ("text", "image")
        for engine, cases in report["summary"].items()
        if (row := cases.get(case))
    ]
    lines = [
        markdown_table(
            ["case", "engine", *(f"tokens/s / TTFT ms ({CLOCK_NAMES[c]})" for c in clocks)],
            figures,
        ),
        "",
    ]
    ratio_rows = []
    for row in report["ratios"]:
        passed = min(row["throughput_ratio"], row["ttft_ratio"]) >= TARGET_RATIO
        ratio_rows.append(
            [
                row["case"],
                f"{row['engine']} vs {row['reference']}",
                *(
                    f"{row[f'{clock}_throughput_ratio']:.3f}x / {row[f'{clock}_ttft_ratio']:.3f}x"
                    for clock in clocks
                ),
                f"{'PASS' if passed else 'FAIL'} (>= {TARGET_RATIO}, {CLOCK_NAMES[clocks[0]]})",
            ]
        )
    if ratio_rows:
        header = [f"throughput / TTFT ratio ({CLOCK_NAMES[c]})" for c in clocks]
        lines += [markdown_table(["case", "comparison", *header, "target"], ratio_rows), ""]
    settings = report["settings"]
    lines.append(
        f"- {report['device']}, {settings['dtype']}, {settings['rounds']} rounds; text: "
        f"{settings['prompts']} prompts x {settings['prompt_tokens']} tokens -> "
        f"{settings['output_tokens']} tokens; image: {settings['image_requests']} requests "
        f"(one 448px tile) -> {settings['output_tokens']} tokens; TTFT: "
        f"{settings['ttft_repeats']} single requests per round, max_tokens=1"
    )
    lines.append(
        "- ratios: throughput engine/reference, TTFT reference/engine (>= 1: engine faster); "
        "medians over rounds (throughput) and over single requests (TTFT)"
    )
    if clocks[0] == "cpu":
        lines.append(
            "- judged on the engines' own CPU time: on a shared CPU machine wall time also "
            "counts whatever other processes run; wall-clock figures beside it"
        )
    same = report["greedy_tokens_identical"]
    lines.append(
        f"- greedy text tokens of plugin, plugin_lm and Qwen3 identical in every round: {same}"
    )
    lines.append(f"- vLLM's built-in Intern-S1: {report['builtin']}")
    if report["greedy_tokens_identical_builtin"] is not None:
        same = report["greedy_tokens_identical_builtin"]
        lines.append(f"- greedy text tokens of plugin and built-in identical: {same}")
    served = ", ".join(f"{name}: {e['model_class']}" for name, e in report["engines"].items())
    lines.append(f"- served by {served}")
    return "\n".join(lines)


def plot(report: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = report["summary"]
    engines = list(summary)
    cases = ["text", "image"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, key, unit in ((axes[0], "tokens_per_s", "tokens/s"), (axes[1], "ttft_ms", "ms")):
        width = 0.8 / len(engines)
        for index, engine in enumerate(engines):
            xs = [c + (index - (len(engines) - 1) / 2) * width for c in range(len(cases))]
            values = [summary[engine].get(case, {}).get(key, 0.0) for case in cases]
            label = report["engines"][engine]["label"]
            axis.bar(xs, values, width=width, label=label)
        axis.set_xticks(range(len(cases)), cases)
        axis.set_ylabel(f"{unit} (median, {CLOCK_NAMES[report['clocks'][0]]})")
    axes[0].set_title("generation throughput (higher is better)")
    axes[1].set_title("time to first token (lower is better)")
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=len(engines), fontsize=8)
    text = ", ".join(
        f"{r['case']} {r['engine']}/{r['reference']}: "
        f"{r['throughput_ratio']:.2f}x / {r['ttft_ratio']:.2f}x"
        for r in report["ratios"]
    )
    fig.suptitle(f"Intern-S1 plugin on vLLM ({report['device']}); {text}", fontsize=9)
    save_figure(fig, out, rect=(0, 0.07, 1, 1))


def _device() -> tuple[str, bool]:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0), True
    return f"CPU ({os.cpu_count()} cores)", False


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, help="measurement rounds (median shown)")
    parser.add_argument("--prompts", type=int, help="text requests per throughput batch")
    parser.add_argument("--prompt-tokens", type=int, help="tokens per text prompt")
    parser.add_argument("--output-tokens", type=int, help="generated tokens per request")
    parser.add_argument("--image-requests", type=int, help="image requests per batch")
    parser.add_argument("--ttft-repeats", type=int, help="single requests per TTFT round")
    parser.add_argument("--variant", default="mini", choices=["mini", "s1"])
    parser.add_argument("--dtype", help="engine dtype (default: float32 on CPU, else bfloat16)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG path; JSON beside")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--no-builtin", action="store_true", help="skip vLLM's built-in model")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-checkpoint", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--worker-settings", help=argparse.SUPPRESS)
    parser.add_argument("--worker-options", default="{}", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _settings(args: argparse.Namespace, cuda: bool) -> Settings:
    quick = args.quick
    return Settings(
        rounds=args.rounds or (1 if quick else 10),
        prompts=args.prompts or (4 if quick else 32),
        prompt_tokens=args.prompt_tokens or (32 if quick else 128),
        output_tokens=args.output_tokens or (8 if quick else 128),
        image_requests=args.image_requests or (2 if quick else 4),
        ttft_repeats=args.ttft_repeats or (2 if quick else 10),
        dtype=args.dtype or ("bfloat16" if cuda else "float32"),
        # CUDA graphs are part of serving speed on GPU; on CPU compiling only costs start-up.
        eager=not cuda,
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.worker:
        settings = Settings(**json.loads(args.worker_settings))
        options = json.loads(args.worker_options)
        run_worker(args.worker, args.worker_checkpoint, settings, options)
        return {}

    from interns1_plugin.testing.tiny_interns1 import build_tiny_interns1

    started = time.perf_counter()
    device, cuda = _device()
    settings = _settings(args, cuda)
    if args.no_builtin:
        builtin, builtin_reason = False, "skipped (--no-builtin)"
    else:
        builtin, builtin_reason = builtin_importable()
    base_env = {} if cuda else dict(CPU_WORKER_ENV)
    # All engines share the GPU: each may claim only its share at start-up.
    base = {"gpu_memory_utilization": GPU_MEMORY_SHARE} if cuda else {}
    image = base | IMAGE_OPTIONS
    with tempfile.TemporaryDirectory(prefix="interns1-serving-") as scratch:
        workdir = Path(scratch)
        checkpoint = build_tiny_interns1(workdir / "interns1", args.variant)
        text_only = extract_language_model(checkpoint, workdir / "qwen3")
        engines = [
            Engine("plugin", "interns1-plugin InternS1", checkpoint, image, base_env),
            # The same model with vLLM's multimodal path off: what the wrapper alone costs.
            Engine(
                "plugin_lm",
                "interns1-plugin InternS1, --language-model-only",
                checkpoint,
                base | {"language_model_only": True},
                base_env,
            ),
            Engine("qwen3", "vLLM Qwen3 (same LM weights)", text_only, base, base_env),
        ]
        if builtin:
            env = {**base_env, BUILTIN_ENV: "1"}
            engines.append(Engine("builtin", "vLLM built-in InternS1", checkpoint, image, env))
        workers = [Worker(engine, settings, workdir) for engine in engines]
        try:
            for worker in list(workers):
                try:
                    worker.wait_ready()
                    check_served_class(worker.engine, worker.model_class)
                except RuntimeError as error:
                    if worker.engine.name != "builtin":
                        raise
                    # The comparison is optional: report why it is missing, measure the rest.
                    worker.stop()
                    workers.remove(worker)
                    builtin_reason = "failed: " + str(error).splitlines()[-1]
            measured = measure(workers, settings)
        finally:
            for worker in workers:
                worker.stop()
        engines = [w.engine for w in workers]
        served = {
            w.engine.name: {"architecture": w.architecture, "model_class": w.model_class}
            for w in workers
        }

    greedy = measured["greedy"]
    # On GPU the work is asynchronous to the host, so only wall time means anything there.
    clocks = ["wall"] if cuda else ["cpu", "wall"]
    summary = summarize(measured["raw"], clocks)
    report: dict[str, Any] = {
        "machine": machine_info(),
        "device": device,
        "settings": settings.__dict__,
        "variant": args.variant,
        "engines": {e.name: {"label": e.label, **served[e.name]} for e in engines},
        "builtin": builtin_reason,
        "clocks": clocks,
        "summary": summary,
        "ratios": ratios(summary, clocks),
        "greedy_tokens_identical": greedy["plugin"] == greedy["qwen3"] == greedy["plugin_lm"],
        "greedy_tokens_identical_builtin": (
            greedy["builtin"] == greedy["plugin"] if "builtin" in greedy else None
        ),
        "target_ratio": TARGET_RATIO,
        "raw": {
            engine: {
                case: {
                    f"{clock}_{key}": values
                    for clock in clocks
                    for key, values in (
                        (
                            "tokens_per_s",
                            [r["output_tokens"] / r[f"{clock}_s"] for r in ops["throughput"]],
                        ),
                        ("ttft_s", [s for r in ops["ttft"] for s in r[f"{clock}_s"]]),
                    )
                }
                for case, ops in cases.items()
            }
            for engine, cases in measured["raw"].items()
        },
    }
    report["table"] = tables(report)
    report["wall_s"] = round(time.perf_counter() - started, 1)
    print(report["table"])

    plot(report, args.out)
    write_json(args.out.with_suffix(".json"), report)
    print(f"\nwrote {args.out} and {args.out.with_suffix('.json')}", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
