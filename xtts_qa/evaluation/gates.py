"""Gate expressions, parsed once into :class:`Gate` objects, and their four outcomes.

Grammar: ``METRIC OP NUMBER[%]`` with OP one of ``<= < >= >``. METRIC is a name from the metric registry
(:data:`xtts_qa.evaluation.registry.METRICS`: ``wer``, ``similarity_ref``, ``garbled_count``, ``loudness`` ...),
the same name with ``_delta`` (candidate minus base; ``similarity_delta`` is short for ``similarity_ref_delta``),
or ``health.COUNT`` (``error``, ``warning``, ``info``, ``failed_rules``: structural findings, judged by
:mod:`xtts_qa.reporting.gate`). This is the only gate parser of xtts_qa.

Outcomes:

* ``pass`` / ``fail``: absolute gates are judged on the point value.
* difference gates are judged on a paired, seeded bootstrap 95 % interval over sentences: ``pass`` when the whole
  interval is on the good side of the threshold, ``fail`` when the whole interval is on the wrong side,
  ``inconclusive`` when it straddles the threshold (the suite is too small or too noisy to tell).
* ``not-applicable``: the gate's inputs are missing (a difference or paired gate without ``--base``, a real-time
  factor when every clip came from the cache). Not a failure.

Exit-code policy (:attr:`GateResult.passed`): ``fail`` fails the run; ``inconclusive`` fails it only under
``--strict``; ``pass`` and ``not-applicable`` never do.

Each difference gate also reports its minimum detectable effect: (z(0.95) + z(0.80)) x the bootstrap standard
error of the difference, the smallest change this suite would flag with 80 % power (one-sided, 5 %). When it is
larger than the gate's threshold, the suite is too small for that gate.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from xtts_qa.errors import UsageError
from xtts_qa.evaluation.registry import ALIASES, METRICS, SentenceSamples

__all__ = [
    "OUTCOMES",
    "Gate",
    "GateResult",
    "SentenceSamples",
    "parse_gate",
    "parse_gates",
    "evaluate_gates",
    "corpus_metric",
    "metric_values",
    "HEALTH_COUNTS",
]

OUTCOMES = ("pass", "fail", "inconclusive", "not-applicable")
#: structural counts a ``health.*`` gate can read
HEALTH_COUNTS = ("error", "warning", "info", "failed_rules")
_Z_ALPHA, _Z_POWER = 1.6449, 0.8416  # one-sided 5 %, 80 % power
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
}
_PATTERN = re.compile(
    r"^\s*([a-z_][a-z0-9_.]*)\s*(<=|>=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)\s*(%?)\s*$", re.IGNORECASE
)
_DELTA_ALIASES = {"similarity_delta": "similarity_ref_delta", "hallucination_delta": "high_wer_rate_delta"}


def corpus_metric(name: str, s: SentenceSamples, idx: np.ndarray | None = None) -> np.ndarray:
    """Non-paired metric ``name`` over the sentences in ``idx`` (shape [..., n]; all sentences when None)."""
    return METRICS[ALIASES.get(name, name)].value(s, None, idx)


def metric_values(samples: SentenceSamples, base: SentenceSamples | None = None) -> dict[str, float]:
    """Every metric of one model (paired ones only when ``base`` is given)."""
    out = {}
    for name, m in METRICS.items():
        if m.paired and base is None:
            continue
        out[name] = float(m.value(samples, base))
    return out


def _num(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 6)


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict.

    Attributes:
        expr: the expression as written.
        metric: the metric it reads.
        value: the metric's point value (NaN when it could not be computed).
        ci: the bootstrap 95 % interval (difference gates), else None.
        outcome: ``pass``, ``fail``, ``inconclusive`` or ``not-applicable``.
        message: one line in the user's terms.
        mde: minimum detectable effect of a difference gate (None for other gates).
        strict: inconclusive counts as a failure.
    """

    expr: str
    metric: str
    value: float
    ci: tuple[float, float] | None
    outcome: str
    message: str
    mde: float | None = None
    strict: bool = False

    @property
    def passed(self) -> bool:
        """False for ``fail``, and for ``inconclusive`` under ``--strict``."""
        return self.outcome in ("pass", "not-applicable") or (self.outcome == "inconclusive" and not self.strict)

    def to_dict(self) -> dict[str, object]:
        return {
            "expr": self.expr,
            "metric": self.metric,
            "value": _num(self.value),
            "ci": [_num(self.ci[0]), _num(self.ci[1])] if self.ci else None,
            "outcome": self.outcome,
            "passed": self.passed,
            "mde": _num(self.mde),
            "message": self.message,
        }


