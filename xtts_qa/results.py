"""Typed, immutable results: what a check found, and the report that gathers them.

A :class:`Finding` is one problem (what, why, how to fix, with figures). A :class:`RuleResult` is one rule's
verdict on one checkpoint (passed, failed or skipped, with its findings). A :class:`CheckReport` is every rule's
verdict plus what was read; it serialises to JSON with :data:`SCHEMA_VERSION`.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

#: Version of the JSON contract of :meth:`CheckReport.to_dict` (``xtts_qa/schemas/check_report.schema.json``).
SCHEMA_VERSION = 2

__all__ = [
    "SCHEMA_VERSION",
    "Severity",
    "Status",
    "Finding",
    "RuleResult",
    "CheckReport",
    "check_report_schema",
    "validate_check_report",
]


class Severity(str, enum.Enum):
    """How bad a finding is. Only ``error`` makes a check fail (exit code 1)."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 0, "warning": 1, "info": 2}[self.value]


class Status(str, enum.Enum):
    """A rule's verdict on one checkpoint. ``error``: the rule itself crashed, so the checkpoint was not judged by
    it; the check then cannot vouch for the checkpoint (exit code 2), like sqlfluff reports an unexpected rule
    exception as a violation."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    ERROR = "error"


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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        """The inverse of :meth:`to_dict`."""
        return cls(
            code=data["code"],
            name=data["name"],
            severity=Severity(data["severity"]),
            message=data["message"],
            why=data["why"],
            fix=data["fix"],
            file=data.get("file"),
            details=dict(data.get("details") or {}),
        )


@dataclass(frozen=True)
class RuleResult:
    """One rule's verdict on one checkpoint.

    Attributes:
        code: the rule's code.
        name: the rule's name.
        status: passed, failed (it produced findings), skipped (it lacked an input or does not apply to the
            intent) or error (the rule crashed).
        findings: what it found (empty when passed or skipped).
        skip_reason: why it was skipped.
        seconds: how long the rule took.
        error: the exception and traceback when the rule crashed.
    """

    code: str
    name: str
    status: Status
    findings: tuple[Finding, ...] = ()
    skip_reason: str = ""
    seconds: float = 0.0
    error: str = ""

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
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RuleResult:
        """The inverse of :meth:`to_dict`."""
        return cls(
            code=data["code"],
            name=data["name"],
            status=Status(data["status"]),
            findings=tuple(Finding.from_dict(f) for f in data.get("findings") or ()),
            skip_reason=data.get("skip_reason") or "",
            seconds=float(data.get("seconds") or 0.0),
            error=data.get("error") or "",
        )


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
        unreadable: True when an input could not be read at all (exit code 2); a crashed rule also gives exit
            code 2 (see :attr:`crashed`).
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
    def crashed(self) -> list[RuleResult]:
        """Rules that raised instead of judging the checkpoint."""
        return [r for r in self.results if r.status is Status.ERROR]

    @property
    def exit_code(self) -> int:
        """0 healthy, 1 at least one error finding, 2 an input could not be read or a rule crashed (the check
        cannot vouch for the checkpoint)."""
        if self.unreadable or self.crashed:
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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckReport:
        """Read a report back from :meth:`to_dict`'s JSON (validated against the shipped schema first).

        Raises:
            ValueError: the document does not follow the schema.
        """
        validate_check_report(data)
        return cls(
            target=data["target"],
            base=data.get("base"),
            layout=data["layout"],
            files=dict(data.get("files") or {}),
            results=tuple(RuleResult.from_dict(r) for r in data["results"]),
            loads_in_coqui=data.get("loads_in_coqui"),
            unreadable=bool(data.get("unreadable")),
            seconds=float(data.get("seconds") or 0.0),
            provenance=dict(data.get("provenance") or {}),
        )


@lru_cache(maxsize=1)
def check_report_schema() -> dict[str, Any]:
    """The JSON Schema of a check report, shipped with the package."""
    text = resources.files("xtts_qa").joinpath("schemas", "check_report.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_check_report(data: Any) -> None:
    """Raise ValueError (one line, no dump of the document) when ``data`` is not a valid check report."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(check_report_schema())
    error = next(iter(sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ValueError(f"not a check report (schema v{SCHEMA_VERSION}): at {where}: {error.message[:200]}")
