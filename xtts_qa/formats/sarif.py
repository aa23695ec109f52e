"""``--format sarif``: SARIF 2.1.0 (OASIS Static Analysis Results Interchange Format) for code-scanning UIs.

One run; the tool's rules are the whole rule registry (id, name, description, help text with why and fix, default
level); one result per finding with level error / warning / note, located at the checkpoint file (an artifact URI
relative to the current folder when the file lies under it, else an absolute ``file://`` URI). Findings the baseline
accepts carry an external suppression; checkpoints that could not be checked are tool execution notifications.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xtts_qa import __version__
from xtts_qa.formats import CheckedTarget, fails
from xtts_qa.results import Finding, Severity, Status

__all__ = ["SARIF_SCHEMA_URI", "SARIF_VERSION", "sarif_log", "render_sarif"]

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def _artifact(path: str, root: Path) -> dict[str, Any]:
    """An artifactLocation: relative to ``root`` (uriBaseId SRCROOT) when inside it, else an absolute file URI."""
    absolute = Path(os.path.abspath(path))
    try:
        rel = absolute.relative_to(root)
    except ValueError:
        return {"uri": absolute.as_uri()}
    return {"uri": rel.as_posix() or ".", "uriBaseId": "SRCROOT"}


def _rule_descriptors() -> tuple[list[dict[str, Any]], dict[str, int]]:
    from xtts_qa.rules import registry

    rules, index = [], {}
    for i, (code, rule) in enumerate(sorted(registry().items())):
        index[code] = i
        rules.append(
            {
                "id": code,
                "name": rule.name,
                "shortDescription": {"text": rule.what.split(". ")[0].rstrip(".") + "."},
                "fullDescription": {"text": rule.what},
                "help": {
                    "text": f"{rule.what}\n\nWhy it matters: {rule.why}\n\nHow to fix: {rule.fix}\n\n"
                    f"(xtts-qa rule {code})",
                    "markdown": f"{rule.what}\n\n**Why it matters:** {rule.why}\n\n**How to fix:** {rule.fix}",
                },
                "defaultConfiguration": {"level": _LEVEL[rule.severity]},
                "properties": {
                    "tags": list(rule.groups),
                    "severityByIntent": {k: (v.value if v else None) for k, v in rule.severities().items()},
                },
            }
        )
    return rules, index


def _location(target: CheckedTarget, finding: Finding | None, root: Path) -> dict[str, Any]:
    path = target.target
    if finding is not None and finding.file:
        path = finding.file
    elif target.report is not None and target.report.files.get("model"):
        path = target.report.files["model"]
    return {
        "physicalLocation": {"artifactLocation": _artifact(path, root)},
        "logicalLocations": [{"name": target.label, "kind": "module"}],
    }


def sarif_log(targets: Sequence[CheckedTarget], fail_on: str, root: Path | None = None) -> dict[str, Any]:
    """The SARIF log as a dict (``root``: the folder relative URIs are based on; default: the current folder)."""
    root = Path(os.path.abspath(root or Path.cwd()))
    rules, index = _rule_descriptors()
    results: list[dict[str, Any]] = []
    notifications: list[dict[str, Any]] = []
    for t in targets:
        if t.report is None:
            notifications.append(
                {
                    "level": "error",
                    "message": {"text": f"{t.label}: cannot check: {t.error}"},
                    "locations": [_location(t, None, root)],
                }
            )
            continue
        if t.report.unreadable:
            notifications.append(
                {
                    "level": "error",
                    "message": {"text": f"{t.label}: an input could not be read; the checkpoint was not judged"},
                    "locations": [_location(t, None, root)],
                }
            )
        for rule_result in t.report.results:
            if rule_result.status is Status.ERROR:
                first = rule_result.error.splitlines()[0] if rule_result.error else "unknown error"
                notifications.append(
                    {
                        "level": "error",
                        "message": {"text": f"{t.label}: rule {rule_result.code} crashed: {first}"},
                        "descriptor": {"id": rule_result.code},
                        "locations": [_location(t, None, root)],
                    }
                )
            for finding in rule_result.findings:
                result: dict[str, Any] = {
                    "ruleId": finding.code,
                    "level": _LEVEL[finding.severity],
                    "message": {"text": f"{finding.message} Fix: {finding.fix}"},
                    "locations": [_location(t, finding, root)],
                    "partialFingerprints": {
                        "xttsQaFinding/v1": f"{t.report.provenance.get('checkpoint_digest') or t.label}:{finding.code}"
                    },
                    "properties": {
                        "checkpoint": t.label,
                        "failsRun": fails(t, finding, fail_on),
                        "details": json.loads(json.dumps(finding.details, default=str)),
                    },
                }
                if finding.code in index:
                    result["ruleIndex"] = index[finding.code]
                if t.is_accepted(finding):
                    result["suppressions"] = [{"kind": "external", "justification": "accepted in the baseline file"}]
                results.append(result)
    invocation: dict[str, Any] = {
        "executionSuccessful": not any(n["level"] == "error" for n in notifications),
        "exitCode": max((t.exit_code for t in targets), default=0),
        "properties": {"failOn": fail_on},
    }
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "xtts-qa",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {"SRCROOT": {"uri": root.as_uri() + "/"}},
                "invocations": [invocation],
                "results": results,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }


def render_sarif(targets: Sequence[CheckedTarget], fail_on: str) -> str:
    """The SARIF log as indented JSON."""
    return json.dumps(sarif_log(targets, fail_on), indent=2, ensure_ascii=False)
