"""`--suggest`: try the usual TP x PP x DP layouts for a GPU count and keep those that fit.

Why: the question is usually "how do I serve this on N GPUs", not "does this one layout fit";
the candidates are few enough to plan each.
"""

from __future__ import annotations

from interns1_plugin.plan.fit import Budget, Plan, make_plan
from interns1_plugin.plan.model import ModelShape
from interns1_plugin.plan.sharding import Layout

#: Layouts `--suggest` tries.
TP_SIZES = (1, 2, 4, 8, 16)
PP_SIZES = (1, 2, 4)


def candidate_layouts(model: ModelShape, gpus: int) -> list[Layout]:
    """TP x PP from TP_SIZES x PP_SIZES that divide `gpus` (DP takes the rest), EP on/off for
    MoE; fewest pipeline stages first."""
    layouts = []
    for pp in PP_SIZES:
        for tp in TP_SIZES:
            if gpus % (tp * pp):
                continue
            dp = gpus // (tp * pp)
            layouts.append(Layout(tp, pp, dp, False))
            if model.text.is_moe and tp * dp > 1:
                layouts.append(Layout(tp, pp, dp, True))
    return layouts


def suggest(model: ModelShape, gpus: int, budget: Budget) -> tuple[list[Plan], int]:
    """The fitting layouts among `candidate_layouts`, and how many were tried."""
    layouts = candidate_layouts(model, gpus)
    plans = [make_plan(model, layout, budget) for layout in layouts]
    return [p for p in plans if p.fits], len(layouts)


__all__ = ["PP_SIZES", "TP_SIZES", "candidate_layouts", "suggest"]
