"""The run history: an embedded SQLite store that many processes may append to at once.

Concurrency: WAL journal (readers never block the writer), a busy timeout, one ``BEGIN IMMEDIATE`` transaction
per run (a run is stored whole or not at all) and retries with jittered back-off when the database stays locked
longer than the timeout. Each run's full :class:`RunRecord` is kept as JSON beside the metrics it is indexed by.

Partial runs (``RunRecord.partial``: ``pytest -k``, ``--lf``, an interrupted sweep) are stored and listed, but
``latest``/``previous``, metric series and outcomes read only finished, complete runs. :meth:`HistoryStore.prune`
is the retention policy (``xtts-qa history prune``); it never deletes the latest complete run.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar

from xtts_qa.errors import InputError, UsageError
from xtts_qa.reporting.record import RunRecord

log = logging.getLogger("xtts_qa")

__all__ = ["DEFAULT_HISTORY", "RunSummary", "Point", "HistoryStore"]

#: where runs are appended unless configured otherwise
DEFAULT_HISTORY = Path("reports") / "history.sqlite"
_SCHEMA_VERSION = 3
#: ``seq`` is the insertion order, assigned under the write lock: ``latest`` is the run appended last, never the
#: one whose start time (second resolution, clocks of different CI machines) happens to sort last.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id      TEXT PRIMARY KEY,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    source      TEXT,
    label       TEXT,
    exit_code   INTEGER NOT NULL,
    report_path TEXT,
    record      TEXT NOT NULL,
    seq         INTEGER,
    partial     INTEGER NOT NULL DEFAULT 0,
    outcome     TEXT
);
CREATE TABLE IF NOT EXISTS outcomes (
    run_id          TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    checkpoint      TEXT NOT NULL,
    suite           TEXT NOT NULL,
    checkpoint_hash TEXT,
    exit_code       INTEGER NOT NULL,
    PRIMARY KEY (run_id, checkpoint, suite)
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id     TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    checkpoint TEXT NOT NULL,
    suite      TEXT NOT NULL,
    side       TEXT NOT NULL,
    metric     TEXT NOT NULL,
    value      REAL,
    PRIMARY KEY (run_id, checkpoint, suite, side, metric)
);
CREATE INDEX IF NOT EXISTS runs_by_time ON runs(started_at);
CREATE INDEX IF NOT EXISTS runs_by_seq ON runs(seq);
CREATE INDEX IF NOT EXISTS metrics_by_series ON metrics(checkpoint, suite, metric, side);
CREATE INDEX IF NOT EXISTS outcomes_by_series ON outcomes(checkpoint, suite);
CREATE INDEX IF NOT EXISTS runs_complete_by_seq ON runs(partial, seq);
"""
#: a run that ``latest``, ``previous``, series and outcomes may read: finished and complete
_COMPLETE = "r.partial = 0 AND COALESCE(r.finished_at, '') != ''"
_T = TypeVar("_T")


@dataclass(frozen=True)
class RunSummary:
    """One stored run, without its full record.

    Attributes:
        run_id: the run's id.
        started_at: ISO-8601 UTC start.
        source: what produced it.
        label: the user's label.
        exit_code: the run's verdict (0 pass, 1 fail, 2 cannot decide) under its stored policy.
        report_path: its HTML report, if one was written.
        partial: only part of what was collected ran.
        finished_at: ISO-8601 UTC end ("" while unknown).
        outcome: ``pass``, ``fail`` or ``inconclusive`` ("" for runs stored before outcomes were).
    """

    run_id: str
    started_at: str
    source: str
    label: str
    exit_code: int
    report_path: str | None
    partial: bool = False
    finished_at: str = ""
    outcome: str = ""


@dataclass(frozen=True)
class Point:
    """One value of a metric series: which run, when, and the value."""

    run_id: str
    started_at: str
    value: float | None
    exit_code: int
    report_path: str | None


