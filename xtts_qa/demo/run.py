"""``xtts-qa demo``: build the scenario family (tiny real XTTS models) and check each one, in about a minute."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from xtts_qa.errors import UsageError
from xtts_qa.progress import plural, progress

if TYPE_CHECKING:  # torch and coqui-tts load only when the demo runs, not for `xtts-qa --help`
    from xtts_qa.demo.scenarios import Family, Scenario
    from xtts_qa.results import CheckReport

log = logging.getLogger("xtts_qa")

__all__ = ["register", "run_structural_demo"]

#: scenarios whose full report the demo prints after the table
_SHOWCASE = ("sequential-broken-dvae", "merge-cross-base")


Row = tuple["Scenario", "CheckReport", bool]


def run_structural_demo(root: Path, size: str = "tiny", names: list[str] | None = None) -> tuple[list[Row], Family]:
    """Build the family under ``root`` and check every scenario. Returns (scenario, report, as_catalogued) rows."""
    from xtts_qa.demo.scenarios import SCENARIOS, Family
    from xtts_qa.engine import check
    from xtts_qa.rules import CheckOptions

    started = time.perf_counter()
    family = Family(root, size)
    log.info("base model ready in %s (%.1fs)", family.base.folder, time.perf_counter() - started)
    rows = []
    chosen = [s for s in SCENARIOS if names is None or s.name in names]
    for s in progress(chosen, "scenarios", "model"):
        target = s.build(family)
        report = check(target, family.base.folder if s.with_base else None, CheckOptions(intent=s.intent))
        rows.append((s, report, not s.mismatches(report)))
    return rows, family


def _table(rows: list[Row]) -> str:
    from xtts_qa.results import Severity

    out = [f"{'scenario':28} {'exit':>4}  {'loads':5}  {'errors found':34} story"]
    for s, report, ok in rows:
        errors = sorted({f.code for f in report.findings if f.severity is Severity.ERROR}) or ["-"]
        loads = {True: "yes", False: "no", None: "?"}[report.loads_in_coqui]
        mark = "" if ok else "  << NOT AS CATALOGUED"
        out.append(f"{s.name:28} {report.exit_code:>4}  {loads:5}  {','.join(errors):34} {s.story}{mark}")
    return "\n".join(out)


def scenario_names(requested: list[str]) -> list[str] | None:
    """The scenarios ``--scenario`` asked for (repeatable, comma-separated), or None for all of them.

    Raises:
        UsageError: a name is not a catalogued scenario (the message lists the valid names).
    """
    from xtts_qa.demo.scenarios import SCENARIOS

    names = [n.strip() for item in requested for n in item.split(",") if n.strip()]
    known = [s.name for s in SCENARIOS]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(
            f"unknown scenario{'s' if len(unknown) > 1 else ''} {', '.join(repr(n) for n in unknown)}; "
            f"valid names: {', '.join(known)}."
        )
    return names or None


def _cmd_demo(args: argparse.Namespace) -> int:
    from xtts_qa.cache import cache_dir
    from xtts_qa.check_text import render_check

    names = scenario_names(args.scenario)
    root = Path(args.out) if args.out else cache_dir("demo", args.size)
    rows, _ = run_structural_demo(root, args.size, names)
    print(f"Structural check of {plural(len(rows), 'catalogued situation')} ({args.size} XTTS-v2 models in {root})\n")
    print(_table(rows))
    for s, report, _ in rows:
        if s.name in _SHOWCASE:
            print("\n" + "-" * 100)
            print(f"{s.name}: {s.story}\n")
            print(render_check(report, colour=sys.stdout.isatty()))
    bad = [s.name for s, _, ok in rows if not ok]
    print("\n" + ("every scenario behaved as catalogued." if not bad else f"NOT as catalogued: {', '.join(bad)}"))
    code = 0 if not bad else 1
    if not args.no_eval:
        code = max(code, evaluation_demo(root, args))
    return code


def evaluation_demo(root: Path, args: argparse.Namespace) -> int:
    """The short listening evaluation the demo runs after the structural checks (see the evaluation issue).

    Two evaluations on the first sentences of the ``smoke-en`` suite: espeak-ng (command backend) against itself,
    which must pass, and a tiny XTTS model against its base, which must fail the absolute floors because random
    weights speak gibberish. Returns 0 when both behave so, else 1.
    """
    from dataclasses import replace

    from xtts_qa.evaluation.runner import EvalOptions, run_eval
    from xtts_qa.evaluation.synth import SynthOptions

    print("\n" + "-" * 100)
    print("Listening evaluation (suite smoke-en, faster-whisper with the offline Whisper base model, resemblyzer)\n")
    quick = EvalOptions(progress=False, limit=3)
    runs = [
        ("espeak-ng vs itself (command backend)", "espeak-ng", "espeak-ng", replace(quick, backend="command"), True)
    ]
    if args.size == "tiny":
        candidate = root / "sequential-broken-dvae"
        candidate = candidate if (candidate / "model.pth").is_file() else root / "base"
        xtts = replace(quick, limit=2, synth=SynthOptions(max_audio_tokens=40))
        runs.append(
            (f"tiny XTTS {candidate.name} vs base (random weights)", str(candidate), str(root / "base"), xtts, False)
        )
    else:
        print("(the XTTS part runs only with --size tiny: full-size models take minutes per sentence on a CPU)")
    as_expected = True
    for title, cand, base, options, should_pass in runs:
        report = run_eval(
            cand, base, "smoke-en", replace(options, out_dir=root / "eval" / ("espeak" if should_pass else "xtts"))
        )
        m = report.metrics
        failed = ", ".join(g.expr for g in report.failed_gates) or "none"
        ok = report.passed == should_pass
        as_expected &= ok
        print(f"{title}: {'PASSED' if report.passed else 'FAILED'} ({'as expected' if ok else 'NOT as expected'})")

        def fmt(value: float | None, spec: str) -> str:
            return "n/a" if value is None else format(value, spec)

        print(
            f"    wer {fmt(m.wer, '.2f')}  high-WER sentences {fmt(m.high_wer_rate, '.0%')}  similarity to reference "
            f"{fmt(m.similarity_ref, '.2f')}  rtf {fmt(m.rtf, '.2f')}  gates failed: {failed}"
        )
        worst = max(report.sentences, key=lambda s: s.wer)
        flags = ", ".join(worst.flags) or "no flags"
        print(f"    worst sentence: {worst.text!r} heard as {worst.transcript or '(nothing)'!r} [{flags}]")
    print(f"\naudio and reports under {root / 'eval'}")
    return 0 if as_expected else 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` sub-command."""
    p = sub.add_parser(
        "demo",
        help="build a family of small real XTTS-v2 models (healthy and broken) and check them",
        description="Build the catalogued scenarios (a healthy fine-tune and each known way a checkpoint breaks) as "
        "small real XTTS-v2 models with coqui-tts, check each one, and say whether every verdict matches the "
        "catalogue; then a short listening evaluation. Exits 0 when everything behaved as catalogued.",
    )
    p.add_argument("--out", help="where to build the models (default: the xtts_qa cache, outside the repo)")
    p.add_argument(
        "--size", choices=("tiny", "full"), default="tiny", help="tiny (seconds) or full XTTS-v2 size (1.87 GB each)"
    )
    p.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="NAME",
        help="only these scenarios (repeatable, comma-separated; e.g. finetune, sequential-broken-dvae; an unknown "
        "name lists the valid ones)",
    )
    p.add_argument("--no-eval", action="store_true", help="skip the short listening evaluation")
    p.set_defaults(func=_cmd_demo)