@dataclass(frozen=True)
class Gate:
    """A parsed gate: ``metric op threshold``.

    Attributes:
        expr: the expression as written.
        metric: canonical metric name (``wer``, ``similarity_ref_delta``, ``health.error`` ...).
        op: ``<=``, ``<``, ``>=`` or ``>``.
        threshold: the number (a trailing ``%`` divides by 100).
    """

    expr: str
    metric: str
    op: str
    threshold: float

    @property
    def is_health(self) -> bool:
        return self.metric.startswith("health.")

    @property
    def is_delta(self) -> bool:
        return self.metric.endswith("_delta")

    @property
    def base_metric(self) -> str:
        return self.metric[: -len("_delta")] if self.is_delta else self.metric

    @property
    def needs_base(self) -> bool:
        return self.is_delta or (not self.is_health and METRICS[self.base_metric].paired)

    def holds(self, value: float) -> bool:
        return bool(_OPS[self.op](value, self.threshold))

    def judge(self, value: float | None, ci: tuple[float, float] | None = None, *, missing: str = "fail") -> str:
        """The outcome for a point value (and, for difference gates, its interval)."""
        if value is None or not np.isfinite(value):
            return missing
        if self.is_delta and ci is not None and np.all(np.isfinite(ci)):
            lo, hi = ci
            worst, best = (hi, lo) if self.op in ("<=", "<") else (lo, hi)
            if self.holds(worst):
                return "pass"
            if not self.holds(best):
                return "fail"
            return "inconclusive"
        return "pass" if self.holds(value) else "fail"

    def fails(self, value: float | None, ci: tuple[float, float] | None = None) -> bool:
        """True when the outcome is ``fail``."""
        return self.judge(value, ci) == "fail"

    def message(
        self, value: float | None, ci: tuple[float, float] | None, outcome: str, mde: float | None = None, why: str = ""
    ) -> str:
        if outcome == "not-applicable":
            return f"{self.metric}: not applicable ({why or 'its inputs are missing'})"
        shown = (
            "n/a" if value is None or not np.isfinite(value) else f"{value:+.4f}" if self.is_delta else f"{value:.4f}"
        )
        text = f"{self.metric} = {shown} (gate {self.op} {self.threshold:g}): {outcome}"
        if why:
            text += f" - {why}"
        if ci is not None and np.all(np.isfinite(ci)):
            text += f"; 95% CI [{ci[0]:+.4f}, {ci[1]:+.4f}]"
        if outcome == "inconclusive":
            text += (
                " - the interval straddles the threshold: this suite cannot tell (more sentences, or --strict to fail)"
            )
        if mde is not None and np.isfinite(mde):
            text += f"; smallest detectable change {mde:.3f}"
            if mde > abs(self.threshold) and self.threshold != 0:
                text += " (larger than the threshold: the suite is too small for this gate)"
        return text


def parse_gate(expr: str) -> Gate:
    """Parse ``metric op number[%]`` (including ``health.COUNT`` gates).

    Raises:
        UsageError: malformed expression or unknown metric.
    """
    match = _PATTERN.match(str(expr))
    if not match:
        raise UsageError(
            f"gate {expr!r} is not 'METRIC OP NUMBER' (e.g. 'wer_delta <= 0.05', 'similarity_ref >= 0.6', "
            "'garbled_count <= 0', 'health.error <= 0')."
        )
    name, op, number, percent = match.groups()
    name = name.lower()
    threshold = float(number) / (100.0 if percent else 1.0)
    if name.startswith("health."):
        if name.split(".", 1)[1] not in HEALTH_COUNTS or threshold < 0:
            raise UsageError(
                f"gate {expr!r}: unknown metric {name!r} or a negative count; health gates read "
                f"{', '.join('health.' + c for c in HEALTH_COUNTS)} with a count >= 0 (e.g. 'health.warning <= 3')."
            )
        return Gate(str(expr).strip(), name, op, threshold)
    name = _DELTA_ALIASES.get(name, name)
    delta = name.endswith("_delta")
    base = name[: -len("_delta")] if delta else name
    base = ALIASES.get(base, base)
    if base not in METRICS or (delta and METRICS[base].paired):
        known = (
            ", ".join(sorted(METRICS))
            + ", each non-paired one with _delta (similarity_delta = similarity_ref_delta), and health.COUNT"
        )
        raise UsageError(f"gate {expr!r}: unknown metric {name!r}. Known: {known}.")
    return Gate(str(expr).strip(), base + ("_delta" if delta else ""), op, threshold)


