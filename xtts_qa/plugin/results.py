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
from xtts_qa.results import SCHEMA_VERSION, Severity

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
            entry = self.evals.setdefault((payload["checkpoint"], payload["suite"]), {"report": payload["report"], "sentences": {}})
            if "sentence" in payload:
                entry["sentences"][int(payload.get("index", len(entry["sentences"])))] = payload["sentence"]

    @property
    def empty(self) -> bool:
        return not (self.health or self.evals)

    def check_report(self, label: str) -> dict[str, Any]:
        """A ``CheckReport.to_dict()``-shaped dict from the rules that ran on ``label``."""
        entry = self.health[label]
        meta = entry["meta"]
        results = [entry["rules"][code] for code in sorted(entry["rules"])]
        findings = [f for r in results for f in r["findings"]]
        summary = {s.value: sum(1 for f in findings if f["severity"] == s.value) for s in Severity}
        exit_code = 2 if meta.get("unreadable") else (1 if summary["error"] else 0)
        return {
            "schema_version": SCHEMA_VERSION, "kind": "check", "target": meta["target"], "base": meta["base"],
            "layout": meta["layout"], "files": meta["files"], "loads_in_coqui": meta["loads_in_coqui"],
            "unreadable": meta["unreadable"], "exit_code": exit_code, "summary": summary,
            "seconds": round(sum(r.get("seconds", 0.0) for r in results), 3), "results": results, "provenance": meta["provenance"],
        }

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
            "checkpoints": {t.label: {"target": str(t.path), "hash": content_hash(t.path)} for t in targets if t.label in used},
            "base": {"target": str(settings.base), "hash": content_hash(settings.base)} if settings.base else None,
            "options": {"intent": settings.intent, "select": list(settings.select), "ignore": list(settings.ignore),
                        "suites": list(settings.suites), "gates": list(settings.gates)},
        }
        return RunRecord(record.run_id, record.started_at, record.finished_at, record.source, record.label,
                         record.checks, record.evals, gates, provenance)


COLLECTOR = pytest.StashKey[RunCollector]()
