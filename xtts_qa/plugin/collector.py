"""Gathers what the items handed over (from this process or from xdist workers) into one :class:`RunRecord`.

Runs in the process that writes reports: the plain pytest process, or the xdist controller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from xtts_qa.plugin.options import PluginSettings, Target
from xtts_qa.reporting import CheckEntry, EvalEntry, RunPaths, RunRecord, evaluate_run, new_run_id, parse_gates, utc_now
from xtts_qa.reporting.provenance import content_hash, environment
from xtts_qa.results import RuleResult

__all__ = ["RunCollector", "COLLECTOR"]


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
        return not (self.health or self.evals)

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
        record = RunRecord(self.run_id, self.started_at, utc_now(), "pytest", settings.label, checks, tuple(evals))
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
            "options": {
                "intent": settings.intent,
                "select": list(settings.select),
                "ignore": list(settings.ignore),
                "suites": list(settings.suites),
                "gates": list(settings.gates),
            },
        }
        return RunRecord(
            record.run_id,
            record.started_at,
            record.finished_at,
            record.source,
            record.label,
            record.checks,
            record.evals,
            gates,
            provenance,
        )


COLLECTOR = pytest.StashKey[RunCollector]()
