"""The one verdict of a run: structural checks, evaluations, gates and policy -> pass / fail / inconclusive.

Every place that states a run's outcome reads it from :func:`decide`: ``RunRecord.exit_code``, summary.json,
the history, ``xtts-qa gate`` and the reports. The policy table is in ``docs/verdict.md``; in short:

* **inconclusive, exit 2** (wins over everything): an input could not be read, a rule crashed, an evaluation could
  not run, a gate given for this verdict measured nothing, the baseline file cannot be read, or the run holds no
  check and no evaluation. Also a **partial** run in which nothing failed: what did not run was not vouched for.
* **fail, exit 1**: a structural finding at or above ``fail_on`` that the baseline does not accept, a
  ``health.*`` count gate that fails, an evaluation gate whose outcome is ``fail``, or ``inconclusive`` under
  ``strict``.
* **pass, exit 0**: otherwise. Inconclusive gates (not strict), not-applicable gates and baselined findings are
  listed in :attr:`Verdict.notes`.

A ``health.SEVERITY`` gate takes that severity over from ``fail_on``: with ``fail_on="warning"`` and the gate
``health.warning <= 3``, three warnings pass and four fail; errors still fail through ``fail_on``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xtts_qa.baseline import Baseline, finding_identity
from xtts_qa.errors import UsageError, XttsQaError
from xtts_qa.reporting.gate import Gate, GateResult, apply_health, evaluate_run, parse_gate
from xtts_qa.reporting.record import RunRecord, policy_of

__all__ = ["FAIL_ON", "OUTCOME_CODES", "Verdict", "checkpoint_verdict", "decide", "coverage_line"]

#: severities ``fail_on`` accepts, most severe first
FAIL_ON = ("error", "warning", "info")
OUTCOME_CODES = {"pass": 0, "fail": 1, "inconclusive": 2}
_RANK = {s: i for i, s in enumerate(FAIL_ON)}


@dataclass(frozen=True)
class Verdict:
    """A run's outcome under one policy.

    Attributes:
        outcome: ``pass``, ``fail`` or ``inconclusive``.
        exit_code: 0, 1 or 2 (the CI contract of ``pytest``, ``xtts-qa check/eval/gate``).
        reasons: one line per thing that failed or could not be decided (empty when it passed).
        notes: what did not change the outcome but a reader should know: baselined findings, inconclusive gates
            outside ``strict``, gates that do not apply.
        gates: every gate judged for this verdict (structural count gates and evaluation gates).
    """

    outcome: str
    exit_code: int
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    gates: tuple[GateResult, ...] = ()

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "passed": self.passed,
            "reasons": list(self.reasons),
            "notes": list(self.notes),
            "gates": [g.to_dict() for g in self.gates],
        }


def coverage_line(coverage: Mapping[str, Any]) -> str:
    """``ran 3 of 40 items, 1 of 38 rules (-k XQ401)`` from a record's ``coverage`` (empty text when unknown)."""
    parts = []
    for kind in ("items", "checkpoints", "rules", "sentences"):
        c = coverage.get(kind)
        if isinstance(c, Mapping) and c.get("collected") is not None:
            parts.append(f"{c.get('ran', '?')} of {c.get('collected')} {kind}")
    text = "ran " + ", ".join(parts) if parts else ""
    why = coverage.get("why")
    return f"{text} ({why})".strip() if why else text


def _baseline(ref: Any) -> tuple[Baseline | None, str]:
    """(the baseline, a problem line) from a Baseline, a path or an inline document; problems never raise."""
    if ref is None or ref == "":
        return None, ""
    if isinstance(ref, Baseline):
        return ref, ""
    try:
        if isinstance(ref, Mapping):
            return Baseline.from_dict(dict(ref)), ""
        return Baseline.load(Path(str(ref))), ""
    except XttsQaError as exc:
        return None, f"baseline cannot be used: {exc}"


def _gates(texts: Sequence[str | Gate]) -> tuple[list[Gate], list[str]]:
    gates, problems = [], []
    for item in texts:
        if isinstance(item, Gate):
            gates.append(item)
            continue
        for text in str(item).split(","):
            if not text.strip():
                continue
            try:
                gates.append(parse_gate(text))
            except UsageError as exc:
                problems.append(f"gate {text.strip()!r} cannot be applied: {exc}")
    return gates, problems


