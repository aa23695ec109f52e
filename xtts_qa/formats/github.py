"""``--format github``: GitHub Actions workflow commands, shown as annotations on the run and the pull request.

One ``::error``, ``::warning`` or ``::notice`` line per finding, e.g.
``::error file=runs/a/dvae.pth,title=XQ401::a: dvae-key-set: only 0 of 56 DiscreteVAE keys would load ...``. Values are
escaped as GitHub's runner expects: in the message ``%``, ``\\r`` and ``\\n``; in properties also ``:`` and ``,``.
Findings below ``fail_on`` keep their own level (GitHub does not fail a job on annotations; the exit code does).
Findings accepted by the baseline become notices.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from xtts_qa.formats import CheckedTarget
from xtts_qa.results import Severity, Status

__all__ = ["escape_data", "escape_property", "render_github"]

_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    """Escape a workflow command's message (``%`` first, then CR and LF)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow command's property value (the message escapes plus ``:`` and ``,``)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _path(path: str) -> str:
    """Relative to the current folder (the workspace in Actions) when inside it, so annotations attach to files."""
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return absolute.as_posix()


def _command(kind: str, message: str, **props: str) -> str:
    rendered = ",".join(f"{k}={escape_property(v)}" for k, v in props.items() if v)
    return f"::{kind}{' ' + rendered if rendered else ''}::{escape_data(message)}"


def render_github(targets: Sequence[CheckedTarget], fail_on: str) -> str:
    """The workflow command lines, then a plain summary line."""
    from xtts_qa.formats.text import summary_line

    lines = []
    for t in targets:
        if t.report is None:
            lines.append(
                _command("error", f"{t.label}: cannot check: {t.error}", file=_path(t.target), title="xtts-qa")
            )
            continue
        model = t.report.files.get("model") or t.target
        for r in t.report.results:
            if r.status is Status.ERROR:
                first = r.error.splitlines()[0] if r.error else "unknown error"
                lines.append(
                    _command("error", f"{t.label}: rule {r.name} crashed: {first}", file=_path(model), title=r.code)
                )
            for f in r.findings:
                accepted = t.is_accepted(f)
                kind = "notice" if accepted else _COMMAND[f.severity]
                suffix = " (accepted in the baseline)" if accepted else ""
                lines.append(
                    _command(
                        kind,
                        f"{t.label}: {f.name}: {f.message}{suffix}\nFix: {f.fix}",
                        file=_path(f.file or model),
                        title=f.code,
                    )
                )
    lines.append(summary_line(targets, fail_on))
    return "\n".join(lines)
