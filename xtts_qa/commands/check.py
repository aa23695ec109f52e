"""``xtts-qa check``, ``rules`` and ``rule``: structural health checks of checkpoints and the rule documentation.

``check`` takes several targets and globs (``xtts-qa check 'runs/*/checkpoint_*.pth' --base base/``), prints one
report per checkpoint in the chosen ``--format`` plus a summary line, files a run record (summary.json,
sentences.jsonl, report.html) and a history row like the pytest plugin does, and exits with the run's verdict
(:func:`xtts_qa.verdict.decide`): 0 pass, 1 a finding at or above ``--fail-on`` that the baseline does not accept,
2 a checkpoint could not be checked.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from xtts_qa.errors import InputError, UsageError, XttsQaError

log = logging.getLogger("xtts_qa")

__all__ = ["expand_targets", "register"]

_GLOB_CHARS = set("*?[")


def expand_targets(patterns: list[str]) -> list[Path]:
    """Checkpoint paths from the command line: ``~`` expanded, globs expanded (sorted, ``**`` recursive), every path
    made absolute with ``..`` resolved (symlinks are kept), duplicates dropped (first one kept).

    Raises:
        InputError: a glob matches nothing.
    """
    out: dict[Path, None] = {}
    for pattern in patterns:
        pattern = os.path.expanduser(pattern)
        if _GLOB_CHARS & set(pattern) and not os.path.exists(pattern):
            matches = sorted(glob.glob(pattern, recursive=True))
            if not matches:
                raise InputError(
                    pattern,
                    "matches no file or folder.",
                    "check the pattern (quote it so the shell does not expand it first) and the current folder.",
                )
            for match in matches:
                out.setdefault(Path(os.path.normpath(os.path.abspath(match))), None)
        else:
            out.setdefault(Path(os.path.normpath(os.path.abspath(pattern))), None)
    return list(out)


def _settings(args: argparse.Namespace) -> Any:
    from xtts_qa.settings import load_settings

    return getattr(args, "settings", None) or load_settings()


def _cmd_check(args: argparse.Namespace) -> int:
    from xtts_qa.cli import split_list
    from xtts_qa.formats import CheckedTarget, render
    from xtts_qa.labels import checkpoint_labels
    from xtts_qa.reporting.record import CheckEntry, RunRecord, new_run_id, utc_now
    from xtts_qa.rules import CheckOptions
    from xtts_qa.verdict import decide

    started = utc_now()
    settings = _settings(args).merged(
        base=args.base,
        intent=args.intent,
        select=split_list(args.select),
        ignore=split_list(args.ignore),
        fail_on=args.fail_on,
        baseline=args.baseline,
        format="json" if args.json else args.format,
    )
    if not args.targets and not settings.checkpoints:
        raise UsageError("check needs at least one target (or `checkpoints` in [tool.xtts_qa] of pyproject.toml).")
    paths = expand_targets(list(args.targets) or list(settings.checkpoints))
    labels = checkpoint_labels(paths)
    base = Path(os.path.normpath(os.path.abspath(os.path.expanduser(str(settings.base))))) if settings.base else None
    options = CheckOptions(intent=settings.intent or "inference", select=settings.select, ignore=settings.ignore)
    baseline = None
    if settings.baseline is not None:
        from xtts_qa.baseline import Baseline

        baseline = Baseline.load(settings.baseline)
    policy = {
        "fail_on": settings.fail_on,
        "baseline": str(settings.baseline) if settings.baseline else None,
        "gates": [],
        "strict": False,
    }

    reports = _run_checks(paths, base, options, quiet=bool(getattr(args, "quiet", False)))
    checked: list[CheckedTarget] = []
    for label, path, (report, error) in zip(labels, paths, reports, strict=True):
        if report is None:
            checked.append(CheckedTarget(label, str(path), None, error, exit_code=2))
            continue
        digest = report.provenance.get("checkpoint_digest")
        accepted = frozenset(
            f.code for f in report.findings if baseline is not None and baseline.accepts(digest, label, f.code)
        )
        one = RunRecord("", started, started, "cli", checks=(CheckEntry(label, report.to_dict()),), policy=policy)
        code = decide(one, fail_on=settings.fail_on, baseline=baseline).exit_code
        checked.append(CheckedTarget(label, str(path), report, "", accepted, code))

    from xtts_qa.commands import file_run, record_destination

    report_dir, history = record_destination(args, settings)
    record = RunRecord(
        new_run_id(),
        started,
        utc_now(),
        "cli",
        args.label,
        checks=tuple(CheckEntry(t.label, _report_of(t, base).to_dict()) for t in checked),
        provenance=_provenance(checked, base, settings) if report_dir is not None else {},
        policy=policy,
    )
    exit_code = decide(record, fail_on=settings.fail_on, baseline=baseline).exit_code
    paths_written = file_run(record, report_dir, history)

    fmt = settings.format or "text"
    print(render(fmt, checked, settings.fail_on, verbose=bool(args.verbose), colour=sys.stdout.isatty()))
    if fmt == "text" and paths_written is not None and not getattr(args, "quiet", False):
        print(f"run record: {paths_written.folder}")
    return exit_code


def _report_of(target: Any, base: Path | None) -> Any:
    """The target's check report; for one that could not be opened, an ``unreadable`` report (exit code 2) that
    carries the reason, so the run record and its verdict say the run could not vouch for it."""
    from xtts_qa.results import CheckReport

    if target.report is not None:
        return target.report
    return CheckReport(
        target=target.target,
        base=str(base) if base else None,
        layout="unreadable",
        files={},
        results=(),
        loads_in_coqui=None,
        unreadable=True,
        seconds=0.0,
        provenance={"error": target.error},
    )


def _run_checks(paths: list[Path], base: Path | None, options: Any, *, quiet: bool) -> list[tuple[Any, str]]:
    """(report, "") or (None, why) per target; one target that cannot be opened raises as it always did."""
    from xtts_qa.engine import check
    from xtts_qa.progress import Progress, progress

    if len(paths) == 1:
        return [(check(paths[0], base, options), "")]
    out: list[tuple[Any, str]] = []
    bar: Progress[Any] = progress(len(paths), "check", "checkpoint", enabled=False if quiet else None)
    with bar:
        for path in paths:
            try:
                out.append((check(path, base, options), ""))
            except XttsQaError as exc:
                if base is not None and Path(getattr(exc, "path", "")) == base:
                    raise  # a bad --base spoils every target: say it once
                out.append((None, str(exc)))
            except OSError as exc:
                from xtts_qa.inputs import describe_os_error

                problem, fix = describe_os_error(exc)
                out.append((None, f"{path}: {problem} Fix: {fix}"))
            bar.update(1)
    return out


def _hash(target: str | Path | None) -> str | None:
    """A content hash for provenance; an unusable cache or unreadable file gives None and a warning, never a
    changed verdict."""
    from xtts_qa.reporting.provenance import content_hash

    try:
        return content_hash(target)
    except (OSError, XttsQaError) as exc:
        log.warning("xtts-qa: no content hash of %s for the run record: %s", target, exc)
        return None


def _provenance(checked: list[Any], base: Path | None, settings: Any) -> dict[str, Any]:
    from xtts_qa.reporting.provenance import environment

    return {
        "environment": environment(None),
        "checkpoints": {
            t.label: {
                "target": t.target,
                "hash": _hash(t.target) if t.report is not None else None,
                **({"error": t.error} if t.report is None else {}),
            }
            for t in checked
        },
        "base": {"target": str(base), "hash": _hash(base)} if base else None,
        "options": {
            "intent": settings.intent or "inference",
            "select": list(settings.select),
            "ignore": list(settings.ignore),
            "fail_on": settings.fail_on,
            "baseline": str(settings.baseline) if settings.baseline else None,
            "settings": str(settings.source) if settings.source else None,
        },
    }


def _cmd_rules(args: argparse.Namespace) -> int:
    from xtts_qa.check_text import render_rule_table
    from xtts_qa.cli import split_list
    from xtts_qa.rules import select_rules

    rules = select_rules(split_list(args.select))
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "code": r.code,
                        "name": r.name,
                        "severity": r.severity.value,
                        "severity_by_intent": {i: (s.value if s else None) for i, s in r.severities().items()},
                        "groups": list(r.groups),
                        "repair": r.repair,
                        "what": r.what,
                        "why": r.why,
                        "fix": r.fix,
                    }
                    for r in rules
                ],
                indent=2,
            )
        )
    else:
        print(render_rule_table(rules))
    return 0


def _cmd_rule(args: argparse.Namespace) -> int:
    from xtts_qa.check_text import render_rule
    from xtts_qa.rules import get_rule

    print(render_rule(get_rule(args.code)))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``check``, ``rules`` and ``rule`` sub-commands."""
    from xtts_qa.cli import add_rule_options
    from xtts_qa.commands import add_record_options
    from xtts_qa.formats import FORMATS
    from xtts_qa.settings import FAIL_ON

    p = sub.add_parser(
        "check",
        help="structural health check of model folders or checkpoint files (CPU, seconds)",
        description="Check one or more XTTS-v2 model folders or trainer checkpoints (globs allowed, e.g. "
        "'runs/*/checkpoint_*.pth') against the rule catalogue, optionally against the base model they were "
        "fine-tuned from. Prints one report per checkpoint and a summary line, writes a run record and a history "
        "row, and exits 0 (healthy), 1 (a finding at or above --fail-on) or 2 (a checkpoint could not be checked). "
        "Defaults come from [tool.xtts_qa] in pyproject.toml; the command line wins.",
    )
    p.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help="model folders (model.pth, config.json, vocab.json, ...) or trainer checkpoint files, or globs of them "
        "(default: checkpoints in [tool.xtts_qa])",
    )
    add_rule_options(p)
    p.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="output: text (default), json (one document), junit (JUnit XML), sarif (SARIF 2.1.0), "
        "github (GitHub Actions annotations)",
    )
    p.add_argument("--json", action="store_true", help="the same as --format json")
    p.add_argument(
        "--fail-on",
        choices=FAIL_ON,
        default=None,
        help="the least severe finding that fails the run (exit 1): error (default), warning or info",
    )
    p.add_argument(
        "--baseline",
        default=None,
        metavar="FILE",
        help="file of accepted findings (by checkpoint digest and rule code) that never fail the run; "
        "write one with `xtts-qa baseline`",
    )
    add_record_options(p)
    p.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="also show notes and skipped rules"
    )
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser(
        "rules",
        help="list the rules",
        description="List every rule: code, name, severity per intent (inference, finetune, restore) and groups.",
    )
    p.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="CODE|GROUP|NAME",
        help="only these codes, code prefixes, groups or names; repeatable, comma-separated",
    )
    p.add_argument("--json", action="store_true", help="print the rules, with their docs, as a JSON list")
    p.set_defaults(func=_cmd_rules)

    p = sub.add_parser(
        "rule",
        help="explain one rule: what it checks, why it matters, how to fix it",
        description="Print one rule's documentation: what it checks, why it matters, how to fix it, its severity "
        "per intent and the repair action that fixes it, if any.",
    )
    p.add_argument("code", help="rule code (XQ401) or name (dvae-key-set)")
    p.set_defaults(func=_cmd_rule)
