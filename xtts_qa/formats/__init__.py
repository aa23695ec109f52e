"""Output formats of ``xtts-qa check`` for people and CI: text, json, junit, sarif and github.

Every writer takes the same input, a sequence of :class:`CheckedTarget` (one per checkpoint, with its
:class:`~xtts_qa.results.CheckReport` or the reason it could not be checked) and the ``fail_on`` policy, and returns
the text to print.

- ``text``: the readable report per checkpoint, then one summary line.
- ``json``: one document. One target: its check report (``xtts_qa/schemas/check_report.schema.json``). Several:
  ``{"kind": "check-run", "exit_code", "fail_on", "checks": [{"label", "target", "report" | "error"}]}``.
- ``junit``: JUnit XML, one testsuite per checkpoint and one testcase per checkpoint x rule; findings at or above
  ``fail_on`` are failures, crashed rules and unreadable checkpoints are errors.
- ``sarif``: SARIF 2.1.0 for code-scanning UIs (rules with help text from the rule registry).
- ``github``: GitHub Actions workflow commands (``::error file=...,title=XQ401::message``), one per finding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from xtts_qa.results import CheckReport, Finding, Severity

__all__ = [
    "FORMATS",
    "CheckedTarget",
    "at_or_above",
    "render",
]

#: the values of ``--format``
FORMATS = ("text", "json", "junit", "sarif", "github")


@dataclass(frozen=True)
class CheckedTarget:
    """One checkpoint of a ``check`` run.

    Attributes:
        label: short unique name (:func:`xtts_qa.labels.checkpoint_labels`).
        target: the normalised path that was checked.
        report: the check report, or None when the target could not be checked at all.
        error: why it could not be checked (one line naming the file and the fix), when ``report`` is None.
        accepted: codes of findings the baseline accepts for this checkpoint (they never fail the run).
        exit_code: this checkpoint's verdict under the run's policy (0 pass, 1 fail, 2 cannot check).
    """

    label: str
    target: str
    report: CheckReport | None
    error: str = ""
    accepted: frozenset[str] = field(default_factory=frozenset)
    exit_code: int = 0

    def is_accepted(self, finding: Finding) -> bool:
        """True when the baseline accepts ``finding`` for this checkpoint."""
        return finding.code in self.accepted


def at_or_above(severity: Severity, fail_on: str) -> bool:
    """True when a finding of ``severity`` fails a run whose policy is ``fail_on`` ("error", "warning" or "info")."""
    return severity.rank <= Severity(fail_on).rank


def fails(target: CheckedTarget, finding: Finding, fail_on: str) -> bool:
    """A finding fails the run: at or above ``fail_on`` and not accepted by the baseline."""
    return at_or_above(finding.severity, fail_on) and not target.is_accepted(finding)


def render(
    fmt: str, targets: Sequence[CheckedTarget], fail_on: str = "error", *, verbose: bool = False, colour: bool = False
) -> str:
    """The output of ``xtts-qa check --format fmt`` for ``targets``."""
    writers: dict[str, Callable[[], str]] = {
        "text": lambda: _text(targets, fail_on, verbose=verbose, colour=colour),
        "json": lambda: _json(targets, fail_on),
        "junit": lambda: _junit(targets, fail_on),
        "sarif": lambda: _sarif(targets, fail_on),
        "github": lambda: _github(targets, fail_on),
    }
    if fmt not in writers:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return writers[fmt]()


def _text(targets: Sequence[CheckedTarget], fail_on: str, *, verbose: bool, colour: bool) -> str:
    from xtts_qa.formats.text import render_text

    return render_text(targets, fail_on, verbose=verbose, colour=colour)


def _json(targets: Sequence[CheckedTarget], fail_on: str) -> str:
    from xtts_qa.formats.jsonout import render_json

    return render_json(targets, fail_on)


def _junit(targets: Sequence[CheckedTarget], fail_on: str) -> str:
    from xtts_qa.formats.junit import render_junit

    return render_junit(targets, fail_on)


def _sarif(targets: Sequence[CheckedTarget], fail_on: str) -> str:
    from xtts_qa.formats.sarif import render_sarif

    return render_sarif(targets, fail_on)


def _github(targets: Sequence[CheckedTarget], fail_on: str) -> str:
    from xtts_qa.formats.github import render_github

    return render_github(targets, fail_on)
