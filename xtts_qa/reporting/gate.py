"""Release gates over a stored run: the evaluation's own gates plus structural ``health.*`` gates.

There is one gate parser, :func:`xtts_qa.evaluation.gates.parse_gate` (re-exported here): ``wer <= 0.5``,
``wer_delta <= 0.05``, ``garbled_count <= 0``, ``health.error <= 0``. A difference gate is re-judged on its stored
95 % bootstrap interval, so re-gating a run with a new threshold gives the outcome a fresh evaluation would
(``pass``, ``fail``, ``inconclusive``, ``not-applicable``; see :mod:`xtts_qa.evaluation.gates` for the exit-code
policy). Structural gates read a checkpoint's finding counts: ``health.error <= 0`` (the default),
``health.warning <= 3``, ``health.failed_rules <= 0``.

Precedence, per metric: a per-run override beats the suite file's gate, which beats the gate stored in the report.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from xtts_qa.evaluation.gates import Gate, parse_gate
from xtts_qa.evaluation.registry import METRICS
from xtts_qa.reporting.record import EvalEntry, RunRecord

__all__ = ["Gate", "GateResult", "parse_gate", "parse_gates", "evaluate_run", "apply_health", "DEFAULT_HEALTH_GATE"]

DEFAULT_HEALTH_GATE = "health.error <= 0"
_OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq}


@dataclass(frozen=True)
class GateResult:
    """One gate applied to one checkpoint (and suite).

    Attributes:
        expr: the gate's expression.
        metric: the metric it reads (``wer_delta``, ``health.error`` ...).
        checkpoint: the checkpoint label.
        suite: the suite (``health`` for structural gates).
        value: the measured value (None when it was not measured).
        ci: the 95 % interval a difference gate was judged on, if any.
        passed: the verdict (False for ``fail``; for ``inconclusive`` only when the run was strict).
        message: one line for humans.
        source: ``report`` (stored in the run), ``suite`` (the suite file) or ``override`` (given for this verdict).
        outcome: ``pass``, ``fail``, ``inconclusive`` or ``not-applicable``.
    """

    expr: str
    metric: str
    checkpoint: str
    suite: str
    value: float | None
    ci: tuple[float, float] | None
    passed: bool
    message: str
    source: str
    outcome: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "expr": self.expr,
            "metric": self.metric,
            "checkpoint": self.checkpoint,
            "suite": self.suite,
            "value": self.value,
            "ci": list(self.ci) if self.ci else None,
            "passed": self.passed,
            "outcome": self.outcome or ("pass" if self.passed else "fail"),
            "message": self.message,
            "source": self.source,
        }


def apply_health(gate: Gate, checkpoint: str, counts: dict[str, float], source: str) -> GateResult:
    """Judge a ``health.COUNT`` gate on one checkpoint's finding counts (``error``, ``warning``, ``info``,
    ``failed_rules``)."""
    value = counts.get(gate.metric.split(".", 1)[1])
    passed = value is not None and gate.holds(value)
    message = (
        f"{gate.metric} = {value:g} (gate {gate.op} {gate.threshold:g}): {'pass' if passed else 'fail'}"
        if value is not None
        else f"{gate.metric} was not counted"
    )
    return GateResult(
        gate.expr, gate.metric, checkpoint, "health", value, None, passed, message, source, "pass" if passed else "fail"
    )


def _apply_eval(gate: Gate, entry: EvalEntry, source: str) -> GateResult:
    """Judge ``gate`` on a stored evaluation (reusing a stored interval for difference gates)."""
    strict = bool(entry.report.get("strict"))
    stored = next((g for g in entry.report.get("gates") or [] if g.get("metric") == gate.metric), None)
    value: float | None
    ci = None
    if stored is not None and stored.get("value") is not None:
        value = float(stored["value"])
        ci = tuple(stored["ci"]) if stored.get("ci") and None not in stored["ci"] else None
    elif gate.is_delta:
        cand, base = entry.metrics("candidate").get(gate.base_metric), entry.metrics("base").get(gate.base_metric)
        value = cand - base if cand is not None and base is not None else None
    else:
        value = entry.metrics("candidate").get(gate.metric)
    has_base = entry.report.get("base") is not None
    if value is None:
        missing = METRICS[gate.base_metric].when_missing
        outcome = "not-applicable" if (gate.needs_base and not has_base) or missing == "not-applicable" else "fail"
        why = "no base model to compare with" if gate.needs_base and not has_base else "was not measured"
        return GateResult(
            gate.expr,
            gate.metric,
            entry.checkpoint,
            entry.suite,
            None,
            None,
            outcome != "fail",
            gate.message(None, None, outcome, why=why),
            source,
            outcome,
        )
    outcome = gate.judge(value, ci)  # type: ignore[arg-type]
    passed = outcome in ("pass", "not-applicable") or (outcome == "inconclusive" and not strict)
    return GateResult(
        gate.expr,
        gate.metric,
        entry.checkpoint,
        entry.suite,
        value,
        ci,
        passed,  # type: ignore[arg-type]
        gate.message(value, ci, outcome),
        source,
        outcome,
    )  # type: ignore[arg-type]


def parse_gates(texts: Iterable[str]) -> list[Gate]:
    """Parse several gate expressions (comma-separated values are split)."""
    return [parse_gate(t) for item in texts for t in str(item).split(",") if t.strip()]


def _stored(entry: EvalEntry, gate: dict[str, Any]) -> GateResult:
    ci = gate.get("ci")
    passed = bool(gate.get("passed"))
    return GateResult(
        str(gate.get("expr")),
        str(gate.get("metric")),
        entry.checkpoint,
        entry.suite,
        gate.get("value"),
        tuple(ci) if ci and None not in ci else None,
        passed,
        str(gate.get("message") or ""),
        "report",  # type: ignore[arg-type]
        str(gate.get("outcome") or ("pass" if passed else "fail")),
    )


def evaluate_run(
    record: RunRecord, overrides: Sequence[Gate] = (), suite_gates: dict[str, Sequence[Gate]] | None = None
) -> list[GateResult]:
    """Every gate verdict of a run: health gates per checkpoint, then each evaluation's gates (see module doc)."""
    suite_gates = suite_gates or {}
    results: list[GateResult] = []
    health = [g for g in overrides if g.is_health]
    for check in record.checks:
        counts = {k: float(v) for k, v in check.summary.items()}
        counts["failed_rules"] = float(sum(1 for r in check.report.get("results", []) if r.get("status") == "failed"))
        if check.report.get("unreadable"):
            results.append(
                GateResult(
                    "readable",
                    "health.unreadable",
                    check.checkpoint,
                    "health",
                    1.0,
                    None,
                    False,
                    "an input could not be read: the checkpoint cannot be judged",
                    "report",
                    "fail",
                )
            )
        chosen = {g.metric: (g, "override") for g in health}
        chosen.setdefault("health.error", (parse_gate(DEFAULT_HEALTH_GATE), "report"))
        results.extend(apply_health(g, check.checkpoint, counts, source) for g, source in chosen.values())
    extra = [g for g in overrides if not g.is_health]
    for entry in record.evals:
        chosen_eval: dict[str, tuple[Gate, str]] = {
            g.metric: (g, "suite") for g in suite_gates.get(entry.suite, ()) if not g.is_health
        }
        chosen_eval.update({g.metric: (g, "override") for g in extra})
        results.extend(_stored(entry, g) for g in entry.report.get("gates") or [] if g.get("metric") not in chosen_eval)
        results.extend(_apply_eval(g, entry, source) for g, source in chosen_eval.values())
    return results
