"""The SQLite run history: lookups, replacement of a retried run, many processes appending at once, partial runs
kept out of latest/trends/regressions, retention (prune), migrations and the compare exit code."""

from __future__ import annotations

import dataclasses
import multiprocessing
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
from plugin_helpers import run_record

from xtts_qa.cli import main
from xtts_qa.errors import UsageError
from xtts_qa.reporting import HistoryStore, RunRecord, compare_records, regressions

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
        "PRAGMA foreign_keys = OFF; CREATE TABLE old (run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, "
        "finished_at TEXT, source TEXT, label TEXT, exit_code INTEGER NOT NULL, report_path TEXT, "
        "record TEXT NOT NULL); "
        "INSERT INTO old SELECT run_id, started_at, finished_at, source, label, exit_code, report_path, record "
        "FROM runs; "
        "DROP INDEX runs_by_seq; DROP TABLE runs; ALTER TABLE old RENAME TO runs; PRAGMA user_version = 1;"
    )
    conn.close()
    assert [r.run_id for r in HistoryStore(path).runs()] == [a.run_id, b.run_id]
    c = run_record("20250101T000000-cccccc", "2025-01-01T00:00:00+00:00")
    HistoryStore(path).append(c)
    assert HistoryStore(path).get("latest").run_id == c.run_id


def _partial(record: RunRecord) -> RunRecord:
    return dataclasses.replace(record, partial=True, coverage={"items": {"ran": 1, "collected": 40}, "why": "-k XQ401"})


