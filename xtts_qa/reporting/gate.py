"""Release gates: expressions such as ``delta.mean_wer<=0.02`` parsed once into :class:`Gate` objects.

Grammar: ``[SCOPE.]METRIC OP NUMBER[%]``

- ``SCOPE`` is ``candidate`` (the default), ``base``, ``delta`` (candidate minus base) or ``health`` (structural
  counts: ``health.error``, ``health.warning``, ``health.failed_rules``).
- ``OP`` is one of ``<= < >= > == !=``.
- A trailing ``%`` (``delta`` only) compares the relative change: ``delta.mean_wer<=10%`` allows WER to grow by
  a tenth of the base's.

Thresholds come from the suite file (its evaluations carry their gates) and may be overridden per run: an
override replaces every gate on the same ``SCOPE.METRIC``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from xtts_qa.errors import UsageError
from xtts_qa.reporting.record import RunRecord

__all__ = ["Gate", "GateResult", "parse_gate", "parse_gates", "evaluate_run"]

_OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq, "!=": operator.ne}
_SCOPES = ("candidate", "base", "delta", "health")
_PATTERN = re.compile(r"^\s*(?:(?P<scope>[a-z]+)\.)?(?P<metric>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op><=|>=|==|!=|<|>)\s*"
                      r"(?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<pct>%)?\s*$")


@dataclass(frozen=True)
class GateResult:
    """One gate applied to one checkpoint (and suite).

    Attributes:
        expr: the gate's expression.
        metric: ``SCOPE.METRIC``.
        checkpoint: the checkpoint label.
        suite: the suite (``health`` for structural gates).
        value: the measured value (None when it could not be measured).
        passed: whether the value satisfies the gate.
        message: one line for humans.
        source: ``suite`` (from the suite's own gates) or ``override`` (given for this run).
    """

    expr: str
    metric: str
    checkpoint: str
    suite: str
    value: float | None
    passed: bool
    message: str
    source: str = "override"

    def to_dict(self) -> dict[str, Any]:
        return {"expr": self.expr, "metric": self.metric, "checkpoint": self.checkpoint, "suite": self.suite,
                "value": self.value, "passed": self.passed, "message": self.message, "source": self.source}


@dataclass(frozen=True)
class Gate:
    """A parsed gate expression.

    Attributes:
        expr: the text it was parsed from.
        scope: candidate, base, delta or health.
        metric: the metric name (``mean_wer``, ``similarity_ref``, ``error`` ...).
        op: the comparison operator's text.
        threshold: the number compared with.
        relative: True for ``%`` gates (relative change vs base).
    """

    expr: str
    scope: str
    metric: str
    op: str
    threshold: float
    relative: bool = False

    @property
    def key(self) -> str:
        return f"{self.scope}.{self.metric}"

    def value(self, candidate: dict[str, float], base: dict[str, float]) -> float | None:
        """The measured value this gate compares (None when a needed metric is absent)."""
        if self.scope in ("candidate", "health"):
            return candidate.get(self.metric)
        if self.scope == "base":
            return base.get(self.metric)
        c, b = candidate.get(self.metric), base.get(self.metric)
        if c is None or b is None:
            return None
        if self.relative:
            return 100.0 * (c - b) / abs(b) if b else (0.0 if c == b else float("inf"))
        return c - b

    def fails(self, value: float | None) -> bool:
        """True when ``value`` violates the gate (an absent value fails: a gate never passes by accident)."""
        return value is None or not _OPS[self.op](value, self.threshold)

    def apply(self, checkpoint: str, suite: str, candidate: dict[str, float], base: dict[str, float], source: str = "override") -> GateResult:
        value = self.value(candidate, base)
        failed = self.fails(value)
        unit = "%" if self.relative else ""
        if value is None:
            message = f"{self.key} was not measured for {checkpoint}/{suite}"
        else:
            message = f"{self.key} = {value:.4g}{unit} {'violates' if failed else 'meets'} {self.op} {self.threshold:g}{unit}"
        return GateResult(self.expr, self.key, checkpoint, suite, value, not failed, message, source)


def parse_gate(text: str) -> Gate:
    """Parse one gate expression.

    Raises:
        UsageError: the expression does not follow the grammar.
    """
    match = _PATTERN.match(text)
    if not match:
        raise UsageError(f"gate {text!r} is not of the form [candidate.|base.|delta.|health.]METRIC OP NUMBER[%], e.g. 'delta.mean_wer<=0.02'")
    scope = match["scope"] or "candidate"
    if scope not in _SCOPES:
        raise UsageError(f"gate {text!r}: scope must be one of {', '.join(_SCOPES)}, not {scope!r}")
    if match["pct"] and scope != "delta":
        raise UsageError(f"gate {text!r}: a % threshold is a relative change, so it needs the delta. scope")
    return Gate(text.strip(), scope, match["metric"], match["op"], float(match["number"]), bool(match["pct"]))


def parse_gates(texts: Iterable[str]) -> list[Gate]:
    """Parse several gate expressions (comma-separated values are split)."""
    return [parse_gate(t) for item in texts for t in str(item).split(",") if t.strip()]


def _report_gate_key(gate: dict[str, Any]) -> str | None:
    try:
        return parse_gate(str(gate.get("expr", ""))).key
    except UsageError:
        metric = str(gate.get("metric") or "")
        return metric if "." in metric else (f"candidate.{metric}" if metric else None)


def evaluate_run(record: RunRecord, overrides: Sequence[Gate] = (), suite_gates: dict[str, Sequence[Gate]] | None = None) -> list[GateResult]:
    """Every gate verdict of a run: health errors, each evaluation's own gates, suite-file gates and overrides.

    Precedence, per metric key: an override beats a suite-file gate, which beats the gate stored in the eval report.
    """
    suite_gates = suite_gates or {}
    results: list[GateResult] = []
    health_overrides = [g for g in overrides if g.scope == "health"]
    for check in record.checks:
        counts = {k: float(v) for k, v in check.summary.items()}
        counts["failed_rules"] = float(sum(1 for r in check.report.get("results", []) if r.get("status") == "failed"))
        gates = health_overrides or [parse_gate("health.error==0")]
        if check.report.get("unreadable"):
            results.append(GateResult("readable", "health.unreadable", check.checkpoint, "health", 1.0, False,
                                      "an input could not be read", "suite"))
        results.extend(g.apply(check.checkpoint, "health", counts, {}, "suite" if not health_overrides else "override") for g in gates)
    eval_overrides = [g for g in overrides if g.scope != "health"]
    for entry in record.evals:
        cand, base = entry.metrics("candidate"), entry.metrics("base")
        chosen: dict[str, tuple[Gate, str]] = {}
        for g in suite_gates.get(entry.suite, ()):
            chosen[g.key] = (g, "suite")
        for g in eval_overrides:
            chosen[g.key] = (g, "override")
        for stored in entry.report.get("gates") or []:
            key = _report_gate_key(stored)
            if key in chosen:
                continue
            results.append(GateResult(str(stored.get("expr")), key or str(stored.get("metric")), entry.checkpoint, entry.suite,
                                      stored.get("value"), bool(stored.get("passed")), str(stored.get("message") or ""), "suite"))
        results.extend(g.apply(entry.checkpoint, entry.suite, cand, base, source) for g, source in chosen.values())
    return results
