"""Typed, immutable results: what a check found, and the report that gathers them.

A :class:`Finding` is one problem (what, why, how to fix, with figures). A :class:`RuleResult` is one rule's
verdict on one checkpoint (passed, failed or skipped, with its findings). A :class:`CheckReport` is every rule's
verdict plus what was read; it serialises to JSON with :data:`SCHEMA_VERSION`.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA_VERSION = 1

__all__ = ["SCHEMA_VERSION", "Severity", "Status", "Finding", "RuleResult", "CheckReport"]


class Severity(str, enum.Enum):
    """How bad a finding is. Only ``error`` makes a check fail (exit code 1)."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 0, "warning": 1, "info": 2}[self.value]


class Status(str, enum.Enum):
    """A rule's verdict on one checkpoint."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Finding:
    """One problem found by one rule.

    Attributes:
        code: the rule's stable code, e.g. ``XQ401``.
        name: the rule's kebab-case name.
        severity: error, warning or info.
        message: what is wrong, in the user's terms, with the figures that show it.
        why: why it matters (what breaks if it is ignored).
        fix: what to do about it.
        file: the file the finding is about, when there is one.
        details: machine-readable figures (counts, key names, drift values).
    """

    code: str
    name: str
    severity: Severity
    message: str
    why: str
    fix: str
    file: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        return data


@dataclass(frozen=True)
class RuleResult:
    """One rule's verdict on one checkpoint.

    Attributes:
        code: the rule's code.
        name: the rule's name.
        status: passed, failed (it produced findings) or skipped (it lacked an input).
        findings: what it found (empty when passed or skipped).
        skip_reason: why it was skipped.
        seconds: how long the rule took.
    """

    code: str
    name: str
    status: Status
    findings: tuple[Finding, ...] = ()
    skip_reason: str = ""
    seconds: float = 0.0

    @property
    def worst(self) -> Severity | None:
        """The most severe finding's severity, or None."""
        if not self.findings:
            return None
        return min((f.severity for f in self.findings), key=lambda s: s.rank)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "status": self.status.value,
            "findings": [f.to_dict() for f in self.findings],
            "skip_reason": self.skip_reason,
            "seconds": round(self.seconds, 4),
        }


@dataclass(frozen=True)
class CheckReport:
    """Every rule's verdict on one checkpoint.

    Attributes:
        target: the checkpoint folder or file that was checked.
        base: the base model it was compared with, if any.
        layout: what the checkpoint file is (inference, trainer, compacted, ...).
        files: role -> path of each file that was read.
        results: one :class:`RuleResult` per selected rule, in code order.
        loads_in_coqui: the engine's verdict on whether ``Xtts.load_checkpoint(strict=True)`` would load it
            (None when it could not tell).
        unreadable: True when an input could not be read at all (exit code 2).
        seconds: wall time of the whole check.
        provenance: versions and hashes that make the report reproducible.
    """

    target: str
    base: str | None
    layout: str
    files: dict[str, str]
    results: tuple[RuleResult, ...]
    loads_in_coqui: bool | None
    unreadable: bool
    seconds: float
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def findings(self) -> list[Finding]:
        """All findings, most severe first, then by code."""
        found = [f for r in self.results for f in r.findings]
        return sorted(found, key=lambda f: (f.severity.rank, f.code))

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity is severity)

    @property
    def exit_code(self) -> int:
        """0 healthy, 1 at least one error finding, 2 an input could not be read."""
        if self.unreadable:
            return 2
        return 1 if self.count(Severity.ERROR) else 0

    def codes(self) -> set[str]:
        """The codes of every rule that produced a finding."""
        return {f.code for f in self.findings}

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "check",
            "target": self.target,
            "base": self.base,
            "layout": self.layout,
            "files": self.files,
            "loads_in_coqui": self.loads_in_coqui,
            "unreadable": self.unreadable,
            "exit_code": self.exit_code,
            "summary": {s.value: self.count(s) for s in Severity},
            "seconds": round(self.seconds, 3),
            "results": [r.to_dict() for r in self.results],
            "provenance": self.provenance,
        }
