"""``--format text``: the readable report of each checkpoint, then one summary line for the run."""

from __future__ import annotations

from collections.abc import Sequence

from xtts_qa.formats import CheckedTarget, fails
from xtts_qa.progress import plural
from xtts_qa.results import Severity

__all__ = ["render_text", "summary_line"]

_VERDICT = {0: "HEALTHY", 1: "UNHEALTHY", 2: "CANNOT CHECK"}


def summary_line(targets: Sequence[CheckedTarget], fail_on: str) -> str:
    """``3 checkpoints: 2 healthy, 1 unhealthy (fail on error); 1 error, 2 warnings, 0 notes`` and the exit code."""
    counts = {code: sum(1 for t in targets if t.exit_code == code) for code in (0, 1, 2)}
    parts = [f"{counts[0]} healthy", f"{counts[1]} unhealthy"]
    if counts[2]:
        parts.append(f"{counts[2]} not checked")
    reports = [t.report for t in targets if t.report is not None]
    findings = ", ".join(
        plural(sum(r.count(s) for r in reports), word)
        for s, word in ((Severity.ERROR, "error"), (Severity.WARNING, "warning"), (Severity.INFO, "note"))
    )
    accepted = sum(1 for t in targets if t.report for f in t.report.findings if t.is_accepted(f))
    tail = f"; {accepted} accepted by the baseline" if accepted else ""
    worst = max((t.exit_code for t in targets), default=0)
    return (
        f"{_VERDICT[worst]}: {plural(len(targets), 'checkpoint')}: {', '.join(parts)} (fail on {fail_on}); "
        f"{findings}{tail}"
    )


def render_text(targets: Sequence[CheckedTarget], fail_on: str, *, verbose: bool = False, colour: bool = False) -> str:
    """Each checkpoint's report (or why it could not be checked), then :func:`summary_line` when there are several
    checkpoints or the policy changes a checkpoint's verdict."""
    from xtts_qa.check_text import render_check

    blocks = []
    for t in targets:
        if t.report is None:
            blocks.append(f"xtts-qa check {t.target}\n  CANNOT CHECK: {t.error}")
            continue
        text = render_check(t.report, colour=colour, verbose=verbose)
        failing = [f for f in t.report.findings if fails(t, f, fail_on)]
        accepted = [f for f in t.report.findings if t.is_accepted(f)]
        if accepted:
            text += "\n  accepted by the baseline: " + ", ".join(sorted({f.code for f in accepted}))
        if t.exit_code != t.report.exit_code:
            because = f"{plural(len(failing), 'finding')} at or above {fail_on}" if t.exit_code == 1 else "the baseline"
            text += f"\n  verdict under this policy: {_VERDICT[t.exit_code]} ({because})"
        blocks.append(text)
    if len(targets) > 1 or any(t.report is None or t.exit_code != t.report.exit_code for t in targets):
        blocks.append(summary_line(targets, fail_on))
    return "\n\n".join(blocks)
