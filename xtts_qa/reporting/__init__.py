"""Reports, history and release gates for xtts_qa runs.

Data flows one way: check and eval results (``CheckReport.to_dict()``, ``EvalReport.to_dict()``) -> a
:class:`RunRecord` -> files on disk (:func:`write_run`), the SQLite history (:class:`HistoryStore`), the dashboard
(:func:`write_dashboard`), comparisons (:func:`compare_records`, :func:`regressions`) and gate verdicts
(:func:`evaluate_run`). The run's one verdict is :func:`xtts_qa.verdict.decide` (``RunRecord.exit_code``).
"""

from __future__ import annotations

from xtts_qa.reporting.compare import compare_records, regressions
from xtts_qa.reporting.dashboard import render_dashboard, write_dashboard
from xtts_qa.reporting.gate import Gate, GateResult, evaluate_run, parse_gate, parse_gates
from xtts_qa.reporting.history import DEFAULT_HISTORY, HistoryStore, RunSummary
from xtts_qa.reporting.publish import publish
from xtts_qa.reporting.record import (
    DEFAULT_POLICY,
    CheckEntry,
    EvalEntry,
    RunRecord,
    load_record,
    new_run_id,
    policy_of,
    utc_now,
)
from xtts_qa.reporting.writer import RunPaths, write_run

__all__ = [
    "DEFAULT_HISTORY",
    "DEFAULT_POLICY",
    "CheckEntry",
    "EvalEntry",
    "Gate",
    "GateResult",
    "HistoryStore",
    "RunPaths",
    "RunRecord",
    "RunSummary",
    "compare_records",
    "evaluate_run",
    "load_record",
    "new_run_id",
    "parse_gate",
    "parse_gates",
    "policy_of",
    "publish",
    "regressions",
    "render_dashboard",
    "utc_now",
    "write_dashboard",
    "write_run",
]