def _first_line(text: str) -> str:
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no message"


def _structural(
    record: RunRecord, fail_on: str, baseline: Baseline | None, health: list[Gate]
) -> tuple[list[str], list[str], list[str], list[GateResult]]:
    """(fails, undecided, notes, health gate results) of every structural check."""
    fails: list[str] = []
    undecided: list[str] = []
    notes: list[str] = []
    judged: list[GateResult] = []
    by_gate = {g.metric.split(".", 1)[1] for g in health}
    for check in record.checks:
        report, cp = check.report, check.checkpoint
        digest = finding_identity(report, cp)
        crashed = [r for r in report.get("results") or [] if r.get("status") == "error"]
        if report.get("unreadable"):
            undecided.append(f"{cp}: an input could not be read, so the checkpoint cannot be judged")
        for r in crashed:
            undecided.append(
                f"{cp}: rule {r.get('code')} {r.get('name')} crashed ({_first_line(r.get('error') or '')}); "
                "the checkpoint was not judged by it"
            )
        if check.exit_code == 2 and not report.get("unreadable") and not crashed:
            undecided.append(f"{cp}: the check could not vouch for the checkpoint (its report says exit code 2)")
        counts = {s: 0.0 for s in FAIL_ON}
        failed_rules = 0
        results = report.get("results")
        if results is None:  # a summary-only report: judge the counts it states
            counts.update({k: float(v) for k, v in (report.get("summary") or {}).items() if k in counts})
            for sev in FAIL_ON:
                if counts[sev] and _RANK[sev] <= _RANK[fail_on] and sev not in by_gate:
                    fails.append(f"{cp}: {counts[sev]:g} {sev} finding(s)")
        for r in results or []:
            open_findings = 0
            for f in r.get("findings") or []:
                sev, code = str(f.get("severity")), str(f.get("code"))
                if baseline is not None and baseline.accepts(digest, cp, code):
                    notes.append(f"{cp}: {code} ({sev}) accepted by the baseline {baseline.path or ''}".rstrip())
                    continue
                open_findings += 1
                counts[sev] = counts.get(sev, 0.0) + 1
                if sev in _RANK and _RANK[sev] <= _RANK[fail_on] and sev not in by_gate:
                    fails.append(f"{cp}: {code} {f.get('name')} ({sev}): {f.get('message')}")
            failed_rules += 1 if r.get("status") == "failed" and open_findings else 0
        counts["failed_rules"] = float(failed_rules)
        for gate in health:
            result = apply_health(gate, cp, counts, "policy")
            judged.append(result)
            if not result.passed:
                fails.append(f"{cp}: gate {gate.expr}: {result.message}")
    return fails, undecided, notes, judged


def _evaluations(
    record: RunRecord, overrides: list[Gate], strict: bool | None, policy_strict: bool, suite_gates: Any
) -> tuple[list[str], list[str], list[str], list[GateResult]]:
    """(fails, undecided, notes, gate results) of every evaluation."""
    fails: list[str] = []
    undecided: list[str] = []
    notes: list[str] = []
    for entry in record.evals:
        if entry.report.get("exit_code") == 2:
            undecided.append(f"{entry.checkpoint} / {entry.suite}: the evaluation could not run")
        elif not entry.report.get("gates") and not entry.passed and not overrides:
            fails.append(f"{entry.checkpoint} / {entry.suite}: the evaluation failed")
    evals_only = dataclasses.replace(record, checks=(), gates=())
    results = evaluate_run(evals_only, overrides, suite_gates)
    strict_of = {(e.checkpoint, e.suite): bool(e.report.get("strict")) for e in record.evals}
    for r in results:
        where = f"{r.checkpoint} / {r.suite}: gate {r.expr}"
        is_strict = strict if strict is not None else (policy_strict or strict_of.get((r.checkpoint, r.suite), False))
        outcome = r.outcome or ("pass" if r.passed else "fail")
        if outcome == "fail":
            if r.value is None and r.source != "report":
                undecided.append(f"{where}: {r.message} (it was not measured in this run)")
            else:
                fails.append(f"{where}: {r.message}")
        elif outcome == "inconclusive":
            (fails if is_strict else notes).append(f"{where}: {r.message}" + (" (strict)" if is_strict else ""))
        elif outcome == "not-applicable":
            notes.append(f"{where}: {r.message}")
    return fails, undecided, notes, results


