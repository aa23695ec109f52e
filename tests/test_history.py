"""The SQLite run history: lookups, replacement of a retried run, and many processes appending at once."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest
from plugin_helpers import run_record

from xtts_qa.errors import UsageError
from xtts_qa.reporting import HistoryStore

WRITERS = 6
RUNS_EACH = 12


def test_append_and_lookup(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "deep" / "history.sqlite")
    a = run_record("20260101T000000-aaaaaa", "2026-01-01T00:00:00+00:00")
    b = run_record("20260102T000000-bbbbbb", "2026-01-02T00:00:00+00:00", wer=0.2)
    store.append(a, report_path=tmp_path / "a.html")
    store.append(b)
    assert store.count() == 2
    assert [r.run_id for r in store.runs()] == [a.run_id, b.run_id]
    assert store.runs()[0].report_path == str(tmp_path / "a.html")
    assert store.get("latest").to_dict() == b.to_dict()
    assert store.get("previous").run_id == a.run_id
    assert store.get("20260101").run_id == a.run_id
    with pytest.raises(UsageError, match="matches 2 runs"):
        store.get("2026010")
    with pytest.raises(UsageError, match="no run"):
        store.get("1999")
    store.append(b)  # a retried job re-appends the same run: still one record
    assert store.count() == 2
    assert sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _writer(path: str, worker: int, barrier: multiprocessing.synchronize.Barrier) -> None:
    store = HistoryStore(path, timeout_s=0.05, retries=200)  # short lock waits so the retry path is exercised
    barrier.wait()
    for i in range(RUNS_EACH):
        store.append(
            run_record(
                f"20260101T0000{worker:02d}-{i:06d}",
                f"2026-01-01T00:{worker:02d}:{i:02d}+00:00",
                wer=0.1 + 0.01 * i,
                checkpoints=("finetune", "merged"),
            )
        )


def test_concurrent_writers_keep_every_record(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WRITERS)
    procs = [ctx.Process(target=_writer, args=(str(path), w, barrier)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
    assert [p.exitcode for p in procs] == [0] * WRITERS
    store = HistoryStore(path)
    assert store.count() == WRITERS * RUNS_EACH
    expected = {f"20260101T0000{w:02d}-{i:06d}" for w in range(WRITERS) for i in range(RUNS_EACH)}
    assert {r.run_id for r in store.runs()} == expected
    for run_id in sorted(expected)[:: RUNS_EACH - 1]:
        record = store.get(run_id)
        assert {c.checkpoint for c in record.checks} == {"finetune", "merged"} and len(record.evals) == 2
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # each run's metrics went in with it, in the same transaction
    per_run = conn.execute("SELECT COUNT(DISTINCT run_id) FROM metrics").fetchone()[0]
    assert per_run == WRITERS * RUNS_EACH
    assert len(store.series("merged", "smoke", "wer")) == WRITERS * RUNS_EACH


def test_latest_is_the_last_appended_even_within_one_second(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.sqlite")
    same_second = "2026-01-01T00:00:00+00:00"
    # random run-id suffixes: the second run's sorts first, so a (start second, id) order would call it "previous"
    first = run_record("20260101T000000-zzzzzz", same_second)
    second = run_record("20260101T000000-aaaaaa", same_second, wer=0.9)
    store.append(first)
    store.append(second)
    assert store.get("latest").run_id == second.run_id
    assert store.get("previous").run_id == first.run_id
    assert [r.run_id for r in store.runs()] == [first.run_id, second.run_id]
    # an earlier start time appended later (another CI machine's clock) is still the latest appended
    late = run_record("20251231T235959-mmmmmm", "2025-12-31T23:59:59+00:00")
    store.append(late)
    assert store.get("latest").run_id == late.run_id


def test_version_1_history_is_migrated_in_start_order(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    store = HistoryStore(path)
    a = run_record("20260101T000000-aaaaaa", "2026-01-01T00:00:00+00:00")
    b = run_record("20260102T000000-bbbbbb", "2026-01-02T00:00:00+00:00")
    store.append(b)
    store.append(a)
    conn = sqlite3.connect(path)  # make it look like a v1 file: no seq column
    conn.executescript(
        "PRAGMA foreign_keys = OFF; CREATE TABLE old (run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT, "
        "source TEXT, label TEXT, exit_code INTEGER NOT NULL, report_path TEXT, record TEXT NOT NULL); "
        "INSERT INTO old SELECT run_id, started_at, finished_at, source, label, exit_code, report_path, record FROM runs; "
        "DROP INDEX runs_by_seq; DROP TABLE runs; ALTER TABLE old RENAME TO runs; PRAGMA user_version = 1;"
    )
    conn.close()
    assert [r.run_id for r in HistoryStore(path).runs()] == [a.run_id, b.run_id]
    c = run_record("20250101T000000-cccccc", "2025-01-01T00:00:00+00:00")
    HistoryStore(path).append(c)
    assert HistoryStore(path).get("latest").run_id == c.run_id
