"""What changed between two runs: verdicts, findings, metrics, sentence verdicts and the environment.

A **regression** (:func:`regressions`; ``xtts-qa compare`` exits 1 on one, the dashboard lists them) is, for a
checkpoint and suite present in both runs: a new error finding, a gate that passed and now fails (or a suite
verdict pass -> fail), or a tracked metric worse by more than its tolerance (:func:`tolerance`: 0.01 for rates and
similarities, 1 LUFS, 0.5 s, any increase of a sentence count; real-time factor is not compared, it measures the
machine). Partial runs have no regressions: what did not run cannot have got worse.
"""

from __future__ import annotations

from typing import Any

from xtts_qa.evaluation.registry import METRICS
from xtts_qa.reporting.record import HIGHER_IS_BETTER, RunRecord

__all__ = ["compare_records", "regressions", "tolerance"]

_VERDICT = {0: "PASS", 1: "FAIL", 2: "CANNOT DECIDE"}
#: how far a metric may move the wrong way before it is a regression, by the metric's unit
_UNIT_TOLERANCE = {"": 0.01, "cosine": 0.01, "LUFS": 1.0, "s": 0.5, "sentences": 0.5}
#: metrics that measure the machine or the text, not the model's quality
_NOT_COMPARED = frozenset({"rtf"})
#: a metric must move by more than this (absolute) to count as a change
TOLERANCE = 1e-3


def _findings(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(f["code"], f["message"]): f for r in report.get("results", []) for f in r.get("findings", [])}


def _ran(report: dict[str, Any]) -> set[str]:
    """Codes of the rules that judged the checkpoint in ``report`` (not skipped, not left out)."""
    return {str(r.get("code")) for r in report.get("results", []) if r.get("status") in ("passed", "failed")}


def tolerance(metric: str) -> float | None:
    """How much ``metric`` may get worse between runs before it counts as a regression (None: never compared)."""
    if metric in _NOT_COMPARED:
        return None
    unit = METRICS[metric].unit if metric in METRICS else ""
    return _UNIT_TOLERANCE.get(unit, 0.01)


def _worse(metric: str, delta: float) -> bool:
    return delta < 0 if metric in HIGHER_IS_BETTER else delta > 0


def _metric_lines(metric: str, a: float | None, b: float | None) -> str | None:
    if a is None and b is None:
        return None
    if a is None or b is None:
        return f"{metric}: {a if a is not None else '-'} -> {b if b is not None else '-'}"
    delta = b - a
    if abs(delta) <= TOLERANCE:
        return None
    return f"{metric}: {a:.4g} -> {b:.4g} ({delta:+.4g}, {'worse' if _worse(metric, delta) else 'better'})"


def _environment(a: RunRecord, b: RunRecord) -> list[str]:
    def flat(record: RunRecord) -> dict[str, str]:
        env = record.provenance.get("environment") or {}
        out = {k: str(v) for k, v in (env.get("versions") or {}).items()}
        out.update({k: str(env[k]) for k in ("python", "torch", "cuda") if k in env})
        if "device" in record.provenance:
            out["device"] = str(record.provenance["device"])
        return out

    fa, fb = flat(a), flat(b)
    return [f"{k}: {fa.get(k, '-')} -> {fb.get(k, '-')}" for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]


