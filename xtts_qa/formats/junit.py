"""``--format junit``: JUnit XML as Jenkins, GitLab and most CI test-report viewers read it.

One ``<testsuite>`` per checkpoint and one ``<testcase>`` per checkpoint x rule (classname ``xtts_qa.<label>``, name
``XQ401 dvae-key-set``). A rule with a finding at or above ``fail_on`` that the baseline does not accept is a
``<failure>``; a crashed rule, or a checkpoint that could not be read, is an ``<error>``; a skipped rule is
``<skipped>``; findings below the threshold are listed in ``<system-out>`` of a passing case.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime, timezone

from xtts_qa.formats import CheckedTarget, fails
from xtts_qa.results import Finding, Status

__all__ = ["render_junit"]

#: characters XML 1.0 cannot carry at all (a hostile file name must not make the report unreadable)
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _INVALID_XML.sub("?", text)


def _finding_text(f: Finding) -> str:
    return _clean(f"[{f.severity.value}] {f.code} {f.name}: {f.message}\n  why: {f.why}\n  fix: {f.fix}")


def render_junit(targets: Sequence[CheckedTarget], fail_on: str) -> str:
    """The JUnit XML document (UTF-8, with an XML declaration)."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    root = ET.Element("testsuites", name="xtts-qa check")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    for suite_id, t in enumerate(targets):
        suite = ET.SubElement(root, "testsuite", name=_clean(t.label), id=str(suite_id), timestamp=stamp)
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        classname = _clean(f"xtts_qa.{t.label}")
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="target", value=_clean(t.target))
        ET.SubElement(props, "property", name="fail_on", value=fail_on)
        if t.report is None:
            case = ET.SubElement(suite, "testcase", name="check", classname=classname, time="0")
            error = ET.SubElement(case, "error", message=_clean(t.error), type="InputError")
            error.text = _clean(t.error)
            counts["tests"] += 1
            counts["errors"] += 1
        else:
            ET.SubElement(props, "property", name="layout", value=_clean(t.report.layout))
            if t.report.unreadable:
                case = ET.SubElement(suite, "testcase", name="load", classname=classname, time="0")
                ET.SubElement(case, "error", message="an input could not be read", type="unreadable")
                counts["tests"] += 1
                counts["errors"] += 1
            for r in t.report.results:
                case = ET.SubElement(
                    suite, "testcase", name=f"{r.code} {r.name}", classname=classname, time=f"{r.seconds:.4f}"
                )
                counts["tests"] += 1
                failing = [f for f in r.findings if fails(t, f, fail_on)]
                if r.status is Status.ERROR:
                    first = r.error.splitlines()[0] if r.error else "unknown error"
                    error = ET.SubElement(case, "error", message=_clean(first), type="RuleCrashed")
                    error.text = _clean(r.error)
                    counts["errors"] += 1
                elif r.status is Status.SKIPPED:
                    ET.SubElement(case, "skipped", message=_clean(r.skip_reason or "skipped"))
                    counts["skipped"] += 1
                elif failing:
                    failure = ET.SubElement(
                        case, "failure", message=_clean(failing[0].message[:500]), type=failing[0].code
                    )
                    failure.text = "\n".join(_finding_text(f) for f in failing)
                    counts["failures"] += 1
                others = [f for f in r.findings if f not in failing]
                if others:
                    out = ET.SubElement(case, "system-out")
                    out.text = "\n".join(
                        _finding_text(f) + ("\n  (accepted in the baseline)" if t.is_accepted(f) else "")
                        for f in others
                    )
            total_time += t.report.seconds
        suite.set("time", f"{t.report.seconds if t.report else 0.0:.3f}")
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
    for key in ("tests", "failures", "errors"):
        root.set(key, str(totals[key]))
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
