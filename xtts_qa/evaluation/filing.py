"""File a finished ``xtts-qa eval`` run the way the pytest plugin does: a run record (summary.json,
sentences.jsonl, report.html) in the output folder, appended to the SQLite history."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from xtts_qa.evaluation.results import EvalReport

log = logging.getLogger("xtts_qa")

__all__ = ["file_eval_run"]


def file_eval_run(
    report: EvalReport, out_dir: str | Path, history: str | Path | None, *, started_at: str, label: str = ""
) -> Any:
    """Write ``report`` as a one-evaluation run record into ``out_dir`` and append it to ``history`` (None: not).

    Returns the :class:`~xtts_qa.reporting.writer.RunPaths`.
    """
    from xtts_qa.reporting.history import HistoryStore
    from xtts_qa.reporting.record import EvalEntry, RunRecord, new_run_id, utc_now
    from xtts_qa.reporting.writer import write_run

    data = report.to_dict()
    checkpoint = Path(report.candidate).name or report.candidate
    provenance = {
        "device": report.provenance.get("device"),
        "environment": {"versions": report.provenance.get("versions") or {}},
        "checkpoints": {checkpoint: {"target": report.candidate, "hash": report.provenance.get("candidate_hash")}},
    }
    if report.base:
        provenance["base"] = {"target": report.base, "hash": report.provenance.get("base_hash")}
    record = RunRecord(
        new_run_id(),
        started_at,
        utc_now(),
        "cli",
        label,
        (),
        (EvalEntry(checkpoint, report.suite, data),),
        (),
        provenance,
    )
    paths = write_run(record, Path(out_dir).parent, folder=out_dir)
    if history is not None:
        HistoryStore(history).append(record, report_path=paths.html)
        log.info("run %s appended to %s", record.run_id, history)
    return paths
