"""One call that files a finished run: write its reports, then append it to the history."""

from __future__ import annotations

import logging
from pathlib import Path

from xtts_qa.reporting.history import HistoryStore
from xtts_qa.reporting.record import RunRecord
from xtts_qa.reporting.writer import RunPaths, write_run

log = logging.getLogger("xtts_qa")

__all__ = ["publish"]


def publish(record: RunRecord, report_dir: str | Path, history: str | Path | None) -> RunPaths:
    """Write ``record`` under ``report_dir`` and append it to the history at ``history`` (None: no history).

    Partial runs are filed too (listed by ``xtts-qa history``) but never become ``latest``.
    """
    paths = write_run(record, report_dir)
    if history is not None:
        HistoryStore(history).append(record, report_path=paths.html)
        log.info(
            "run %s appended to %s%s",
            record.run_id,
            history,
            " (partial: kept out of latest, trends and regressions)" if record.partial else "",
        )
    return paths
