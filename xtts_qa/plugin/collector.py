"""Gathers what the items handed over (from this process or from xdist workers) into one :class:`RunRecord`.

Runs in the process that writes reports: the plain pytest process, or the xdist controller.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from xtts_qa.plugin.keys import COLLECTOR, base_id
from xtts_qa.plugin.options import PluginSettings, Target
from xtts_qa.reporting import CheckEntry, EvalEntry, RunPaths, RunRecord, evaluate_run, new_run_id, parse_gates, utc_now
from xtts_qa.reporting.provenance import content_hash, environment
from xtts_qa.results import RuleResult

__all__ = ["RunCollector", "COLLECTOR", "decide_run", "coverage_of", "unit_of"]


def unit_of(nodeid: str) -> tuple[str, str]:
    """(checkpoint, part) of an xtts item id: ``health`` for a rule item, else the suite's name."""
    parts = base_id(nodeid).split("::")
    label = parts[0]
    if len(parts) >= 3:
        return label, parts[1]
    name = parts[1] if len(parts) > 1 else ""
    return label, (name[len("eval-") :] if name.startswith("eval-") else "health")


def coverage_of(planned: set[str], ran: set[str], why: str = "") -> tuple[bool, dict[str, Any]]:
    """(partial, coverage) of a run: which xtts items, rules and sentences ran against those collected.

    A run is partial when some checkpoint's structural check or some checkpoint x suite evaluation ran only in part
    (``-k XQ401``, ``--lf``, an item id, ``-x``); a part that did not run at all (``-m health`` leaves the eval items
    out) is simply not in the record, as with ``xtts-qa check``.
    """
    ran = ran & planned
    touched = {unit_of(i) for i in ran}
    missing = sorted(i for i in planned - ran if unit_of(i) in touched)

    def count(ids: set[str], kind: str) -> int:
        if kind == "rules":
            return len({base_id(i).split("::")[1].split("-")[0] for i in ids if unit_of(i)[1] == "health"})
        if kind == "sentences":
            return sum(1 for i in ids if unit_of(i)[1] != "health" and not base_id(i).endswith("::gates"))
        return len({unit_of(i)[0] for i in ids}) if kind == "checkpoints" else len(ids)

    coverage: dict[str, Any] = {
        kind: {"collected": count(planned, kind), "ran": count(ran, kind)}
        for kind in ("items", "rules", "sentences", "checkpoints")
        if count(planned, kind)
    }
    coverage["not_run"] = missing[:100]
    if missing and why:
        coverage["why"] = why
    return bool(missing), coverage


def decide_run(record: RunRecord) -> Any:
    """The run's one verdict (:func:`xtts_qa.verdict.decide` under the policy stored with the record)."""
    from xtts_qa.verdict import decide

    return decide(record)


