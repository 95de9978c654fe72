"""Running an engine path over many generated outputs and recording what failed.

Every output is parsed whole and streamed in random chunkings: no exception, stream == whole,
and the invariant of `fuzz_invariant`; the first failure is minimized for the report.
"""

from __future__ import annotations

import random
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from interns1_plugin.testing.fuzz_chunking import CHUNKINGS, all_chunkings, chunk
from interns1_plugin.testing.fuzz_features import OPEN_DEFECTS
from interns1_plugin.testing.fuzz_generate import FuzzOutput, generate_many
from interns1_plugin.testing.fuzz_invariant import Split, split_problems
from interns1_plugin.testing.fuzz_minimize import minimize


class EnginePath(Protocol):
    """One engine's way from model output to client-visible split, whole and streamed."""

    name: str

    def parse(self, text: str, thinking: bool) -> Split: ...

    def stream(self, pieces: list[str], thinking: bool) -> Split: ...


def output_problems(
    path: EnginePath,
    output: FuzzOutput | str,
    thinking: bool,
    chunkings: Iterable[tuple[str, list[str]]],
    reference: EnginePath | None = None,
) -> list[str]:
    """Every invariant for one output: no exception, stream == whole, nothing lost.

    With `reference` (the core parser, for an engine path), the engine's split must also be the
    reference's: an adapter may not change what the core decided.
    """
    text = output if isinstance(output, str) else output.text
    try:
        whole = path.parse(text, thinking)
    except Exception:  # noqa: BLE001 - any exception is the finding
        return [f"exception: non-streaming\n{_short_traceback()}"]
    problems = split_problems(output, thinking, whole)
    if reference is not None:
        expected = reference.parse(text, thinking)
        if whole != expected:
            problems.append(f"engine-vs-core:\n  engine: {whole!a}\n  core:   {expected!a}")
    for kind, pieces in chunkings:
        try:
            streamed = path.stream(pieces, thinking)
        except Exception:  # noqa: BLE001
            problems.append(f"exception: streaming ({kind})\n{_short_traceback()}")
            continue
        if streamed != whole:
            problems.append(
                f"stream-mismatch: {kind}\n  whole:    {whole!a}\n  streamed: {streamed!a}"
            )
    return problems


def _short_traceback() -> str:
    return "".join(traceback.format_exc(limit=-6))


@dataclass
class Failure:
    """One failing output, what it broke, and (for the first) a minimized text that still does."""

    output: FuzzOutput
    problems: list[str]
    minimal: str | None = None


@dataclass
class FuzzRun:
    """The outcome of `fuzz`: how much was checked and what failed."""

    path: str
    base_seed: int
    exclude: frozenset[str]
    outputs: int = 0
    streams: int = 0
    failures: list[Failure] = field(default_factory=list)

    def assert_clean(self) -> None:
        """Fail the test with the report unless outputs ran and none failed."""
        assert self.outputs and not self.failures, self.report()

    def report(self, *, limit: int = 5) -> str:
        lines = [
            f"{self.path}: {len(self.failures)} of {self.outputs} outputs failed (base seed "
            f"{self.base_seed}); rebuild one with interns1_plugin.testing.fuzz_outputs."
            f"generate(seed, exclude=frozenset({sorted(self.exclude)})), its chunkings with "
            "chunk(text, kind, random.Random(seed)) after shuffling CHUNKINGS with that Random"
        ]
        for failure in self.failures[:limit]:
            out = failure.output
            lines.append(
                f"- seed {out.seed}, thinking={out.thinking}, features={sorted(out.features)}"
            )
            shown = out.text if len(out.text) <= 1500 else out.text[:1500] + "..."
            lines.append(f"  output ({len(out.text)} characters): {shown!a}")
            if failure.minimal is not None:
                lines.append(f"  minimal failing output: {failure.minimal!a}")
            lines.extend("  " + p.replace("\n", "\n  ") for p in failure.problems[:3])
        return "\n".join(lines)


def fuzz(
    path: EnginePath,
    *,
    base_seed: int,
    count: int,
    streams_per_output: int = 2,
    exclude: frozenset[str] = OPEN_DEFECTS,
    max_failures: int = 20,
    reference: EnginePath | None = None,
    minimize_first: bool = True,
) -> FuzzRun:
    """Check `count` generated outputs through `path`; the first failure is also minimized."""
    run = FuzzRun(path.name, base_seed, exclude)
    for output in generate_many(base_seed, count, exclude=exclude):
        rng = random.Random(output.seed)
        kinds = list(CHUNKINGS)
        rng.shuffle(kinds)
        chunkings = [(k, chunk(output.text, k, rng)) for k in kinds[:streams_per_output]]
        problems = output_problems(path, output, output.thinking, chunkings, reference)
        run.outputs += 1
        run.streams += len(chunkings)
        if problems:
            run.failures.append(Failure(output, problems))
            if len(run.failures) >= max_failures:
                break
    if run.failures and minimize_first:
        first = run.failures[0]
        category = first.problems[0].split(":", 1)[0]
        thinking = first.output.thinking

        def still_fails(text: str) -> bool:
            found = output_problems(path, text, thinking, all_chunkings(text), reference)
            return any(p.split(":", 1)[0] == category for p in found)

        first.minimal = minimize(first.output.text, still_fails)
    return run