def parse_gates(exprs: Sequence[str], overrides: Sequence[str] = ()) -> list[Gate]:
    """The suite's gates with per-run overrides: an override replaces every suite gate on the same metric."""
    suite = [parse_gate(e) for e in exprs]
    extra = [parse_gate(e) for e in overrides]
    replaced = {g.metric for g in extra}
    return [g for g in suite if g.metric not in replaced] + extra


def _bootstrap(
    metric: str, cand: SentenceSamples, base: SentenceSamples, rounds: int, seed: int
) -> tuple[tuple[float, float], float]:
    """(95 % interval of the paired difference, its bootstrap standard error)."""
    n = len(cand)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(rounds, n))
    diffs = corpus_metric(metric, cand, idx) - corpus_metric(metric, base, idx)
    diffs = diffs[np.isfinite(diffs)]
    if diffs.size == 0:
        return (float("nan"), float("nan")), float("nan")
    se = float(np.std(diffs))
    if se == 0.0:
        # candidate == base (or both constant): the paired difference has no spread, so the detectable effect
        # comes from the base's own sentence-to-sentence variation, as for two independent runs of it
        base_values = corpus_metric(metric, base, idx)
        se = float(np.sqrt(2.0) * np.nanstd(base_values))
    return (float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))), se


def _judge_delta(
    gate: Gate, candidate: SentenceSamples, base: SentenceSamples, rounds: int, seed: int, strict: bool
) -> GateResult:
    metric = METRICS[gate.base_metric]
    c, b = float(corpus_metric(gate.base_metric, candidate)), float(corpus_metric(gate.base_metric, base))
    value = c - b
    if not np.isfinite(value):
        if np.isfinite(b) and not np.isfinite(c):
            why = f"the candidate's {metric.label} could not be measured, the base's could"
            return GateResult(
                gate.expr, gate.metric, value, None, "fail", gate.message(value, None, "fail", why=why), None, strict
            )
        if metric.when_missing == "not-applicable" and not np.isfinite(b) and not np.isfinite(c):
            return GateResult(
                gate.expr,
                gate.metric,
                value,
                None,
                "not-applicable",
                gate.message(value, None, "not-applicable", why=f"{metric.label} not measured on either side"),
                None,
                strict,
            )
        why = f"{metric.label} could not be measured"
        return GateResult(
            gate.expr,
            gate.metric,
            value,
            None,
            "inconclusive",
            gate.message(value, None, "inconclusive", why=why),
            None,
            strict,
        )
    ci, mde = None, None
    if len(candidate) > 1:
        interval, se = _bootstrap(gate.base_metric, candidate, base, rounds, seed)
        if np.isfinite(interval[0]):
            ci, mde = interval, (_Z_ALPHA + _Z_POWER) * se
    outcome = gate.judge(value, ci)
    return GateResult(gate.expr, gate.metric, value, ci, outcome, gate.message(value, ci, outcome, mde), mde, strict)


def evaluate_gates(
    gates: Sequence[Gate],
    candidate: SentenceSamples,
    base: SentenceSamples | None,
    *,
    rounds: int = 2000,
    seed: int = 0,
    strict: bool = False,
) -> list[GateResult]:
    """Judge every evaluation gate (``health.*`` gates are skipped: they read structural checks)."""
    results = []
    for gate in gates:
        if gate.is_health:
            continue
        if gate.needs_base and base is None:
            results.append(
                GateResult(
                    gate.expr,
                    gate.metric,
                    float("nan"),
                    None,
                    "not-applicable",
                    gate.message(None, None, "not-applicable", why="no base model given (--base)"),
                    None,
                    strict,
                )
            )
            continue
        if gate.is_delta:
            assert base is not None
            results.append(_judge_delta(gate, candidate, base, rounds, seed, strict))
            continue
        metric = METRICS[gate.metric]
        value = float(metric.value(candidate, base))
        why = ""
        if not np.isfinite(value):
            why = (
                "no clip was synthesised in this run"
                if gate.metric == "rtf"
                else f"{metric.label} could not be measured"
            )
        outcome = gate.judge(value, None, missing=metric.when_missing)
        results.append(
            GateResult(
                gate.expr, gate.metric, value, None, outcome, gate.message(value, None, outcome, why=why), None, strict
            )
        )
    return results


def metric_directions() -> Mapping[str, str]:
    """name -> ``lower``/``higher`` for every metric."""
    return {n: m.direction for n, m in METRICS.items()}
