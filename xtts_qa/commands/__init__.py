"""The ``xtts-qa`` sub-commands, one module per command family (each has ``register(subparsers)``), and what the
commands that file runs share: the ``--report-dir/--history/--no-record`` options and where a run record goes.

Where a command-line run is filed (``check``, ``eval``), first match wins:

* report folder: ``--report-dir``, else ``report_dir`` in ``[tool.xtts_qa]``, else ``reports/`` next to the
  pyproject.toml the settings came from (the folder the pytest plugin writes to), else ``reports/`` in the current
  folder;
* history: ``--history``, else ``history`` in ``[tool.xtts_qa]``, else ``<report folder>/history.sqlite``
  (``off`` disables it);
* ``--no-record`` (or ``XTTS_QA_RECORD=off`` in the environment) writes neither.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xtts_qa.reporting.record import RunRecord
    from xtts_qa.reporting.writer import RunPaths
    from xtts_qa.settings import Settings

log = logging.getLogger("xtts_qa")

__all__ = ["OFF", "add_record_options", "default_report_dir", "file_run", "history_path", "record_destination"]

#: values of ``--history`` / ``XTTS_QA_RECORD`` that switch it off
OFF = ("off", "none", "no", "0", "false")


def add_record_options(p: argparse.ArgumentParser) -> None:
    """``--report-dir``, ``--history``, ``--no-record`` and ``--label`` (the run-record options of check and eval)."""
    p.add_argument(
        "--report-dir",
        default=None,
        metavar="DIR",
        help="where the run record (summary.json, sentences.jsonl, report.html) is written, one folder per run "
        "(default: report_dir in [tool.xtts_qa], else reports/ next to pyproject.toml, else ./reports)",
    )
    p.add_argument(
        "--history",
        default=None,
        metavar="FILE",
        help="SQLite run history to append to, read by gate/compare/dashboard (default: history in [tool.xtts_qa], "
        "else REPORT_DIR/history.sqlite; 'off' to disable)",
    )
    p.add_argument(
        "--no-record",
        action="store_true",
        help="write no run record and no history row (also XTTS_QA_RECORD=off)",
    )
    p.add_argument("--label", default="", help="a free label stored with the run (CI job, branch)")


def default_report_dir(settings: Settings) -> Path:
    """``report_dir`` from ``[tool.xtts_qa]``, else ``reports/`` next to the pyproject.toml, else ``./reports``."""
    if settings.report_dir is not None:
        return settings.report_dir
    return (settings.source.parent if settings.source is not None else Path.cwd()) / "reports"


def history_path(settings: Settings, override: str | None = None, report_dir: Path | None = None) -> Path | None:
    """The history file: ``override`` (a command's ``--history``; 'off' gives None), else ``history`` from
    ``[tool.xtts_qa]``, else ``<report dir>/history.sqlite``. ``gate``, ``compare`` and ``dashboard`` can read the
    same default as ``check`` and ``eval`` write."""
    if override:
        return None if override.strip().lower() in OFF else Path(os.path.abspath(os.path.expanduser(override)))
    if settings.history is not None:
        return settings.history
    return (report_dir or default_report_dir(settings)) / "history.sqlite"


def record_destination(args: argparse.Namespace, settings: Settings) -> tuple[Path | None, Path | None]:
    """(report folder, history file) for this run; (None, None) with ``--no-record``; history None when 'off'."""
    if getattr(args, "no_record", False) or os.environ.get("XTTS_QA_RECORD", "").strip().lower() in OFF:
        return None, None
    if getattr(args, "report_dir", None):
        report_dir = Path(os.path.abspath(os.path.expanduser(args.report_dir)))
    else:
        report_dir = default_report_dir(settings)
    return report_dir, history_path(settings, getattr(args, "history", None), report_dir)


def file_run(
    record: RunRecord, report_dir: Path | None, history: Path | None, *, folder: Path | None = None
) -> RunPaths | None:
    """Write ``record`` into ``report_dir/<run id>`` (or ``folder``) and append it to ``history``.

    A record that cannot be written is a warning, not a changed verdict: the check's result still stands and the
    warning names the folder and the reason. Returns the paths written, or None.
    """
    from xtts_qa.errors import XttsQaError
    from xtts_qa.reporting.history import HistoryStore
    from xtts_qa.reporting.writer import write_run

    if report_dir is None and folder is None:
        return None
    try:
        paths = write_run(record, report_dir or Path(folder or "."), folder=folder)
    except OSError as exc:
        log.warning("xtts-qa: run record not written to %s: %s", folder or report_dir, exc)
        return None
    except Exception as exc:  # a defect in the report writer must not hide the verdict the user asked for
        log.debug("writing the run record failed", exc_info=True)
        log.warning(
            "xtts-qa: run record not written to %s: internal error %s: %s (please report it; XTTS_QA_DEBUG=1 and -v "
            "show the traceback)",
            folder or report_dir,
            type(exc).__name__,
            exc,
        )
        if os.environ.get("XTTS_QA_DEBUG"):
            raise
        return None
    if history is not None:
        try:
            HistoryStore(history).append(record, report_path=paths.html)
            log.info("run %s appended to %s", record.run_id, history)
        except (OSError, XttsQaError) as exc:
            log.warning("xtts-qa: run %s not appended to the history %s: %s", record.run_id, history, exc)
    return paths
