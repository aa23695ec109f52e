"""``--format json``: one document (a single target's check report, or a ``check-run`` with every checkpoint)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from xtts_qa.formats import CheckedTarget
from xtts_qa.results import SCHEMA_VERSION

__all__ = ["render_json", "run_document"]


def run_document(targets: Sequence[CheckedTarget], fail_on: str) -> dict[str, Any]:
    """The ``check-run`` document: every checkpoint's report or error, the policy and the run's exit code."""
    checks: list[dict[str, Any]] = []
    for t in targets:
        entry: dict[str, Any] = {"label": t.label, "target": t.target, "exit_code": t.exit_code}
        if t.report is not None:
            entry["report"] = t.report.to_dict()
            entry["accepted"] = sorted(t.accepted)
        else:
            entry["error"] = t.error
        checks.append(entry)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "check-run",
        "fail_on": fail_on,
        "exit_code": max((t.exit_code for t in targets), default=0),
        "checks": checks,
    }


def render_json(targets: Sequence[CheckedTarget], fail_on: str) -> str:
    """One target that was checked: its check report (the long-standing ``--json`` contract). Otherwise the
    ``check-run`` document of :func:`run_document`."""
    if len(targets) == 1 and targets[0].report is not None:
        return json.dumps(targets[0].report.to_dict(), indent=2)
    return json.dumps(run_document(targets, fail_on), indent=2)
