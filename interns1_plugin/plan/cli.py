"""`python -m interns1_plugin.plan`: arguments in, a plan or suggestions out, and the exit status.

Why: the command's contract (exit 0 fits, 1 does not, 2 on a bad config or impossible arguments,
errors as one `error:` line on stderr) is kept here, apart from the arithmetic. It is not
`__main__.py` itself so that the package can re-export `main` without running it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from interns1_plugin.plan.errors import PlanError
from interns1_plugin.plan.fit import Budget, make_plan
from interns1_plugin.plan.model import ModelShape, load_config, parse_config
from interns1_plugin.plan.presets import PRESETS, preset
from interns1_plugin.plan.report import plan_to_dict, render, render_suggestions
from interns1_plugin.plan.sharding import Layout
from interns1_plugin.plan.suggestions import suggest


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m interns1_plugin.plan",
        description="Memory per GPU rank for serving an Intern-S1 family checkpoint on vLLM.",
    )
    parser.add_argument("config", nargs="?", help="the checkpoint's config.json")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="a published shape instead")
    parser.add_argument("--gpus", type=int, help="GPUs in all (default: tp x pp x dp)")
    parser.add_argument("--gpu-mem", type=float, default=80.0, help="GiB per GPU (default 80)")
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    parser.add_argument("--tp", type=int, help="tensor parallel (default: gpus / (pp x dp))")
    parser.add_argument("--pp", type=int, default=1, help="pipeline stages")
    parser.add_argument("--dp", type=int, default=1, help="data parallel replicas")
    parser.add_argument(
        "--ep", action=argparse.BooleanOptionalAction, default=False, help="expert parallelism"
    )
    parser.add_argument("--max-model-len", type=int, help="default: max positions, cap 32768")
    parser.add_argument("--kv-dtype", choices=("auto", "fp8"), default="auto")
    parser.add_argument("--batch-tokens", type=int, default=8192, help="tokens per forward pass")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--suggest", action="store_true", help="list the layouts that fit")
    return parser


def _positive(value: int | float | None, flag: str) -> None:
    if value is not None and value <= 0:
        raise PlanError(f"{flag} must be positive")


def resolve_layout(args: argparse.Namespace) -> Layout:
    """The layout from --tp/--pp/--dp/--gpus; PlanError when they disagree."""
    for flag in ("gpus", "tp", "pp", "dp"):
        _positive(getattr(args, flag), f"--{flag}")
    tp = args.tp
    if tp is None:
        gpus = args.gpus or args.pp * args.dp
        if gpus % (args.pp * args.dp):
            raise PlanError(f"--gpus {gpus} is not a multiple of pp x dp = {args.pp * args.dp}")
        tp = gpus // (args.pp * args.dp)
    layout = Layout(tp, args.pp, args.dp, args.ep)
    if args.gpus is not None and layout.gpus != args.gpus:
        raise PlanError(f"tp x pp x dp = {layout.gpus} but --gpus is {args.gpus}")
    return layout


def _load(args: argparse.Namespace) -> ModelShape:
    if (args.config is None) == (args.preset is None):
        raise PlanError("give either a config.json path or --preset")
    if args.preset:
        return parse_config(preset(args.preset), args.preset)
    return parse_config(load_config(args.config), str(args.config))


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 when the layout fits (or, with --suggest, some layout does), 1 if not, 2 on errors."""
    args = build_parser().parse_args(argv)
    try:
        model = _load(args)
        _positive(args.gpu_mem, "--gpu-mem")
        _positive(args.batch_tokens, "--batch-tokens")
        _positive(args.max_model_len, "--max-model-len")
        if not 0 < args.gpu_memory_utilization <= 1:
            raise PlanError("--gpu-memory-utilization must be in (0, 1]")
        budget = Budget(
            args.gpu_mem,
            args.gpu_memory_utilization,
            args.max_model_len,
            args.kv_dtype,
            args.batch_tokens,
        )
        if args.suggest:
            if args.gpus is None:
                raise PlanError("--suggest needs --gpus")
            _positive(args.gpus, "--gpus")
            plans, tried = suggest(model, args.gpus, budget)
        else:
            plan = make_plan(model, resolve_layout(args), budget)
    except PlanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.suggest:
        if args.json:
            print(json.dumps({"tried": tried, "fitting": [plan_to_dict(p) for p in plans]}))
        else:
            print(render_suggestions(model, plans, tried, args.gpus))
        return 0 if plans else 1
    print(json.dumps(plan_to_dict(plan), indent=2) if args.json else render(plan))
    return 0 if plan.fits else 1


__all__ = ["build_parser", "main", "resolve_layout"]