@dataclass
class RunCollector:
    """Item results of one session, keyed by checkpoint (and suite).

    Attributes:
        run_id: this run's id.
        started_at: when the session started.
        health: checkpoint -> {"meta": ..., "rules": {code: RuleResult dict}}.
        evals: (checkpoint, suite) -> {"report": summary, "sentences": {index: sentence}}.
        paths: where the run was written (after :meth:`publish`).
        history_runs: how many runs the history holds after appending.
    """

    run_id: str = field(default_factory=new_run_id)
    started_at: str = field(default_factory=utc_now)
    health: dict[str, dict[str, Any]] = field(default_factory=dict)
    evals: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    paths: RunPaths | None = None
    history_runs: int | None = None
    record: RunRecord | None = None
    verdict: Any = None
    failed_session: bool = False
    planned: set[str] = field(default_factory=set)
    ran: set[str] = field(default_factory=set)
    why: str = ""

    def add_planned(self, nodeids: Any) -> None:
        """Item ids this run collected (from this process, or reported by an xdist worker as it finished)."""
        self.planned.update(base_id(str(n)) for n in nodeids)

    def ran_item(self, nodeid: str) -> None:
        """Note that an item ran (or was skipped or errored in setup); only xtts items count (:func:`coverage_of`)."""
        self.ran.add(base_id(nodeid))

    def add(self, payload: dict[str, Any]) -> None:
        """Take one item's payload (see :func:`xtts_qa.plugin.session.rule_payload` and the eval items)."""
        if payload.get("kind") == "health":
            entry = self.health.setdefault(payload["checkpoint"], {"meta": payload["meta"], "rules": {}})
            entry["rules"][payload["rule"]["code"]] = payload["rule"]
        elif payload.get("kind") == "eval":
            entry = self.evals.setdefault(
                (payload["checkpoint"], payload["suite"]), {"report": payload["report"], "sentences": {}}
            )
            if "sentence" in payload:
                entry["sentences"][int(payload.get("index", len(entry["sentences"])))] = payload["sentence"]

    @property
    def empty(self) -> bool:
        return not (self.health or self.evals or self.unjudged())

    def unjudged(self) -> list[str]:
        """``checkpoint/suite`` evaluations whose items ran (or were skipped, e.g. the evaluation was unavailable)
        but handed over no report: asked for and not measured, so the run cannot pass on them."""
        units = {unit_of(i) for i in self.ran & self.planned}
        return sorted(
            f"{label}/{part}" for label, part in units if part != "health" and (label, part) not in self.evals
        )

    def check_report(self, label: str) -> dict[str, Any]:
        """``CheckReport.to_dict()`` of the rules that ran on ``label`` (built by the engine, as the CLI's is)."""
        from xtts_qa.engine import build_report

        entry = self.health[label]
        results = tuple(RuleResult.from_dict(r) for r in entry["rules"].values())
        report = build_report(entry["meta"], results, sum(r.seconds for r in results))
        return report.to_dict()

    def build(self, settings: PluginSettings, targets: list[Target], device: str) -> RunRecord:
        """The run record: checks, evaluations, run-level gate overrides and provenance."""
        checks = tuple(CheckEntry(label, self.check_report(label)) for label in self.health)
        evals = []
        for (label, suite), entry in self.evals.items():
            report = dict(entry["report"])
            report["sentences"] = [entry["sentences"][i] for i in sorted(entry["sentences"])]
            evals.append(EvalEntry(label, suite, report))
        partial, coverage = coverage_of(self.planned, self.ran, self.why)
        unjudged = self.unjudged()
        if unjudged:  # an evaluation that was asked for and did not run never lets the run pass
            partial = True
            coverage["not_evaluated"] = unjudged
            coverage["why"] = ", ".join(filter(None, [coverage.get("why"), f"no evaluation of {', '.join(unjudged)}"]))
        record = RunRecord(
            self.run_id,
            self.started_at,
            utc_now(),
            "pytest",
            settings.label,
            checks,
            tuple(evals),
            partial=partial,
            coverage=coverage,
            policy=settings.policy,
        )
        gates: tuple[dict[str, Any], ...] = ()
        if settings.gates:
            overrides = parse_gates(settings.gates)
            gates = tuple(r.to_dict() for r in evaluate_run(record, overrides) if r.source == "override")
        used = {label for label in record.checkpoints}
        provenance = {
            "environment": environment(device),
            "device": device,
            "checkpoints": {
                t.label: {"target": str(t.path), "hash": content_hash(t.path)} for t in targets if t.label in used
            },
            "base": {"target": str(settings.base), "hash": content_hash(settings.base)} if settings.base else None,
            "engine": settings.engine,
            "options": {
                "intent": settings.intent,
                "select": list(settings.select),
                "ignore": list(settings.ignore),
                "suites": list(settings.suites),
                "gates": list(settings.gates),
                "fail_on": settings.fail_on,
                "engine": settings.engine,
            },
        }
        return replace(record, gates=gates, provenance=provenance)