def test_partial_runs_are_stored_but_never_latest_nor_in_trends(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.sqlite")
    a = run_record("20260101T000000-aaaaaa", "2026-01-01T00:00:00+00:00", wer=0.1)
    b = run_record("20260102T000000-bbbbbb", "2026-01-02T00:00:00+00:00", wer=0.12)
    # `pytest -k XQ401` on a broken model: no errors seen, a wer that would dip the trend
    p = _partial(run_record("20260103T000000-pppppp", "2026-01-03T00:00:00+00:00", wer=0.9, checkpoints=("only-p",)))
    unfinished = dataclasses.replace(run_record("20260104T000000-uuuuuu", "2026-01-04T00:00:00+00:00"), finished_at="")
    for r in (a, b, p, unfinished):
        store.append(r)
    assert store.count() == 4
    listed = {s.run_id: s for s in store.runs()}
    # what ran failed (wer 0.9 > 0.5): a partial run can fail, it can never pass
    assert listed[p.run_id].partial and listed[p.run_id].outcome == "fail" and listed[p.run_id].exit_code == 1
    assert [s.run_id for s in store.runs(complete_only=True)] == [a.run_id, b.run_id]
    assert store.get("latest").run_id == b.run_id and store.get("previous").run_id == a.run_id
    assert store.latest_complete() == b.run_id
    assert store.get(p.run_id).partial  # still reachable by id
    assert [pt.run_id for pt in store.series("finetune", "smoke", "wer")] == [a.run_id, b.run_id]
    assert [pt.run_id for pt in store.outcomes("finetune", "health")] == [a.run_id, b.run_id]
    assert ("only-p", "smoke") not in store.series_keys()
    assert regressions(store.get("latest"), store.get(p.run_id)) == []  # a partial run regresses nothing
    only_partial = HistoryStore(tmp_path / "p.sqlite")
    only_partial.append(p)
    with pytest.raises(UsageError, match="no latest complete run"):
        only_partial.get("latest")


def test_history_command_marks_partial_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history = tmp_path / "h.sqlite"
    store = HistoryStore(history)
    store.append(run_record("20260101T000000-aaaaaa", "2026-01-01T00:00:00+00:00"))
    store.append(_partial(run_record("20260102T000000-pppppp", "2026-01-02T00:00:00+00:00")))
    assert main(["-q", "history", "--history", str(history)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("20260101T000000-aaaaaa") and lines[0].endswith("latest") and " pass " in lines[0]
    assert lines[1].startswith("20260102T000000-pppppp") and lines[1].endswith("partial")
    assert " inconclusive " in lines[1] and lines[2] == f"2 of 2 runs in {history}"


def test_prune_keeps_the_latest_complete_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history = tmp_path / "h.sqlite"
    store = HistoryStore(history)
    runs = [run_record(f"2026010{i}T000000-{i:06d}", f"2026-01-0{i}T00:00:00+00:00") for i in range(1, 6)]
    runs[4] = _partial(runs[4])  # the newest run is partial
    for r in runs:
        store.append(r)
    now = datetime(2026, 1, 10, tzinfo=timezone.utc)
    # dry run: nothing goes
    assert store.prune(keep=1, dry_run=True) == [r.run_id for r in runs[:3]]
    assert store.count() == 5
    # older than 7.5 days (before 2026-01-02T12:00): only the first two runs
    assert store.prune(older_than_days=7.5, now=now) == [runs[0].run_id, runs[1].run_id]
    assert [s.run_id for s in store.runs()] == [r.run_id for r in runs[2:]]
    # keep 1: the partial newest stays by count, the latest complete run stays because it is the latest complete
    assert main(["-q", "history", "--history", str(history), "prune", "--keep", "1", "--vacuum"]) == 0
    assert "deleted 1 run; 2 left" in capsys.readouterr().out
    assert [s.run_id for s in store.runs()] == [runs[3].run_id, runs[4].run_id]
    assert store.prune(keep=0) == [runs[4].run_id]  # even keep 0 keeps the latest complete run
    assert store.get("latest").run_id == runs[3].run_id
    conn = sqlite3.connect(history)  # outcomes and metrics went with their runs
    assert conn.execute("SELECT COUNT(DISTINCT run_id) FROM metrics").fetchone()[0] == 1
    assert conn.execute("SELECT COUNT(DISTINCT run_id) FROM outcomes").fetchone()[0] == 1
    assert main(["-q", "history", "--history", str(history), "prune"]) == 2  # neither --keep nor --older-than


def test_compare_exit_code_is_the_regression_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history = tmp_path / "h.sqlite"
    store = HistoryStore(history)
    a = run_record("20260101T000000-aaaaaa", "2026-01-01T00:00:00+00:00", wer=0.1)
    same = run_record("20260102T000000-bbbbbb", "2026-01-02T00:00:00+00:00", wer=0.1005)  # within tolerance
    worse = run_record("20260103T000000-cccccc", "2026-01-03T00:00:00+00:00", wer=0.1, errors=1)
    for r in (a, same, worse):
        store.append(r)
    h = ["--history", str(history)]
    assert main(["-q", "compare", a.run_id, same.run_id, *h]) == 0
    assert "no regression" in capsys.readouterr().out
    assert main(["-q", "compare", same.run_id, worse.run_id, *h]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION  finetune" in out and "errors 0 -> 1: new XQ401" in out
    assert main(["-q", "compare", worse.run_id, same.run_id, *h]) == 0  # getting better is not a regression
    slower = run_record("20260104T000000-dddddd", "2026-01-04T00:00:00+00:00", wer=0.2, gates_pass=False)
    store.append(slower)
    assert main(["-q", "compare", same.run_id, slower.run_id, *h]) == 1
    out = capsys.readouterr().out
    assert "gate wer_delta <= 0.05: pass -> fail" in out and "wer 0.111 -> 0.21" in out
    store.append(_partial(run_record("20260105T000000-pppppp", "2026-01-05T00:00:00+00:00")))
    assert main(["-q", "compare", "latest", "20260105", *h]) == 2
    assert "partial" in capsys.readouterr().out


def test_version_2_history_is_migrated_to_complete_runs(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    store = HistoryStore(path)
    a = run_record("20260101T000000-aaaaaa", "2026-01-01T00:00:00+00:00")
    store.append(a)
    conn = sqlite3.connect(path)  # make it look like a v2 file: no partial/outcome columns
    conn.executescript(
        "DROP INDEX runs_complete_by_seq; DROP INDEX outcomes_by_series; "
        "ALTER TABLE runs DROP COLUMN partial; ALTER TABLE runs DROP COLUMN outcome; PRAGMA user_version = 2;"
    )
    conn.close()
    assert HistoryStore(path).get("latest").run_id == a.run_id
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"runs_complete_by_seq", "outcomes_by_series", "metrics_by_series"} <= names
    assert HistoryStore(path).runs()[0].partial is False


def test_compare_reports_changes_only_for_rules_that_ran_in_both_runs() -> None:
    full = run_record("20260101T000000-aaaaaa", "2026-01-01T00:00:00+00:00", errors=2)
    # `pytest -k XQ401`: XQ402 did not run, so it is neither "resolved" nor new; XQ401 still ran and still fails
    report = dict(full.checks[0].report)
    report["results"] = [r for r in report["results"] if r["code"] != "XQ402"]
    partial = dataclasses.replace(
        full,
        run_id="20260102T000000-pppppp",
        checks=(dataclasses.replace(full.checks[0], report=report),),
        partial=True,
        coverage={"items": {"ran": 2, "collected": 3}, "why": "-k XQ401"},
    )
    text = "\n".join(compare_records(full, partial))
    assert "resolved XQ402" not in text and "XQ401" not in text
    # the same run with XQ402 having run and passed: now it is resolved (the test can fail)
    report["results"] = [
        *report["results"],
        {
            **next(r for r in full.checks[0].report["results"] if r["code"] == "XQ402"),
            "status": "passed",
            "findings": [],
        },
    ]
    passed = dataclasses.replace(partial, checks=(dataclasses.replace(full.checks[0], report=report),))
    assert "resolved XQ402" in "\n".join(compare_records(full, passed))
