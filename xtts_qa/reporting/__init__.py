"""Reports, history and release gates for xtts_qa runs.

Data flows one way: check and eval results (``CheckReport.to_dict()``, ``EvalReport.to_dict()``) -> a
:class:`RunRecord` -> files on disk (:func:`write_run`), the SQLite history (:class:`HistoryStore`), the dashboard
(:func:`write_dashboard`), comparisons (:func:`compare_records`) and gate verdicts (:func:`evaluate_run`).
"""

from __future__ import annotations

from xtts_qa.reporting.compare import compare_records, regressions
from xtts_qa.reporting.dashboard import render_dashboard, write_dashboard
from xtts_qa.reporting.gate import Gate, GateResult, evaluate_run, parse_gate, parse_gates
from xtts_qa.reporting.history import DEFAULT_HISTORY, HistoryStore
from xtts_qa.reporting.publish import publish
from xtts_qa.reporting.record import CheckEntry, EvalEntry, RunRecord, load_record, new_run_id, utc_now
from xtts_qa.reporting.writer import RunPaths, write_run

__all__ = [
    "DEFAULT_HISTORY",
    "CheckEntry",
    "EvalEntry",
    "Gate",
    "GateResult",
    "HistoryStore",
    "RunPaths",
    "RunRecord",
    "compare_records",
    "evaluate_run",
    "load_record",
    "new_run_id",
    "parse_gate",
    "parse_gates",
    "publish",
    "regressions",
    "render_dashboard",
    "utc_now",
    "write_dashboard",
    "write_run",
]