def decide(
    record: RunRecord,
    *,
    fail_on: str | None = None,
    baseline: Baseline | str | Path | Mapping[str, Any] | None = None,
    gates: Sequence[str | Gate] | None = None,
    strict: bool | None = None,
    suite_gates: Mapping[str, Sequence[Gate]] | None = None,
) -> Verdict:
    """The verdict on ``record``. Each argument left at None takes what the run stored in ``record.policy``
    (gates: the policy's expressions, else the expressions of the run-level ``record.gates``; each evaluation's
    own stored gates always count unless a gate on the same metric replaces them).

    Args:
        record: the run.
        fail_on: the least severe structural finding that fails the run (``error``, ``warning`` or ``info``).
        baseline: accepted findings (a :class:`Baseline`, its file, or an inline baseline document).
        gates: gate expressions (or parsed gates) for this verdict; ``health.*`` gates read structural counts
            after the baseline, the others re-judge the stored evaluations.
        strict: inconclusive gates fail the run (None: the policy's, or each evaluation's own ``strict``).
        suite_gates: suite name -> gates from the suite file (override the stored ones, below ``gates``).

    Raises:
        UsageError: ``fail_on`` is not a severity.
    """
    policy = policy_of(record.policy)
    level = str(fail_on or policy["fail_on"]).lower()
    if level not in _RANK:
        raise UsageError(f"fail_on {level!r} is not one of {', '.join(FAIL_ON)}")
    bl, bl_problem = _baseline(baseline if baseline is not None else policy.get("baseline"))
    if gates is None:
        gates = list(policy["gates"]) or list(dict.fromkeys(str(g.get("expr")) for g in record.gates if g.get("expr")))
    parsed, gate_problems = _gates(gates)
    health = list({g.metric: g for g in parsed if g.is_health}.values())
    overrides = [g for g in parsed if not g.is_health]

    fails, undecided, notes, judged = _structural(record, level, bl, health)
    e_fails, e_undecided, e_notes, e_judged = _evaluations(
        record, overrides, strict, bool(policy["strict"]), suite_gates or {}
    )
    fails += e_fails
    undecided += e_undecided + gate_problems + ([bl_problem] if bl_problem else [])
    notes += e_notes
    if not record.checks and not record.evals:
        undecided.append("the run holds no check and no evaluation: nothing was judged")
    partial = []
    if record.partial:
        ran = coverage_line(record.coverage)
        partial.append(
            "partial run" + (f": {ran}" if ran else "") + "; what did not run was not checked (rerun without -k/--lf)"
        )
    if undecided:
        outcome, reasons = "inconclusive", undecided + fails + partial
    elif fails:
        outcome, reasons = "fail", fails + partial
    elif partial:
        outcome, reasons = "inconclusive", partial
    else:
        outcome, reasons = "pass", []
    return Verdict(outcome, OUTCOME_CODES[outcome], tuple(reasons), tuple(notes), tuple(judged + e_judged))


def checkpoint_verdict(record: RunRecord, checkpoint: str) -> Verdict:
    """The structural verdict of one checkpoint of ``record`` under the run's stored policy (fail_on, baseline and
    ``health.*`` gates): what a report's per-checkpoint row shows, so that a row never says "healthy" while the run
    fails that checkpoint on a warning under ``fail_on = "warning"``."""
    policy = policy_of(record.policy)
    exprs = list(policy["gates"]) or list(dict.fromkeys(str(g.get("expr")) for g in record.gates if g.get("expr")))
    health = [e for e in exprs if e.strip().startswith("health.")]
    checks = tuple(c for c in record.checks if c.checkpoint == checkpoint)
    alone = dataclasses.replace(record, checks=checks, evals=(), gates=(), partial=False, coverage={})
    return decide(alone, gates=health)
