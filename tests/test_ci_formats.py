"""``xtts-qa check --format junit|sarif|github|json`` through the real CLI, on tiny real models: JUnit XML validated
against a JUnit XSD (tests/data/junit-10.xsd), SARIF against a SARIF 2.1.0 schema subset
(tests/data/sarif-2.1.0-subset.schema.json), GitHub workflow commands and their escaping."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import xmlschema

from xtts_qa.cli import main
from xtts_qa.formats.github import escape_data, escape_property
from xtts_qa.rules import registry

DATA = Path(__file__).parent / "data"


@pytest.fixture
def targets(family, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Two checkpoints and one missing path, run from the family's folder (so SARIF/GitHub paths are relative).

    With ``--intent finetune --select XQ401,XQ402`` and no base: sequential-broken-dvae fails XQ401 (error),
    finetune passes it, and XQ402 (needs a base) is skipped on both.
    """
    _, paths = family
    root = Path(paths["finetune"]).parent
    monkeypatch.chdir(root)
    monkeypatch.setenv("XTTS_QA_RECORD", "off")  # never write into the shared family folder
    return ["sequential-broken-dvae", "finetune", str(tmp_path / "gone")]


def check(capsys: pytest.CaptureFixture[str], targets: list[str], *extra: str) -> tuple[int, str]:
    code = main(["-q", "check", *targets, "--intent", "finetune", "--select", "XQ401,XQ402", *extra])
    return code, capsys.readouterr().out


def test_junit_is_valid_and_counts(targets, capsys) -> None:
    code, out = check(capsys, targets, "--format", "junit")
    assert code == 2  # the missing target
    xmlschema.XMLSchema(str(DATA / "junit-10.xsd")).validate(out)
    root = ET.fromstring(out)
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["sequential-broken-dvae", "finetune", "gone"]
    cases = root.findall("testsuite/testcase")
    assert len(cases) == 2 * 2 + 1  # checkpoint x rule, and one error case for the unreadable target
    assert root.get("tests") == "5" and root.get("failures") == "1" and root.get("errors") == "1"
    (failure,) = root.findall(".//failure")
    assert failure.get("type") == "XQ401" and "fix: Copy dvae.pth from the base" in (failure.text or "")
    assert len(root.findall(".//skipped")) == 2
    error = root.find("testsuite[@name='gone']/testcase/error")
    assert error is not None and "does not exist" in (error.get("message") or "")


def test_junit_fail_on_warning_turns_notes_into_passes_not_failures(targets, capsys) -> None:
    # for inference XQ401 is a note: never a failure, even with --fail-on warning; listed in system-out
    code = main(["-q", "check", targets[0], "--select", "XQ401", "--format", "junit", "--fail-on", "warning"])
    out = capsys.readouterr().out
    xmlschema.XMLSchema(str(DATA / "junit-10.xsd")).validate(out)
    root = ET.fromstring(out)
    assert code == 0 and root.get("failures") == "0" and "[info] XQ401" in (root.findtext(".//system-out") or "")


def test_sarif_is_valid_with_rules_levels_locations_and_suppressions(targets, capsys, tmp_path) -> None:
    baseline = tmp_path / "accepted.json"
    baseline.write_text(
        json.dumps(
            {
                "kind": "xtts-qa-baseline",
                "version": 1,
                "accepted": [{"checkpoint": "finetune", "code": "XQ401"}],  # accepts nothing that is found
            }
        )
    )
    code, out = check(capsys, targets, "--format", "sarif", "--baseline", str(baseline))
    log = json.loads(out)
    schema = json.loads((DATA / "sarif-2.1.0-subset.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker()).validate(log)
    assert code == 2 and log["version"] == "2.1.0"
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == sorted(registry())
    assert all("How to fix" in r["help"]["text"] and r["fullDescription"]["text"] for r in rules)
    (result,) = run["results"]
    assert result["ruleId"] == "XQ401" and result["level"] == "error"
    assert rules[result["ruleIndex"]]["id"] == "XQ401"
    location = result["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": "sequential-broken-dvae/dvae.pth", "uriBaseId": "SRCROOT"}
    assert "suppressions" not in result
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False and invocation["exitCode"] == 2
    assert "does not exist" in invocation["toolExecutionNotifications"][0]["message"]["text"]
    # a baseline that accepts the finding: the result stays, suppressed, and the run passes
    baseline.write_text(
        json.dumps(
            {
                "kind": "xtts-qa-baseline",
                "version": 1,
                "accepted": [{"checkpoint": "sequential-broken-dvae", "code": "XQ401"}],
            }
        )
    )
    code, out = check(capsys, targets[:2], "--format", "sarif", "--baseline", str(baseline))
    (result,) = json.loads(out)["runs"][0]["results"]
    assert code == 0 and result["suppressions"] == [
        {"kind": "external", "justification": "accepted in the baseline file"}
    ]


def test_github_annotations(targets, capsys) -> None:
    code, out = check(capsys, targets, "--format", "github")
    lines = out.splitlines()
    assert code == 2
    (annotation,) = [line for line in lines if "title=XQ401" in line]
    assert annotation.startswith("::error file=sequential-broken-dvae/dvae.pth,title=XQ401::sequential-broken-dvae: ")
    assert "%0AFix: Copy dvae.pth" in annotation  # the newline is escaped: one annotation per line
    assert any(line.startswith("::error file=") and "cannot check" in line for line in lines)
    assert lines[-1].startswith("CANNOT CHECK: 3 checkpoints: 1 healthy, 1 unhealthy, 1 not checked")


def test_github_escaping() -> None:
    assert escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    assert escape_data("a:b,c") == "a:b,c"  # ':' and ',' are only escaped in properties


def test_json_document_for_several_targets(targets, capsys) -> None:
    code, out = check(capsys, targets, "--json")
    doc = json.loads(out)
    assert code == 2 and doc["kind"] == "check-run" and doc["exit_code"] == 2 and doc["fail_on"] == "error"
    by_label = {c["label"]: c for c in doc["checks"]}
    assert by_label["sequential-broken-dvae"]["exit_code"] == 1
    assert by_label["sequential-broken-dvae"]["report"]["summary"]["error"] == 1
    assert by_label["finetune"]["exit_code"] == 0 and "does not exist" in by_label["gone"]["error"]
