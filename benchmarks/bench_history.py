"""How the SQLite run history copes with many runs: append, the dashboard's queries, latest, and prune.

Usage::

    .venv/bin/python benchmarks/bench_history.py --runs 10000 [--checkpoints 2] [--partial-every 10]

Each run is a real :class:`~xtts_qa.reporting.RunRecord` (one structural check and one small evaluation per
checkpoint, one run in ``--partial-every`` marked partial) appended in its own transaction, as pytest, ``check``,
``eval`` and ``sweep`` do. Prints one line per figure; the figures in docs/scale.md come from this script.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TypeVar

from xtts_qa.reporting import CheckEntry, EvalEntry, HistoryStore, RunRecord
from xtts_qa.results import CheckReport, Finding, RuleResult, Severity, Status


def _check(label: str, i: int) -> dict:
    findings: tuple[Finding, ...] = ()
    if i % 7 == 0:
        findings = (Finding("XQ602", "fp16-weights", Severity.WARNING, "stored in float16", "precision", "save fp32"),)
    rules = (
        RuleResult("XQ001", "readable", Status.PASSED, seconds=0.01),
        RuleResult("XQ602", "fp16-weights", Status.FAILED if findings else Status.PASSED, findings),
    )
    report = CheckReport(f"/models/{label}", "/models/base", "inference", {}, rules, True, False, 0.5).to_dict()
    report["provenance"]["checkpoint_digest"] = f"{label}-{i // 50}"
    return report


def _eval(i: int) -> dict:
    wer = 0.1 + 0.05 * ((i * 37) % 11) / 10
    sentences = [{"id": f"s{k}", "text": "Hello there.", "wer": wer, "verdict": "pass", "flags": []} for k in range(3)]
    gate = {"expr": "wer <= 0.5", "metric": "wer", "value": wer, "ci": None, "passed": True, "outcome": "pass"}
    metrics = {"wer": wer, "cer": wer / 2, "mean_wer": wer, "similarity_ref": 0.8, "rtf": 0.4, "flag_rate": 0.0}
    return {
        "kind": "eval",
        "suite": "smoke",
        "passed": True,
        "exit_code": 0,
        "gates": [gate],
        "metrics": {"candidate": metrics, "base": dict(metrics)},
        "sentences": sentences,
    }


def make_record(i: int, checkpoints: int, partial: bool, start: datetime) -> RunRecord:
    """Run number ``i`` of the benchmark: one check and one eval per checkpoint, one hour after the previous run."""
    when = (start + timedelta(hours=i)).isoformat(timespec="seconds")
    labels = [f"ckpt{c}" for c in range(checkpoints)]
    return RunRecord(
        f"{when[:19].replace('-', '').replace(':', '')}-{i:06d}",
        when,
        when,
        "pytest",
        "bench",
        tuple(CheckEntry(label, _check(label, i)) for label in labels),
        tuple(EvalEntry(label, "smoke", _eval(i)) for label in labels),
        partial=partial,
        coverage={"items": {"ran": 1, "collected": 40}} if partial else {},
    )


T = TypeVar("T")


def _timed(label: str, action: Callable[[], T], repeat: int = 1) -> T:
    t0 = time.perf_counter()
    for _ in range(repeat):
        result = action()
    ms = (time.perf_counter() - t0) * 1000 / repeat
    print(f"{label:<48} {ms:10.2f} ms")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10000, help="runs to append (default 10000)")
    parser.add_argument("--checkpoints", type=int, default=2, help="checkpoints per run (default 2)")
    parser.add_argument("--partial-every", type=int, default=10, help="every Nth run is partial (0: none)")
    parser.add_argument("--keep", type=int, default=1000, help="prune to the newest N runs at the end")
    parser.add_argument("--folder", help="where to put the database (default: a temporary folder)")
    args = parser.parse_args(argv)

    folder = Path(args.folder or tempfile.mkdtemp(prefix="bench_history_"))
    path = folder / "history.sqlite"
    path.unlink(missing_ok=True)
    store = HistoryStore(path)
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    records = [
        make_record(i, args.checkpoints, bool(args.partial_every) and i % args.partial_every == 0, start)
        for i in range(args.runs)
    ]
    t0 = time.perf_counter()
    for record in records:
        store.append(record)
    append_s = time.perf_counter() - t0
    size_mb = path.stat().st_size / 1e6
    print(f"{'runs appended':<48} {args.runs:10d}")
    print(f"{'append, total':<48} {append_s:10.2f} s")
    print(f"{'append, per run (one transaction each)':<48} {append_s * 1000 / args.runs:10.2f} ms")
    print(f"{'database size':<48} {size_mb:10.1f} MB")
    _timed("latest (latest complete run, full record)", lambda: store.get("latest"), 20)
    _timed("runs(limit=200) (dashboard run list)", lambda: store.runs(limit=200), 20)
    _timed("runs(complete_only) (all complete runs)", lambda: store.runs(complete_only=True), 5)
    _timed("series_keys()", store.series_keys, 5)
    points = _timed("series(ckpt0, smoke, wer) (one trend)", lambda: store.series("ckpt0", "smoke", "wer"), 20)
    print(f"{'  points in that series (complete runs)':<48} {len(points):10d}")
    _timed("outcomes(ckpt0, health)", lambda: store.outcomes("ckpt0", "health"), 20)
    deleted = _timed(f"prune(keep={args.keep}) + VACUUM", lambda: store.prune(keep=args.keep, vacuum=True))
    print(f"{'  runs deleted':<48} {len(deleted):10d}")
    print(f"{'database size after prune':<48} {path.stat().st_size / 1e6:10.1f} MB")
    print(f"{'python':<48} {sys.version.split()[0]:>10}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
