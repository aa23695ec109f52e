"""Every rule fails on its broken cases and passes on healthy checkpoints; the catalogue behaves as documented."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from rule_cases import CASES, Case

from xtts_qa.demo.scenarios import SCENARIOS, Scenario
from xtts_qa.engine import check
from xtts_qa.results import Severity, Status
from xtts_qa.rules import CheckOptions, registry


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.code}-{c.what[:40]}")
def test_rule_fires_on_its_case(case: Case, family, tmp_path: Path) -> None:
    fam, targets = family
    folder = _copy(targets["finetune"], tmp_path / "model")
    target = case.mutate(folder, fam.base.folder)
    report = check(target, fam.base.folder if case.with_base else None, CheckOptions(intent=case.intent))
    hits = [f for f in report.findings if f.code == case.code]
    assert hits, f"{case.code} did not fire on '{case.what}'; found {sorted(report.codes())}"
    assert {f.severity.value for f in hits} == {case.severity}
    assert all(f.why and f.fix and f.message for f in hits)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_scenario_as_catalogued(scenario: Scenario, family) -> None:
    fam, targets = family
    report = check(
        targets[scenario.name], fam.base.folder if scenario.with_base else None, CheckOptions(intent=scenario.intent)
    )
    assert scenario.mismatches(report) == [], [f"{f.code} {f.severity.value}: {f.message}" for f in report.findings]
    assert not report.crashed, [r.error for r in report.crashed]


def test_every_rule_has_a_failing_case() -> None:
    covered = {c.code for c in CASES} | {code for s in SCENARIOS for code in s.expect | s.notes}
    covered |= {"XQ003", "XQ602"}  # pickle-exploit scenario; saved-fp16 scenario (checked below)
    assert set(registry()) <= covered, f"rules without a failing case: {sorted(set(registry()) - covered)}"


def test_fp16_is_a_warning(family) -> None:
    fam, targets = family
    report = check(targets["saved-fp16"], fam.base.folder)
    assert any(f.code == "XQ602" and f.severity is Severity.WARNING for f in report.findings)


def test_every_rule_passes_on_a_healthy_checkpoint(family) -> None:
    """Each rule must run and pass on at least one healthy checkpoint, and no healthy one may get an error."""
    fam, targets = family
    runs = [
        check(targets["finetune"], fam.base.folder, CheckOptions(intent="finetune")),
        check(targets["trainer-run"], fam.base.folder, CheckOptions(intent="restore")),
        check(targets["compacted-export"], fam.base.folder),
    ]
    passed = {r.code for run in runs for r in run.results if r.status is Status.PASSED}
    assert passed == set(registry()), f"never passed: {sorted(set(registry()) - passed)}"
    for run in runs:
        assert run.exit_code == 0, [f.message for f in run.findings if f.severity is Severity.ERROR]


def test_rule_docs_complete() -> None:
    for code, rule in registry().items():
        assert code.startswith("XQ") and len(code) == 5
        assert rule.name and rule.what and rule.why and rule.fix and rule.groups
    names = [r.name for r in registry().values()]
    assert len(names) == len(set(names))


def test_check_never_writes_user_files(family) -> None:
    fam, targets = family
    folder = targets["sequential-broken-dvae"]
    before = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.iterdir()}
    check(folder, fam.base.folder)
    assert {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.iterdir()} == before
