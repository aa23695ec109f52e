"""``xtts-qa dashboard``, ``xtts-qa compare RUN_A RUN_B`` and ``xtts-qa gate``: the history on the command line.

``gate`` is the CI contract: exit 0 when every gate passes, 1 when one fails, 2 when the run cannot be judged.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from xtts_qa.reporting.compare import compare_records
from xtts_qa.reporting.dashboard import write_dashboard
from xtts_qa.reporting.gate import Gate, evaluate_run, parse_gates
from xtts_qa.reporting.history import DEFAULT_HISTORY, HistoryStore
from xtts_qa.reporting.record import RunRecord, load_record

log = logging.getLogger("xtts_qa")

__all__ = ["register", "resolve_run", "suite_gates"]


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
    store = HistoryStore(args.history)
    out = Path(args.out) if args.out else store.path.parent / "dashboard.html"
    write_dashboard(store, out, args.limit)
    print(out)
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    a, b = resolve_run(args.run_a, args.history), resolve_run(args.run_b, args.history)
    print("\n".join(compare_records(a, b)))
    return 0


def _cmd_gate(args: argparse.Namespace) -> int:
    overrides = parse_gates(args.gate)
    record = resolve_run(args.run, args.history)
    results = evaluate_run(record, overrides, suite_gates(args.suite))
    unreadable = any(c.report.get("unreadable") for c in record.checks)
    unmeasured = [r for r in results if r.value is None and r.source != "report"]
    code = 2 if (unreadable or unmeasured or not results) else (0 if all(r.passed for r in results) else 1)
    if args.json:
        print(
            json.dumps({"run_id": record.run_id, "exit_code": code, "gates": [r.to_dict() for r in results]}, indent=2)
        )
    else:
        for r in results:
            print(f"{'PASS' if r.passed else 'FAIL'}  {r.checkpoint:<24} {r.suite:<12} {r.expr:<28} {r.message}")
        if not results:
            print("no checks or evaluations in this run: nothing to gate")
        print({0: "GATE PASSED", 1: "GATE FAILED", 2: "GATE CANNOT DECIDE"}[code] + f" ({record.run_id})")
    return code


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``dashboard``, ``compare`` and ``gate`` to the ``xtts-qa`` command line."""
    history_help = f"the run history (default: {DEFAULT_HISTORY})"

    p = sub.add_parser(
        "dashboard", help="write a self-contained HTML page of trends, regressions and runs from the history"
    )
    p.add_argument("--history", default=str(DEFAULT_HISTORY), help=history_help)
    p.add_argument("--out", help="where to write it (default: dashboard.html next to the history)")
    p.add_argument("--limit", type=int, default=200, help="only the newest N runs (default 200)")
    p.set_defaults(func=_cmd_dashboard)

    p = sub.add_parser(
        "compare", help="print what changed between two runs (ids, id prefixes, latest/previous or summary.json paths)"
    )
    p.add_argument("run_a", metavar="RUN_A")
    p.add_argument("run_b", metavar="RUN_B")
    p.add_argument("--history", default=str(DEFAULT_HISTORY), help=history_help)
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("gate", help="CI verdict on a run: exit 0 pass, 1 a gate failed, 2 cannot decide")
    p.add_argument(
        "run",
        nargs="?",
        default="latest",
        metavar="RUN",
        help="run id, prefix, latest (default) or a summary.json path",
    )
    p.add_argument("--history", default=str(DEFAULT_HISTORY), help=history_help)
    p.add_argument(
        "--gate",
        action="append",
        default=[],
        metavar="EXPR",
        help="override a threshold for this verdict, e.g. 'wer_delta <= 0.02' or 'health.warning <= 3'; repeatable",
    )
    p.add_argument(
        "--suite",
        action="append",
        default=[],
        metavar="FILE",
        help="take thresholds from this suite's gates (file or suite name)",
    )
    p.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    p.set_defaults(func=_cmd_gate)