def _locked(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class HistoryStore:
    """Append-only history of runs in one SQLite file.

    Args:
        path: the database file (created with its folder on first append).
        timeout_s: how long one attempt waits for a lock before it is retried.
        retries: how many times a locked write is retried before giving up.
    """

    def __init__(self, path: str | Path = DEFAULT_HISTORY, timeout_s: float = 30.0, retries: int = 8) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self.retries = retries
        self._local = threading.local()

    def _retry(self, action: Callable[[], _T]) -> _T:
        delay = 0.05
        for attempt in range(self.retries + 1):
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if not _locked(exc) or attempt == self.retries:
                    raise
                log.debug("history %s locked (%s); retry %d", self.path, exc, attempt + 1)
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")

    def __getstate__(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "_local"}  # connections do not cross processes

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    def close(self) -> None:
        """Close this thread's connection (a later call opens a new one)."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    @contextmanager
    def _connect(self, *, create: bool) -> Iterator[sqlite3.Connection]:
        """This thread's connection, opened (and the schema created or migrated) on first use.

        Kept open between calls: closing the last connection to a WAL database checkpoints and fsyncs it, which
        made every append cost tens of milliseconds on a busy disk.
        """
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid() or not self.path.exists():
            if not create and not self.path.exists():
                raise InputError(
                    self.path,
                    "no history here yet.",
                    "run `pytest` with the xtts_qa plugin (or pass --history) first.",
                )
            self.close()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=self.timeout_s, isolation_level=None)
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
                conn.execute("PRAGMA foreign_keys = ON")
                self._retry(lambda: self._ensure_schema(conn))  # creates, or migrates an older file before reading
            except BaseException:
                conn.close()
                raise
            self._local.conn, self._local.pid = conn, os.getpid()
        try:
            yield conn
        except sqlite3.DatabaseError as exc:
            if not (isinstance(exc, sqlite3.OperationalError) and _locked(exc)):
                self.close()  # a broken or replaced file: the next call opens it afresh
            raise

    @staticmethod
    def _ensure_schema(conn: sqlite3.Connection) -> None:
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == _SCHEMA_VERSION:
            return
        if version > _SCHEMA_VERSION:
            raise UsageError(
                f"history schema {version} is newer than this xtts-qa understands ({_SCHEMA_VERSION}); upgrade xtts-qa"
            )
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated it
            if version == 1:  # add the insertion sequence; old runs keep their start-time order
                conn.execute("ALTER TABLE runs ADD COLUMN seq INTEGER")
                conn.execute(
                    "UPDATE runs SET seq = (SELECT COUNT(*) FROM runs r2 WHERE r2.started_at < runs.started_at "
                    "OR (r2.started_at = runs.started_at AND r2.run_id <= runs.run_id))"
                )
            if version in (1, 2):  # runs stored before partial runs were marked were complete
                conn.execute("ALTER TABLE runs ADD COLUMN partial INTEGER NOT NULL DEFAULT 0")
                conn.execute("ALTER TABLE runs ADD COLUMN outcome TEXT")
            for statement in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def append(self, record: RunRecord, report_path: str | Path | None = None) -> None:
        """Store one run in a single transaction (retried while the database is locked).

        Appending the same run id twice replaces the earlier copy (a retried CI job stays one record).
        """
        prov = record.provenance.get("checkpoints") or {}
        outcomes: dict[tuple[str, str], int] = {}
        for check in record.checks:
            outcomes[(check.checkpoint, "health")] = check.exit_code
        for entry in record.evals:
            outcomes[(entry.checkpoint, entry.suite)] = entry.exit_code
        verdict = record.verdict()
        payload = json.dumps(record.to_dict(), default=str)
        metrics = [(record.run_id, *row) for row in record.metric_rows()]

        def write() -> None:
            with self._connect(create=True) as conn:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute("DELETE FROM runs WHERE run_id = ?", (record.run_id,))
                    seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM runs").fetchone()[0]
                    conn.execute(
                        "INSERT INTO runs (run_id, started_at, finished_at, source, label, exit_code, report_path, "
                        "record, seq, partial, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            record.run_id,
                            record.started_at,
                            record.finished_at,
                            record.source,
                            record.label,
                            verdict.exit_code,
                            str(report_path) if report_path else None,
                            payload,
                            seq,
                            int(record.partial),
                            verdict.outcome,
                        ),
                    )
                    conn.executemany(
                        "INSERT INTO outcomes (run_id, checkpoint, suite, checkpoint_hash, exit_code) "
                        "VALUES (?, ?, ?, ?, ?)",
                        [
                            (record.run_id, cp, suite, (prov.get(cp) or {}).get("hash"), code)
                            for (cp, suite), code in outcomes.items()
                        ],
                    )
                    conn.executemany("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?, ?)", metrics)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise

        self._retry(write)

    def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple]:
        def read() -> list[tuple]:
            with self._connect(create=False) as conn:
                return conn.execute(sql, params).fetchall()

        return self._retry(read)

    def runs(self, limit: int | None = None, *, complete_only: bool = False) -> list[RunSummary]:
        """Stored runs in the order they were appended, oldest first (the newest ``limit`` when given).

        ``complete_only`` leaves out partial and unfinished runs (what trends and regression lists read).
        """
        sql = (
            "SELECT run_id, started_at, source, label, exit_code, report_path, partial, "
            "COALESCE(finished_at, ''), COALESCE(outcome, '') FROM runs r"
            + (f" WHERE {_COMPLETE}" if complete_only else "")
            + " ORDER BY seq DESC"
        )
        rows = self._query(sql + (f" LIMIT {int(limit)}" if limit else ""))
        return [
            RunSummary(
                run_id=row[0],
                started_at=row[1],
                source=row[2],
                label=row[3],
                exit_code=int(row[4]),
                report_path=row[5],
                partial=bool(row[6]),
                finished_at=row[7],
                outcome=row[8],
            )
            for row in reversed(rows)
        ]

    def count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM runs")[0][0])

    def get(self, run_id: str) -> RunRecord:
        """A stored run by id, unique id prefix, or ``latest`` / ``previous``: the last and the one before among
        the finished, complete runs, in the order they were appended (partial runs are reachable by id only).

        Raises:
            UsageError: no such run, or a prefix that matches several.
        """
        if run_id in ("latest", "previous"):
            runs = self.runs(limit=2, complete_only=True)
            wanted = runs[-1:] if run_id == "latest" else runs[-2:-1]
            if not wanted:
                raise UsageError(
                    f"the history {self.path} has no {run_id} complete run (partial runs are left out; "
                    "`xtts-qa history` lists every run by id)"
                )
            run_id = wanted[0].run_id
        rows = self._query(
            "SELECT record FROM runs WHERE run_id = ? OR run_id LIKE ? ORDER BY run_id", (run_id, run_id + "%")
        )
        exact = [r for r in rows if json.loads(r[0])["run_id"] == run_id]
        if exact:
            rows = exact
        if not rows:
            raise UsageError(f"no run {run_id!r} in {self.path}; `xtts-qa dashboard` lists the runs")
        if len(rows) > 1:
            raise UsageError(f"run id prefix {run_id!r} matches {len(rows)} runs in {self.path}; give more of it")
        return RunRecord.from_dict(json.loads(rows[0][0]))

    def series_keys(self) -> list[tuple[str, str]]:
        """Every (checkpoint, suite) with at least one stored outcome (suite ``health`` for structural checks)."""
        return [
            (r[0], r[1])
            for r in self._query(
                f"SELECT DISTINCT checkpoint, suite FROM outcomes o JOIN runs r USING (run_id) WHERE {_COMPLETE} "
                "ORDER BY checkpoint, suite"
            )
        ]

    def outcomes(self, checkpoint: str, suite: str) -> list[Point]:
        """The verdict of one (checkpoint, suite) in every complete run that had it, oldest first."""
        rows = self._query(
            "SELECT o.run_id, r.started_at, o.exit_code, r.report_path FROM outcomes o JOIN runs r USING (run_id) "
            f"WHERE o.checkpoint = ? AND o.suite = ? AND {_COMPLETE} ORDER BY r.seq",
            (checkpoint, suite),
        )
        return [Point(run_id, started, float(code), int(code), report) for run_id, started, code, report in rows]

    def series(self, checkpoint: str, suite: str, metric: str, side: str = "candidate") -> list[Point]:
        """One metric of one (checkpoint, suite) over the complete runs, oldest first."""
        rows = self._query(
            "SELECT m.run_id, r.started_at, m.value, o.exit_code, r.report_path "
            "FROM metrics m JOIN runs r USING (run_id) "
            "JOIN outcomes o ON o.run_id = m.run_id AND o.checkpoint = m.checkpoint AND o.suite = m.suite "
            f"WHERE m.checkpoint = ? AND m.suite = ? AND m.metric = ? AND m.side = ? AND {_COMPLETE} ORDER BY r.seq",
            (checkpoint, suite, metric, side),
        )
        return [Point(*row) for row in rows]

    def metric_names(self, checkpoint: str, suite: str) -> list[str]:
        rows = self._query(
            "SELECT DISTINCT metric FROM metrics WHERE checkpoint = ? AND suite = ? ORDER BY metric",
            (checkpoint, suite),
        )
        return [r[0] for r in rows]

    def latest_complete(self) -> str | None:
        """The id of the latest finished, complete run (None when there is none)."""
        runs = self.runs(limit=1, complete_only=True)
        return runs[0].run_id if runs else None

    def prune(
        self,
        *,
        keep: int | None = None,
        older_than_days: float | None = None,
        vacuum: bool = False,
        dry_run: bool = False,
        now: datetime | None = None,
    ) -> list[str]:
        """Delete old runs (with their outcomes and metrics) in one transaction; returns the ids deleted, oldest first.

        A run is deleted when it is outside the newest ``keep`` runs and (when given) started more than
        ``older_than_days`` ago; with only one of the two, that one decides. The latest complete run is never
        deleted. ``vacuum`` gives the freed pages back to the file system afterwards.

        Raises:
            UsageError: neither limit given, or a negative one.
        """
        if keep is None and older_than_days is None:
            raise UsageError("history prune needs --keep N and/or --older-than DAYS")
        if (keep is not None and keep < 0) or (older_than_days is not None and older_than_days < 0):
            raise UsageError("history prune: --keep and --older-than take numbers >= 0")
        cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=older_than_days or 0)

        def old(started: str) -> bool:
            if older_than_days is None:
                return True
            try:
                when = datetime.fromisoformat(started.replace("Z", "+00:00"))
            except ValueError:
                log.warning("history run started at %r: not a time; pruning leaves it", started)
                return False
            return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)) < cutoff

        def work() -> list[str]:
            with self._connect(create=False) as conn:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    rows = conn.execute("SELECT run_id, started_at FROM runs ORDER BY seq DESC").fetchall()
                    newest = conn.execute(
                        f"SELECT run_id FROM runs r WHERE {_COMPLETE} ORDER BY seq DESC LIMIT 1"
                    ).fetchone()
                    protected = newest[0] if newest else None
                    doomed = [
                        run_id
                        for i, (run_id, started) in enumerate(rows)
                        if (keep is None or i >= keep) and old(str(started)) and run_id != protected
                    ][::-1]  # oldest first
                    if not dry_run:
                        for start in range(0, len(doomed), 500):
                            chunk = doomed[start : start + 500]
                            conn.execute(
                                f"DELETE FROM runs WHERE run_id IN ({','.join('?' * len(chunk))})", tuple(chunk)
                            )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                if vacuum and doomed and not dry_run:
                    conn.execute("VACUUM")
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the smaller file lands on disk now
                return doomed

        deleted = self._retry(work)
        log.debug("history %s: %s %d run(s)", self.path, "would prune" if dry_run else "pruned", len(deleted))
        return deleted
