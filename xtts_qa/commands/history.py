"""The history on the command line: ``gate``, ``compare``, ``dashboard``, ``baseline`` and ``history``.

``gate`` is the CI contract: its exit code is :func:`xtts_qa.verdict.decide` on the run (0 pass, 1 fail,
2 cannot decide), under the policy stored with the run unless an option overrides it. ``compare`` exits 1 on a
regression (see :mod:`xtts_qa.reporting.compare`).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from xtts_qa.baseline import Baseline
from xtts_qa.errors import UsageError
from xtts_qa.reporting.compare import compare_records, regressions
from xtts_qa.reporting.gate import Gate, parse_gates
from xtts_qa.reporting.history import HistoryStore
from xtts_qa.reporting.record import RunRecord, load_record
from xtts_qa.verdict import FAIL_ON, decide

log = logging.getLogger("xtts_qa")

__all__ = ["register", "resolve_run", "suite_gates", "history_path"]

_BANNER = {0: "GATE PASSED", 1: "GATE FAILED", 2: "GATE CANNOT DECIDE"}


def history_path(args: argparse.Namespace) -> Path:
    """The history ``check``, ``eval`` and the pytest plugin write: ``--history``, else ``history`` from
    ``[tool.xtts_qa]``, else ``reports/history.sqlite`` next to the pyproject.toml (else in the current folder)."""
    from xtts_qa.commands import history_path as shared_history_path
    from xtts_qa.settings import load_settings

    settings = getattr(args, "settings", None) or load_settings()
    path = shared_history_path(settings, getattr(args, "history", None))
    if path is None:
        raise UsageError("--history off: these commands read the history; name a history file instead")
    return path


def resolve_run(ref: str, history: str | Path) -> RunRecord:
    """A run from a summary.json / run folder path, or from the history by id, id prefix, ``latest`` or ``previous``."""
    path = Path(ref)
    if path.suffix == ".json" or path.is_dir() or path.is_file():
        return load_record(path)
    return HistoryStore(history).get(ref)


def suite_gates(refs: list[str]) -> dict[str, list[Gate]]:
    """The gates each suite file (or suite name) declares, keyed by the suite's name."""
    from xtts_qa.evaluation.suite import load_suite

    out: dict[str, list[Gate]] = {}
    for ref in refs:
        suite = load_suite(ref)
        out[suite.name] = parse_gates(suite.gates)
    return out


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from xtts_qa.reporting.dashboard import write_dashboard

    store = HistoryStore(history_path(args))
    out = Path(args.out) if args.out else store.path.parent / "dashboard.html"
    write_dashboard(store, out, args.limit)
    print(out)
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    history = history_path(args)
    a, b = resolve_run(args.run_a, history), resolve_run(args.run_b, history)
    print("\n".join(compare_records(a, b)))
    if a.partial or b.partial:
        print("COMPARE CANNOT DECIDE: a partial run has no regressions to report; compare complete runs")
        return 2
    found = regressions(a, b)
    for checkpoint, suite, what in found:
        print(f"REGRESSION  {checkpoint:<24} {suite:<12} {what}")
    print(f"{len(found)} regression{'s' if len(found) != 1 else ''}" if found else "no regression")
    return 1 if found else 0


def _cmd_gate(args: argparse.Namespace) -> int:
    overrides = parse_gates(args.gate) if args.gate else None
    baseline = Baseline.load(args.baseline) if args.baseline else None  # a bad file is an InputError (exit 2)
    record = resolve_run(args.run, history_path(args))
    verdict = decide(
        record,
        fail_on=args.fail_on,
        baseline=baseline,
        gates=overrides,
        strict=args.strict,
        suite_gates=suite_gates(args.suite),
    )
    if args.json:
        doc: dict[str, Any] = {"run_id": record.run_id, "partial": record.partial, **verdict.to_dict()}
        print(json.dumps(doc, indent=2))
        return verdict.exit_code
    for r in verdict.gates:
        status = {"pass": "PASS", "fail": "FAIL", "inconclusive": "UNSURE", "not-applicable": "N/A"}.get(
            r.outcome, "PASS" if r.passed else "FAIL"
        )
        print(f"{status}  {r.checkpoint:<24} {r.suite:<12} {r.expr:<28} {r.message}")
    for reason in verdict.reasons:
        print(f"  - {reason}")
    for note in verdict.notes:
        print(f"  note: {note}")
    partial = " (partial run)" if record.partial else ""
    print(f"{_BANNER[verdict.exit_code]} ({record.run_id}){partial}")
    return verdict.exit_code


def _cmd_baseline(args: argparse.Namespace) -> int:
    record = resolve_run(args.run, history_path(args))
    baseline = Baseline.from_record(record)
    path = baseline.write(args.output)
    if record.partial:
        log.warning("run %s is partial: the baseline holds only the findings of the rules that ran", record.run_id)
    print(f"{path}: {len(baseline)} accepted finding{'s' if len(baseline) != 1 else ''} from run {record.run_id}")
    return 0


