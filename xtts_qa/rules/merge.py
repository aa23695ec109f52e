"""XQ9xx: fingerprints of checkpoint merges (parameter averaging) gone wrong."""

from __future__ import annotations

import statistics
from collections.abc import Iterable

from xtts_qa.results import Finding, Severity
from xtts_qa.rules.base import Context, Rule
from xtts_qa.rules.frozen import frozen_keys

#: a merge with mis-summed weights scales every tensor alike; unrelated averaging shrinks them unevenly
_CONSISTENT = 0.02
#: below this median cosine the non-GPT tensors no longer point the way the base's do
_LINEAGE_COSINE = 0.95


def gpt_norm_ratios(ctx: Context) -> list[float]:
    """||candidate|| / ||base|| for every float GPT tensor present in both with the same shape."""
    ratios = []
    for key in ctx.base_tensors:
        s = ctx.stats.get(key)
        if key.startswith("gpt.") and s is not None and s.equal is not None and s.norm is not None and s.base_norm:
            if s.base_norm > 1e-6:
                ratios.append(s.norm / s.base_norm)
    return ratios


class ScaledMerge(Rule):
    code = "XQ901"
    name = "merge-weights-scaled"
    severity = Severity.ERROR
    groups = ("merge", "base")
    requires = ("model", "base.model")
    what = (
        "GPT tensor norms stay close to the base's: fires when the median ratio ||candidate|| / ||base|| is off 1 by "
        "more than --scale-tolerance and nearly every tensor is scaled alike (interquartile range under 0.02)."
    )
    why = (
        "A weighted average whose weights do not sum to 1 scales every GPT tensor by that sum; the model loads and "
        "babbles. Fine-tuning moves norms by a few percent at most, and in both directions."
    )
    fix = "Re-run the merge with weights that sum to 1 (e.g. 0.5/0.5, not 0.5/0.7)."

    def check(self, ctx: Context) -> Iterable[Finding]:
        ratios = gpt_norm_ratios(ctx)
        if len(ratios) < 3:
            return
        median = statistics.median(ratios)
        q1, _, q3 = statistics.quantiles(ratios, n=4)
        if abs(median - 1.0) > ctx.options.scale_tolerance and q3 - q1 <= _CONSISTENT:
            yield self.finding(
                f"GPT tensors are scaled by a median {median:.3f} vs the base (interquartile {q1:.3f}-{q3:.3f} over "
                f"{len(ratios)} tensors): merge weights summing to about {median:.2f}.",
                file=ctx.candidate.describe("model"),
                median_ratio=round(median, 4),
                q1=round(q1, 4),
                q3=round(q3, 4),
                tensors=len(ratios),
            )


class ForeignLineage(Rule):
    code = "XQ902"
    name = "different-base"
    severity = Severity.ERROR
    groups = ("merge", "base")
    requires = ("model", "base.model")
    what = (
        "Reports a checkpoint whose non-GPT tensors nearly all (90 %) differ from the base and no longer point "
        "the same "
        "way (median cosine similarity under 0.95): it, or an input of its merge, descends from another base model."
    )
    why = (
        "Averaging models fine-tuned from different bases mixes unrelated weights: it loads fine and sounds wrong. "
        "Rounding (fp16) or a scaled merge change values but keep the direction, so they do not fire this rule."
    )
    fix = (
        "Check against the base it was really trained from (--base), or merge only checkpoints fine-tuned from the "
        "same base."
    )

    def check(self, ctx: Context) -> Iterable[Finding]:
        cosines = []
        for key in frozen_keys(ctx.base_tensors):
            s = ctx.stats.get(key)
            # constant tensors (fresh LayerNorm weights, zero biases) are alike in every base: no evidence
            if s is None or s.norm is None or s.equal is None or s.base_constant or s.cosine is None:
                continue
            cosines.append(s.cosine)
        if not cosines:
            return
        changed = sum(1 for c in cosines if c < 1.0 - 1e-9)
        median = statistics.median(cosines)
        if changed / len(cosines) >= 0.9 and median < _LINEAGE_COSINE:
            yield self.finding(
                f"{changed} of {len(cosines)} non-GPT tensors differ from the base with median cosine similarity "
                f"{median:.3f}: not a fine-tune of this base.",
                file=ctx.candidate.describe("model"),
                changed=changed,
                compared=len(cosines),
                median_cosine=round(median, 4),
            )
