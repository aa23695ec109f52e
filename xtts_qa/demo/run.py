"""``xtts-qa demo``: build the scenario family (tiny real XTTS models) and check each one, in about a minute."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from tqdm import tqdm

from xtts_qa.cache import cache_dir
from xtts_qa.engine import check
from xtts_qa.render import render_check
from xtts_qa.results import CheckReport, Severity
from xtts_qa.rules import CheckOptions

log = logging.getLogger("xtts_qa")

__all__ = ["register", "run_structural_demo"]

#: scenarios whose full report the demo prints after the table
_SHOWCASE = ("sequential-broken-dvae", "merge-cross-base")


def run_structural_demo(root: Path, size: str = "tiny", names: list[str] | None = None) -> tuple[list[tuple[object, CheckReport, bool]], object]:
    """Build the family under ``root`` and check every scenario. Returns (scenario, report, as_catalogued) rows."""
    from xtts_qa.demo.scenarios import SCENARIOS, Family

    started = time.perf_counter()
    family = Family(root, size)
    log.info("base model ready in %s (%.1fs)", family.base.folder, time.perf_counter() - started)
    rows = []
    chosen = [s for s in SCENARIOS if names is None or s.name in names]
    for s in tqdm(chosen, desc="scenarios", unit="model", file=sys.stderr, disable=None):
        target = s.build(family)
        report = check(target, family.base.folder if s.with_base else None, CheckOptions(intent=s.intent))
        errors = {f.code for f in report.findings if f.severity is Severity.ERROR}
        as_catalogued = (
            s.expect <= errors and not (s.healthy and errors) and not (s.forbid & report.codes())
            and report.exit_code == s.expected_exit and report.loads_in_coqui == s.loads
        )
        rows.append((s, report, as_catalogued))
    return rows, family


def _table(rows: list[tuple[object, CheckReport, bool]]) -> str:
    out = [f"{'scenario':28} {'exit':>4}  {'loads':5}  {'errors found':34} story"]
    for s, report, ok in rows:
        errors = sorted({f.code for f in report.findings if f.severity is Severity.ERROR}) or ["-"]
        loads = {True: "yes", False: "no", None: "?"}[report.loads_in_coqui]
        mark = "" if ok else "  << NOT AS CATALOGUED"
        out.append(f"{s.name:28} {report.exit_code:>4}  {loads:5}  {','.join(errors):34} {s.story}{mark}")  # type: ignore[attr-defined]
    return "\n".join(out)


def _cmd_demo(args: argparse.Namespace) -> int:
    root = Path(args.out) if args.out else cache_dir("demo", args.size)
    rows, _ = run_structural_demo(root, args.size, args.scenario or None)
    print(f"Structural check of {len(rows)} catalogued situations ({args.size} XTTS-v2 models in {root})\n")
    print(_table(rows))
    for s, report, _ in rows:
        if s.name in _SHOWCASE:  # type: ignore[attr-defined]
            print("\n" + "-" * 100)
            print(f"{s.name}: {s.story}\n")  # type: ignore[attr-defined]
            print(render_check(report, colour=sys.stdout.isatty()))
    bad = [s.name for s, _, ok in rows if not ok]  # type: ignore[attr-defined]
    print("\n" + ("every scenario behaved as catalogued." if not bad else f"NOT as catalogued: {', '.join(bad)}"))
    code = 0 if not bad else 1
    if not args.no_eval:
        from xtts_qa.demo import evaluation_demo

        code = max(code, evaluation_demo(root, args))
    return code


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="build a family of small real XTTS-v2 models (healthy and broken) and check them")
    p.add_argument("--out", help="where to build the models (default: the xtts_qa cache, outside the repo)")
    p.add_argument("--size", choices=("tiny", "full"), default="tiny", help="tiny (seconds) or full XTTS-v2 size (1.87 GB each)")
    p.add_argument("--scenario", action="append", default=[], help="only these scenarios (repeatable)")
    p.add_argument("--no-eval", action="store_true", help="skip the short listening evaluation")
    p.set_defaults(func=_cmd_demo)
