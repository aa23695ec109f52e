"""File a finished ``xtts-qa eval`` run the way the pytest plugin does: a run record (summary.json,
sentences.jsonl, report.html) and a row in the SQLite history."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from xtts_qa.evaluation.results import EvalReport
from xtts_qa.reporting.record import RunRecord

log = logging.getLogger("xtts_qa")

__all__ = ["eval_record", "file_eval_run"]


def eval_record(
    report: EvalReport, *, started_at: str, label: str = "", policy: dict[str, Any] | None = None
) -> RunRecord:
    """A one-evaluation run record (source ``cli``) for ``report``, labelled like the plugin labels checkpoints."""
    from xtts_qa.labels import checkpoint_labels
    from xtts_qa.reporting.provenance import environment
    from xtts_qa.reporting.record import DEFAULT_POLICY, EvalEntry, new_run_id, utc_now

    data = report.to_dict()
    checkpoint = checkpoint_labels([report.candidate])[0] if report.candidate else "candidate"
    provenance = {
        "device": report.provenance.get("device"),
        "environment": environment(report.provenance.get("device")),
        "checkpoints": {checkpoint: {"target": report.candidate, "hash": report.provenance.get("candidate_hash")}},
        "base": {"target": report.base, "hash": report.provenance.get("base_hash")} if report.base else None,
        "options": {"suites": [report.suite]},
    }
    return RunRecord(
        new_run_id(),
        started_at,
        utc_now(),
        "cli",
        label,
        evals=(EvalEntry(checkpoint, report.suite, data),),
        provenance=provenance,
        policy={**DEFAULT_POLICY, **(policy or {})},
    )


def file_eval_run(
    report: EvalReport,
    out_dir: str | Path | None,
    history: str | Path | None,
    *,
    started_at: str,
    label: str = "",
    report_dir: str | Path | None = None,
    policy: dict[str, Any] | None = None,
) -> tuple[RunRecord, Any]:
    """Write ``report`` as a one-evaluation run record into ``out_dir`` (else ``report_dir/<run id>``) and append it
    to ``history`` (None: not). Returns the record and the :class:`~xtts_qa.reporting.writer.RunPaths` (None when
    it could not be written; a warning says why)."""
    from xtts_qa.commands import file_run

    record = eval_record(report, started_at=started_at, label=label, policy=policy)
    folder = Path(out_dir) if out_dir is not None else None
    paths = file_run(
        record, Path(report_dir) if report_dir else None, Path(history) if history else None, folder=folder
    )
    return record, paths
