"""Per pair: growth exponent, µs per token at the comparison size, ours ÷ pair; and the targets.

A pair too slow to finish a size still gives an upper bound on ours ÷ pair there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from _common import growth_exponent, loglog_at
from _parsers_measure import Point
from _parsers_pairs import OURS, Pair
from _parsers_render import short_size

# Targets the report is printed against.
TARGET_RATIO_VS_RECIPE = 0.05
TARGET_EXPONENT = 1.1


def summarise(
    pairs: list[Pair], results: dict[str, list[Point]], sizes: Sequence[int], ratio_at: int
) -> dict[str, dict[str, Any]]:
    """Exponent, µs/token at `ratio_at` and ours ÷ pair there, per pair."""
    rows: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        points = results[pair.key]
        timed = [p for p in points if p.seconds is not None and p.target in sizes]
        at = _at_target(points, ratio_at)
        checks = {p.check for p in points if p.check}
        rows[pair.key] = {
            "exponent": growth_exponent([(float(p.tokens), p.seconds) for p in timed]),
            "us_per_token_at_ratio": at,
            "check": next((c for c in sorted(checks) if c != "ok"), "ok" if checks else "n/a"),
        }
    ours = rows.get(OURS, {}).get("us_per_token_at_ratio")
    for pair in pairs:
        row = rows[pair.key]
        theirs = row["us_per_token_at_ratio"]
        row["ratio_ours_over_pair"] = ours / theirs if ours and theirs else None
        bound = _bound_at_target(results[pair.key], ratio_at)
        # A pair too slow to finish still gives an upper bound on ours ÷ pair.
        row["ratio_upper_bound"] = ours / bound if ours and bound and theirs is None else None
    return rows


def _at_target(points: Sequence[Point], target: int) -> float | None:
    exact = [p.us_per_token for p in points if p.target == target and p.us_per_token]
    if exact:
        return exact[0]
    curve = [(float(p.target), p.us_per_token) for p in points if p.us_per_token is not None]
    return loglog_at(curve, float(target))


def _bound_at_target(points: Sequence[Point], target: int) -> float | None:
    return next((p.lower_bound_us for p in points if p.target == target and p.lower_bound_us), None)


def target_lines(
    summary: dict[str, dict[str, Any]], ratio_at: int
) -> list[tuple[str, bool | None]]:
    """The three targets, each with PASS / FAIL / None (could not be measured)."""
    ours = summary.get(OURS, {})
    recipe = summary.get("deepseek_r1_internlm", {})
    hermes = summary.get("qwen3_hermes", {})
    out: list[tuple[str, bool | None]] = []

    ratio = recipe.get("ratio_ours_over_pair")
    bound = recipe.get("ratio_upper_bound")
    if ratio is not None:
        out.append(
            (
                f"ours ≤ {TARGET_RATIO_VS_RECIPE}x deepseek_r1+internlm µs/token at "
                f"~{short_size(ratio_at)} tokens: {ratio:.4f}x",
                ratio <= TARGET_RATIO_VS_RECIPE,
            )
        )
    elif bound is not None:
        out.append(
            (
                f"ours ≤ {TARGET_RATIO_VS_RECIPE}x deepseek_r1+internlm µs/token at "
                f"~{short_size(ratio_at)} tokens: <{bound:.4f}x (recipe pair hit the time limit)",
                True if bound <= TARGET_RATIO_VS_RECIPE else None,
            )
        )
    else:
        out.append((f"ours vs deepseek_r1+internlm at ~{short_size(ratio_at)}: not measured", None))

    ratio = hermes.get("ratio_ours_over_pair")
    out.append(
        (
            f"ours ≤ qwen3+hermes µs/token at ~{short_size(ratio_at)} tokens: "
            + ("not measured" if ratio is None else f"{ratio:.3f}x"),
            None if ratio is None else ratio <= 1.0,
        )
    )

    exponent = ours.get("exponent")
    out.append(
        (
            f"ours growth exponent ≤ {TARGET_EXPONENT}: "
            + ("not measured" if exponent is None else f"{exponent:.3f}"),
            None if exponent is None else exponent <= TARGET_EXPONENT,
        )
    )
    return out