def _cmd_history(args: argparse.Namespace) -> int:
    store = HistoryStore(history_path(args))
    if getattr(args, "action", None) == "prune":
        deleted = store.prune(keep=args.keep, older_than_days=args.older_than, vacuum=args.vacuum, dry_run=args.dry_run)
        verb = "would delete" if args.dry_run else "deleted"
        print(f"{verb} {len(deleted)} run{'s' if len(deleted) != 1 else ''}; {store.count()} left in {store.path}")
        for run_id in deleted if args.verbose_list else []:
            print(f"  {run_id}")
        return 0
    runs = store.runs(limit=args.limit)
    latest = store.latest_complete()
    for s in runs:
        outcome = s.outcome or {0: "pass", 1: "fail"}.get(s.exit_code, "inconclusive")
        marks = " ".join(m for m in ("partial" if s.partial else "", "latest" if s.run_id == latest else "") if m)
        print(f"{s.run_id:<24} {s.started_at:<26} {s.source:<7} {outcome:<12} {s.label:<16} {marks}".rstrip())
    print(f"{len(runs)} of {store.count()} runs in {store.path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``dashboard``, ``compare``, ``gate``, ``baseline`` and ``history`` to the ``xtts-qa`` command line."""
    history_help = (
        "the run history (default: history in [tool.xtts_qa], else reports/history.sqlite next to pyproject.toml)"
    )
    run_help = "run id, id prefix, latest (default), previous, or a summary.json / run folder path"

    p = sub.add_parser(
        "dashboard",
        help="write a self-contained HTML page of trends, regressions and runs from the history",
        description="Write one self-contained HTML page of the history: trends and regressions (complete runs only)"
        " and every run, partial ones marked.",
    )
    p.add_argument("--history", help=history_help)
    p.add_argument("--out", help="where to write it (default: dashboard.html next to the history)")
    p.add_argument("--limit", type=int, default=200, help="only the newest N runs (default 200)")
    p.set_defaults(func=_cmd_dashboard)

    p = sub.add_parser(
        "compare",
        help="what changed between two runs; exit 1 on a regression",
        description="Print what changed from RUN_A to RUN_B. Exit 0: no regression; 1: a regression (a new error "
        "finding, a gate that passed and now fails, or a metric worse beyond its tolerance); 2: a run cannot be "
        "read or is partial.",
    )
    p.add_argument("run_a", metavar="RUN_A", help="the earlier run: " + run_help)
    p.add_argument("run_b", metavar="RUN_B", help="the later run: " + run_help)
    p.add_argument("--history", help=history_help)
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser(
        "gate",
        help="CI verdict on a run: exit 0 pass, 1 fail, 2 cannot decide",
        description="Judge a stored run with the policy stored with it (fail_on, baseline, gates, strict) unless an "
        "option here overrides it. The exit code is the run's verdict: 0 pass, 1 fail, 2 cannot decide (an "
        "unreadable input, a crashed rule, a partial run, nothing measured). See docs/verdict.md.",
    )
    p.add_argument("run", nargs="?", default="latest", metavar="RUN", help=run_help)
    p.add_argument("--history", help=history_help)
    p.add_argument(
        "--gate",
        action="append",
        default=[],
        metavar="EXPR",
        help="judge with this gate instead of the run's stored gates on that metric, e.g. 'wer_delta <= 0.02' or "
        "'health.warning <= 3'; repeatable",
    )
    p.add_argument(
        "--suite",
        action="append",
        default=[],
        metavar="FILE",
        help="take thresholds from this suite's gates (file or suite name); --gate wins over it",
    )
    p.add_argument(
        "--fail-on",
        choices=FAIL_ON,
        default=None,
        help="least severe structural finding that fails the run (default: the run's stored policy, else error)",
    )
    p.add_argument(
        "--baseline", metavar="FILE", help="accepted findings (xtts-qa baseline) instead of the run's stored one"
    )
    strict = p.add_mutually_exclusive_group()
    strict.add_argument(
        "--strict", dest="strict", action="store_true", default=None, help="inconclusive gates fail the run"
    )
    strict.add_argument(
        "--no-strict", dest="strict", action="store_false", help="inconclusive gates do not fail the run"
    )
    p.add_argument("--json", action="store_true", help="print the verdict (outcome, reasons, gates) as JSON")
    p.set_defaults(func=_cmd_gate)

    p = sub.add_parser(
        "baseline",
        help="write a baseline file accepting every structural finding of a run",
        description="Write a baseline (JSON) that accepts every structural finding of RUN, each by checkpoint "
        "digest (else label) and rule code. Pass it to `gate --baseline`, `check --baseline` or [tool.xtts_qa] "
        "baseline. An existing baseline at -o is replaced; any other file there is left alone (exit 2).",
    )
    p.add_argument("run", nargs="?", default="latest", metavar="RUN", help=run_help)
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the baseline file to write")
    p.add_argument("--history", help=history_help)
    p.set_defaults(func=_cmd_baseline)

    p = sub.add_parser(
        "history",
        help="list the stored runs, or prune old ones (history prune --keep N / --older-than DAYS)",
        description="List the stored runs, newest last, with their outcome; partial runs are marked and never "
        "count as latest. `history prune` deletes old runs (never the latest complete one).",
    )
    p.add_argument("--history", help=history_help)
    p.add_argument("--limit", type=int, default=50, help="list only the newest N runs (default 50)")
    p.set_defaults(func=_cmd_history, action="list")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    q = actions.add_parser(
        "prune",
        help="delete old runs: outside the newest --keep N and/or older than --older-than DAYS",
        description="Delete runs (with their metrics) outside the newest N and/or started more than DAYS ago; "
        "with both, a run must match both to go. The latest complete run is always kept.",
    )
    q.add_argument("--history", default=argparse.SUPPRESS, help=history_help)
    q.add_argument("--keep", type=int, metavar="N", help="keep the newest N runs")
    q.add_argument("--older-than", type=float, metavar="DAYS", help="delete only runs started more than DAYS ago")
    q.add_argument("--vacuum", action="store_true", help="give the freed space back to the file system (VACUUM)")
    q.add_argument("--dry-run", action="store_true", help="say what would be deleted, delete nothing")
    q.add_argument("--list", dest="verbose_list", action="store_true", help="print each deleted run id")
    q.set_defaults(func=_cmd_history)
