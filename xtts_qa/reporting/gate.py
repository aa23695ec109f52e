"""Release gates over a stored run: the evaluation's own gate language plus structural ``health.*`` gates.

Evaluation gates use :mod:`xtts_qa.evaluation.gates` unchanged (``wer <= 0.5``, ``wer_delta <= 0.05``,
``similarity_delta >= -0.05``): a difference gate is judged on its stored 95 % bootstrap interval, so re-gating a
run with a new threshold gives the verdict a fresh evaluation would. Structural gates read a checkpoint's finding
counts: ``health.error <= 0`` (the default), ``health.warning <= 3``, ``health.failed_rules <= 0``.

Precedence, per metric: a per-run override beats the suite file's gate, which beats the gate stored in the report.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from xtts_qa.errors import UsageError
from xtts_qa.reporting.record import EvalEntry, RunRecord

__all__ = ["Gate", "GateResult", "parse_gate", "parse_gates", "evaluate_run", "DEFAULT_HEALTH_GATE"]

DEFAULT_HEALTH_GATE = "health.error <= 0"
_HEALTH_METRICS = ("error", "warning", "info", "failed_rules")
_OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq}
_HEALTH = re.compile(r"^\s*health\.([a-z_]+)\s*(<=|>=|==|<|>)\s*(\d+(?:\.\d*)?)\s*$")


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
        passed: the verdict.
        message: one line for humans.
        source: ``report`` (stored in the run), ``suite`` (the suite file) or ``override`` (given for this verdict).
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

    def to_dict(self) -> dict[str, Any]:
        return {"expr": self.expr, "metric": self.metric, "checkpoint": self.checkpoint, "suite": self.suite, "value": self.value,
                "ci": list(self.ci) if self.ci else None, "passed": self.passed, "message": self.message, "source": self.source}


@dataclass(frozen=True)
class Gate:
    """A parsed gate.

    Attributes:
        expr: the text it was parsed from.
        metric: ``health.<count>`` or an evaluation metric (canonical name, e.g. ``similarity_ref_delta``).
        op: the comparison.
        threshold: the number compared with.
    """

    expr: str
    metric: str
    op: str
    threshold: float

    @property
    def is_health(self) -> bool:
        return self.metric.startswith("health.")

    def _eval_gate(self) -> Any:
        from xtts_qa.evaluation.gates import Gate as EvalGate

        return EvalGate(self.expr, self.metric, self.op, self.threshold)

    def apply_health(self, checkpoint: str, counts: dict[str, float], source: str) -> GateResult:
        value = counts.get(self.metric.split(".", 1)[1])
        passed = value is not None and _OPS[self.op](value, self.threshold)
        message = f"{self.metric} = {value:g} (gate {self.op} {self.threshold:g}): {'ok' if passed else 'FAILED'}" if value is not None \
            else f"{self.metric} was not counted"
        return GateResult(self.expr, self.metric, checkpoint, "health", value, None, passed, message, source)

    def apply_eval(self, entry: EvalEntry, source: str) -> GateResult:
        """Judge this gate on a stored evaluation (reusing a stored interval for difference gates)."""
        gate = self._eval_gate()
        stored = next((g for g in entry.report.get("gates") or [] if g.get("metric") == self.metric), None)
        value: float | None
        ci = None
        if stored is not None and stored.get("value") is not None:
            value = float(stored["value"])
            ci = tuple(stored["ci"]) if stored.get("ci") and None not in stored["ci"] else None
        elif gate.is_delta:
            cand, base = entry.metrics("candidate").get(gate.base_metric), entry.metrics("base").get(gate.base_metric)
            value = cand - base if cand is not None and base is not None else None
        else:
            value = entry.metrics("candidate").get(self.metric)
        if value is None:
            why = "needs a base model to compare with" if gate.is_delta else "was not measured"
            return GateResult(self.expr, self.metric, entry.checkpoint, entry.suite, None, None, False, f"{self.metric}: {why}", source)
        passed = not gate.fails(value, ci)
        return GateResult(self.expr, self.metric, entry.checkpoint, entry.suite, value, ci, passed, gate.message(value, ci, passed), source)  # type: ignore[arg-type]


def parse_gate(text: str) -> Gate:
    """Parse one gate expression (``health.*`` here, anything else with the evaluation's grammar).

    Raises:
        UsageError: malformed expression or unknown metric.
    """
    text = str(text).strip()
    if text.startswith("health."):
        match = _HEALTH.match(text)
        if not match or match.group(1) not in _HEALTH_METRICS:
            raise UsageError(f"gate {text!r} is not 'health.COUNT OP NUMBER' with COUNT one of {', '.join(_HEALTH_METRICS)} "
                             "(e.g. 'health.warning <= 3').")
        return Gate(text, f"health.{match.group(1)}", match.group(2), float(match.group(3)))
    from xtts_qa.evaluation.gates import parse_gate as parse_eval_gate

    parsed = parse_eval_gate(text)
    return Gate(parsed.expr, parsed.metric, parsed.op, parsed.threshold)


def parse_gates(texts: Iterable[str]) -> list[Gate]:
    """Parse several gate expressions (comma-separated values are split)."""
    return [parse_gate(t) for item in texts for t in str(item).split(",") if t.strip()]


def _stored(entry: EvalEntry, gate: dict[str, Any]) -> GateResult:
    ci = gate.get("ci")
    return GateResult(str(gate.get("expr")), str(gate.get("metric")), entry.checkpoint, entry.suite, gate.get("value"),
                      tuple(ci) if ci and None not in ci else None, bool(gate.get("passed")), str(gate.get("message") or ""), "report")  # type: ignore[arg-type]


def evaluate_run(record: RunRecord, overrides: Sequence[Gate] = (), suite_gates: dict[str, Sequence[Gate]] | None = None) -> list[GateResult]:
    """Every gate verdict of a run: health gates per checkpoint, then each evaluation's gates (see module doc)."""
    suite_gates = suite_gates or {}
    results: list[GateResult] = []
    health = [g for g in overrides if g.is_health]
    for check in record.checks:
        counts = {k: float(v) for k, v in check.summary.items()}
        counts["failed_rules"] = float(sum(1 for r in check.report.get("results", []) if r.get("status") == "failed"))
        if check.report.get("unreadable"):
            results.append(GateResult("readable", "health.unreadable", check.checkpoint, "health", 1.0, None, False,
                                      "an input could not be read: the checkpoint cannot be judged", "report"))
        chosen = {g.metric: (g, "override") for g in health}
        chosen.setdefault("health.error", (parse_gate(DEFAULT_HEALTH_GATE), "report"))
        results.extend(g.apply_health(check.checkpoint, counts, source) for g, source in chosen.values())
    extra = [g for g in overrides if not g.is_health]
    for entry in record.evals:
        chosen_eval: dict[str, tuple[Gate, str]] = {g.metric: (g, "suite") for g in suite_gates.get(entry.suite, ())}
        chosen_eval.update({g.metric: (g, "override") for g in extra})
        results.extend(_stored(entry, g) for g in entry.report.get("gates") or [] if g.get("metric") not in chosen_eval)
        results.extend(g.apply_eval(entry, source) for g, source in chosen_eval.values())
    return results
