"""Terminal rendering of check reports and rule docs (plain text; colour only on a TTY)."""

from __future__ import annotations

import textwrap

from xtts_qa.progress import plural
from xtts_qa.results import CheckReport, Severity, Status
from xtts_qa.rules.base import Rule

__all__ = ["render_check", "render_rule", "render_rule_table"]

_COLOURS = {Severity.ERROR: "31", Severity.WARNING: "33", Severity.INFO: "36"}
_TITLES = {Severity.ERROR: "Errors", Severity.WARNING: "Warnings", Severity.INFO: "Notes"}


def _paint(text: str, code: str, colour: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if colour else text


def _wrap(text: str, indent: str) -> str:
    return textwrap.fill(text, width=100, initial_indent=indent, subsequent_indent=indent)


def render_check(report: CheckReport, *, colour: bool = False, verbose: bool = False) -> str:
    """A readable report: header, findings grouped by severity (each with why it matters and its fix; notes in
    full only with ``verbose``), then a summary line."""
    lines = [f"xtts-qa check {report.target}" + (f"  (base: {report.base})" if report.base else "")]
    intent = report.provenance.get("intent", "inference")
    loads = {True: "yes", False: "no", None: "unknown"}[report.loads_in_coqui]
    lines.append(f"  layout: {report.layout}   intent: {intent}   loads in coqui-tts (strict): {loads}")
    reasons = report.provenance.get("load_verdict_reasons") or []
    if reasons:
        lines.append(f"  does not load because: {'; '.join(reasons)}")
    for severity in Severity:
        found = [f for f in report.findings if f.severity is severity]
        if not found or (severity is Severity.INFO and not verbose and report.count(Severity.ERROR)):
            continue
        lines.append("")
        lines.append(_paint(f"{_TITLES[severity]} ({len(found)})", _COLOURS[severity], colour))
        for f in found:
            lines.append(_wrap(f"{f.code} {f.name}: {f.message}", "  "))
            if f.file and f.file not in f.message:
                lines.append(f"      file: {f.file}")
            if verbose or severity is not Severity.INFO:
                lines.append(_wrap(f"why: {f.why}", "      "))
                lines.append(_wrap(f"fix: {f.fix}", "      "))
    crashed = report.crashed
    if crashed:
        lines.append("")
        lines.append(
            _paint(f"Rules that crashed ({len(crashed)}): the checkpoint was not judged by them", "31", colour)
        )
        for r in crashed:
            lines.append(f"  {r.code} {r.name}: {r.error.splitlines()[0] if r.error else 'unknown error'}")
            if verbose:
                lines.extend("      " + line for line in r.error.splitlines()[1:])
        lines.append(
            "      please report this (run with -v for the traceback); the verdict cannot be trusted until then"
        )
    skipped = [r for r in report.results if r.status is Status.SKIPPED]
    if verbose and skipped:
        lines.append("")
        lines.append("Skipped")
        lines.extend(f"  {r.code} {r.name}: {r.skip_reason}" for r in skipped)
    passed = sum(1 for r in report.results if r.status is Status.PASSED)
    summary = (
        f"{plural(report.count(Severity.ERROR), 'error')}, {plural(report.count(Severity.WARNING), 'warning')}, "
        f"{plural(report.count(Severity.INFO), 'note')}; {plural(passed, 'rule')} passed, {len(skipped)} skipped "
        f"in {report.seconds:.2f}s"
    )
    if crashed:
        summary += f", {len(crashed)} crashed"
    verdict = {0: "HEALTHY", 1: "UNHEALTHY", 2: "CANNOT CHECK"}[report.exit_code]
    lines.append("")
    lines.append(_paint(f"{verdict}: {summary}", {0: "32", 1: "31", 2: "31"}[report.exit_code], colour))
    return "\n".join(lines)


def _sev(severity: Severity | None) -> str:
    return severity.value if severity is not None else "-"


def render_rule_table(rules: list[type[Rule]]) -> str:
    """One line per rule: code, severity for each intent (inference / finetune / restore; - = not applicable),
    name, groups."""
    rows = [
        f"{r.code}  "
        + " ".join(f"{_sev(s):<8}" for s in r.severities().values())
        + f" {r.name:<26}  {','.join(r.groups)}"
        for r in rules
    ]
    header = "CODE   INFERENCE FINETUNE RESTORE  NAME                        GROUPS"
    return "\n".join([header, *rows])


def render_rule(rule: type[Rule]) -> str:
    """A rule's full documentation."""
    by_intent = ", ".join(f"{intent}: {_sev(s) if s else 'not applicable'}" for intent, s in rule.severities().items())
    parts = [
        f"{rule.code} {rule.name} (groups: {', '.join(rule.groups)})",
        f"Severity by --intent: {by_intent}",
        "",
        "What it checks",
        _wrap(rule.what, "  "),
        "",
        "Why it matters",
        _wrap(rule.why, "  "),
        "",
        "How to fix",
        _wrap(rule.fix, "  "),
    ]
    if rule.requires:
        parts += ["", f"Needs: {', '.join(rule.requires)}"]
    return "\n".join(parts)