def compare_records(a: RunRecord, b: RunRecord) -> list[str]:
    """Lines describing what changed from run ``a`` to run ``b`` (empty sections are left out)."""
    lines = [
        f"compare {a.run_id} ({a.started_at}) -> {b.run_id} ({b.started_at})",
        f"verdict: {_VERDICT.get(a.exit_code)} -> {_VERDICT.get(b.exit_code)}",
    ]
    for name, record in (("A", a), ("B", b)):
        if record.partial:
            lines.append(f"run {name} is partial: findings and suites it did not run are not compared as changes")
    env = _environment(a, b)
    if env:
        lines.append("environment changed: " + "; ".join(env))
    hashes_a = a.provenance.get("checkpoints") or {}
    hashes_b = b.provenance.get("checkpoints") or {}
    for label in dict.fromkeys([*a.checkpoints, *b.checkpoints]):
        if label not in a.checkpoints or label not in b.checkpoints:
            lines.append(f"checkpoint {label}: only in {'B' if label not in a.checkpoints else 'A'}")
            continue
        section: list[str] = []
        ha, hb = (hashes_a.get(label) or {}).get("hash"), (hashes_b.get(label) or {}).get("hash")
        if ha != hb:
            section.append(f"  content hash: {ha} -> {hb}")
        ca = next((c for c in a.checks if c.checkpoint == label), None)
        cb = next((c for c in b.checks if c.checkpoint == label), None)
        if ca and cb:
            fa, fb = _findings(ca.report), _findings(cb.report)
            if a.partial or b.partial:  # a rule a partial run left out neither resolves nor raises a finding
                both = _ran(ca.report) & _ran(cb.report)
                fa = {k: f for k, f in fa.items() if k[0] in both}
                fb = {k: f for k, f in fb.items() if k[0] in both}
            for key in fb.keys() - fa.keys():
                f = fb[key]
                section.append(f"  new finding {f['code']} {f['name']} ({f['severity']}): {f['message']}")
            for key in fa.keys() - fb.keys():
                f = fa[key]
                section.append(f"  resolved {f['code']} {f['name']} ({f['severity']})")
        for ea in (e for e in a.evals if e.checkpoint == label):
            eb = next((e for e in b.evals if e.checkpoint == label and e.suite == ea.suite), None)
            if eb is None:
                section.append(f"  suite {ea.suite}: only in A")
                continue
            head = f"  suite {ea.suite}: {'pass' if ea.passed else 'fail'} -> {'pass' if eb.passed else 'fail'}"
            changed = []
            for side in ("candidate", "base"):
                ma, mb = ea.metrics(side), eb.metrics(side)
                for metric in sorted(set(ma) | set(mb)):
                    text = _metric_lines(metric, ma.get(metric), mb.get(metric))
                    if text:
                        changed.append(f"    {side} {text}")
            sa = {str(s.get("id")): s for s in ea.sentences}
            for s in eb.sentences:
                old = sa.get(str(s.get("id")))
                if old and old.get("verdict") != s.get("verdict"):
                    changed.append(
                        f"    sentence {s.get('id')}: {old.get('verdict')} -> {s.get('verdict')} "
                        f"(wer {old.get('wer')} -> {s.get('wer')})"
                    )
            if changed or ea.passed != eb.passed:
                section.append(head)
                section.extend(changed)
        for eb in (e for e in b.evals if e.checkpoint == label):
            if not any(e.suite == eb.suite for e in a.evals if e.checkpoint == label):
                section.append(f"  suite {eb.suite}: only in B")
        lines.append(f"checkpoint {label}: " + ("changed" if section else "no change"))
        lines.extend(section)
    return lines


def _errors(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {(code, msg) for (code, msg), f in _findings(report).items() if f.get("severity") == "error"}


def _gate_passed(report: dict[str, Any]) -> dict[str, bool]:
    return {str(g.get("expr")): bool(g.get("passed")) for g in report.get("gates") or []}


def regressions(previous: RunRecord | None, current: RunRecord) -> list[tuple[str, str, str]]:
    """(checkpoint, suite, what) for every way ``current`` is worse than ``previous``: new error findings, gates
    newly failing, metrics worse beyond their :func:`tolerance` (see the module doc). None when either is partial."""
    if previous is None or previous.partial or current.partial:
        return []
    out = []
    for cb in current.checks:
        ca = next((c for c in previous.checks if c.checkpoint == cb.checkpoint), None)
        if ca is None:
            continue
        new = sorted(_errors(cb.report) - _errors(ca.report))
        if new:
            codes = ", ".join(dict.fromkeys(code for code, _ in new))
            what = f"errors {ca.summary.get('error', 0)} -> {cb.summary.get('error', 0)}: new {codes}"
            out.append((cb.checkpoint, "health", what))
    for eb in current.evals:
        ea = next((e for e in previous.evals if e.checkpoint == eb.checkpoint and e.suite == eb.suite), None)
        if ea is None:
            continue
        if ea.passed and not eb.passed:
            out.append((eb.checkpoint, eb.suite, "suite verdict pass -> fail"))
        ga, gb = _gate_passed(ea.report), _gate_passed(eb.report)
        for expr in gb:
            if ga.get(expr) and not gb[expr]:
                out.append((eb.checkpoint, eb.suite, f"gate {expr}: pass -> fail"))
        ma, mb = ea.metrics(), eb.metrics()
        for metric in sorted(set(ma) & set(mb)):
            delta, tol = mb[metric] - ma[metric], tolerance(metric)
            if tol is not None and abs(delta) > tol and _worse(metric, delta):
                out.append((eb.checkpoint, eb.suite, f"{metric} {ma[metric]:.3g} -> {mb[metric]:.3g}"))
    return out
