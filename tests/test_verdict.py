"""One verdict everywhere: ``decide``, ``RunRecord.exit_code``, summary.json, the history and ``xtts-qa gate`` agree
over a matrix of runs (healthy, warnings under each fail_on, baselined, errors, crashes, unreadable input, failed
evaluations, inconclusive gates with and without strict, partial runs)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from plugin_helpers import check_report, eval_report

from xtts_qa.baseline import Baseline
from xtts_qa.cli import main
from xtts_qa.errors import UsageError
from xtts_qa.evaluation.gates import GateResult, parse_gate
from xtts_qa.reporting import (
    CheckEntry,
    EvalEntry,
    HistoryStore,
    RunRecord,
    evaluate_run,
    parse_gates,
    publish,
    write_run,
)
from xtts_qa.results import CheckReport, RuleResult, Status
from xtts_qa.verdict import Verdict, decide

DIGEST = "sha256:" + "ab" * 32
T0 = "2026-03-01T00:00:00+00:00"


def _check(label: str = "finetune", *, errors: int = 0, warnings: int = 0, digest: str | None = DIGEST) -> CheckEntry:
    report = check_report(f"/models/{label}", errors=errors, warnings=warnings)
    if digest:
        report["provenance"]["checkpoint_digest"] = digest
    return CheckEntry(label, report)


def _crashed() -> CheckEntry:
    rules = (
        RuleResult("XQ001", "readable", Status.PASSED),
        RuleResult("XQ601", "finite-weights", Status.ERROR, error="Traceback ...\nRuntimeError: boom in rule"),
    )
    report = CheckReport("/models/finetune", None, "inference", {}, rules, True, False, 0.1).to_dict()
    return CheckEntry("finetune", report)


def _unreadable() -> CheckEntry:
    rules = (RuleResult("XQ001", "readable", Status.PASSED),)
    report = CheckReport("/models/finetune", None, "unknown", {}, rules, None, True, 0.1).to_dict()
    return CheckEntry("finetune", report)


def _eval(*, gates_pass: bool = True, inconclusive: bool = False, strict: bool = False) -> EvalEntry:
    report = eval_report(None, gates_pass=gates_pass)
    report["strict"] = strict
    if inconclusive:
        gate = parse_gate("wer_delta <= 0.05")
        ci = (0.0, 0.08)  # straddles the threshold
        outcome = gate.judge(0.04, ci)
        assert outcome == "inconclusive"
        result = GateResult(gate.expr, gate.metric, 0.04, ci, outcome, gate.message(0.04, ci, outcome), 0.1, strict)
        report["gates"] = [g for g in report["gates"] if g["metric"] != "wer_delta"] + [result.to_dict()]
        report["passed"] = result.passed
        report["exit_code"] = 0 if result.passed else 1
    return EvalEntry("finetune", "smoke", report)


def _record(run_id: str, checks=(), evals=(), **extra: Any) -> RunRecord:
    return RunRecord(run_id, T0, T0, "pytest", "matrix", tuple(checks), tuple(evals), **extra)


def _with_run_gates(record: RunRecord, *exprs: str) -> RunRecord:
    """What the pytest plugin stores for ``--xtts-gate``: the run-level gate results, no policy (issue 11, item 1)."""
    results = evaluate_run(record, parse_gates(list(exprs)))
    return dataclasses.replace(record, gates=tuple(r.to_dict() for r in results if r.source == "override"))


def _baseline_file(tmp: Path) -> str:
    path = tmp / "accepted.json"
    Baseline.from_record(_record("src", [_check(warnings=1, errors=1)])).write(path)
    return str(path)


# name -> (record factory given a temp folder, expected outcome, expected exit code, reason that must be named)
CASES: dict[str, tuple[Callable[[Path], RunRecord], str, int, str]] = {
    "healthy": (lambda t: _record("r-healthy", [_check()], [_eval()]), "pass", 0, ""),
    "warning-fail-on-error": (lambda t: _record("r-warn-err", [_check(warnings=1)]), "pass", 0, ""),
    "warning-fail-on-warning": (
        lambda t: _record("r-warn-warn", [_check(warnings=1)], policy={"fail_on": "warning"}),
        "fail",
        1,
        "XQ602",
    ),
    "warning-baselined": (
        lambda t: _record(
            "r-warn-bl", [_check(warnings=1)], policy={"fail_on": "warning", "baseline": _baseline_file(t)}
        ),
        "pass",
        0,
        "",
    ),
    "warning-baselined-other-digest": (
        lambda t: _record(
            "r-warn-bl2",
            [_check(warnings=1, digest="sha256:" + "cd" * 32)],
            policy={"fail_on": "warning", "baseline": _baseline_file(t)},
        ),
        "fail",
        1,
        "XQ602",
    ),
    "error": (lambda t: _record("r-error", [_check(errors=1)], [_eval()]), "fail", 1, "XQ401"),
    "error-baselined": (
        lambda t: _record("r-error-bl", [_check(errors=1)], policy={"baseline": _baseline_file(t)}),
        "pass",
        0,
        "",
    ),
    "crashed-rule": (lambda t: _record("r-crash", [_crashed()]), "inconclusive", 2, "XQ601"),
    "unreadable": (lambda t: _record("r-unreadable", [_unreadable()]), "inconclusive", 2, "could not be read"),
    "eval-fail": (lambda t: _record("r-evalfail", [_check()], [_eval(gates_pass=False)]), "fail", 1, "wer_delta"),
    "gate-inconclusive": (lambda t: _record("r-inc", [_check()], [_eval(inconclusive=True)]), "pass", 0, ""),
    "gate-inconclusive-strict": (
        lambda t: _record("r-inc-strict", [_check()], [_eval(inconclusive=True, strict=True)]),
        "fail",
        1,
        "straddles",
    ),
    "gate-inconclusive-policy-strict": (
        lambda t: _record("r-inc-pstrict", [_check()], [_eval(inconclusive=True)], policy={"strict": True}),
        "fail",
        1,
        "wer_delta",
    ),
    "run-gate-warning": (
        lambda t: _record("r-rungate", [_check(warnings=1)], policy={"gates": ["health.warning <= 0"]}),
        "fail",
        1,
        "health.warning",
    ),
    "stored-run-gate-warning": (
        lambda t: _with_run_gates(_record("r-stored-gate", [_check(warnings=1)]), "health.warning <= 0"),
        "fail",
        1,
        "health.warning",
    ),
    "partial-clean": (
        lambda t: _record(
            "r-partial",
            [_check()],
            partial=True,
            coverage={"items": {"ran": 1, "collected": 38}, "why": "-k XQ401"},
        ),
        "inconclusive",
        2,
        "ran 1 of 38 items (-k XQ401)",
    ),
    "partial-with-error": (lambda t: _record("r-partial-err", [_check(errors=1)], partial=True), "fail", 1, "XQ401"),
    "empty": (lambda t: _record("r-empty"), "inconclusive", 2, "nothing was judged"),
}


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, RunRecord]]:
    """Every case written and appended to one history (a published run is what `gate` reads back)."""
    tmp = tmp_path_factory.mktemp("verdicts")
    history = tmp / "history.sqlite"
    records = {name: factory(tmp) for name, (factory, *_rest) in CASES.items()}
    for record in records.values():
        publish(record, tmp / "reports", history)
    return history, records


@pytest.mark.parametrize("name", list(CASES))
def test_every_verdict_agrees(name: str, published: tuple[Path, dict[str, RunRecord]]) -> None:
    history, records = published
    record = records[name]
    _, outcome, code, reason = CASES[name]
    verdict = decide(record)
    assert (verdict.outcome, verdict.exit_code) == (outcome, code), verdict.reasons
    assert verdict.passed is (code == 0)
    if reason:
        assert any(reason in line for line in verdict.reasons), verdict.reasons
    else:
        assert verdict.reasons == ()
    assert record.exit_code == code and record.passed is (code == 0)
    summary = json.loads((history.parent / "reports" / record.run_id / "summary.json").read_text())
    assert (summary["exit_code"], summary["outcome"], summary["reasons"]) == (code, outcome, list(verdict.reasons))
    assert summary["partial"] is record.partial
    stored = {s.run_id: s for s in HistoryStore(history).runs()}[record.run_id]
    assert (stored.exit_code, stored.outcome, stored.partial) == (code, outcome, record.partial)
    back = HistoryStore(history).get(record.run_id)
    assert back == record and decide(back) == verdict
    assert main(["-q", "gate", record.run_id, "--history", str(history)]) == code
    summary_path = history.parent / "reports" / record.run_id / "summary.json"
    assert main(["-q", "gate", str(summary_path)]) == code


def test_gate_options_override_the_stored_policy(
    published: tuple[Path, dict[str, RunRecord]], capsys: pytest.CaptureFixture[str]
) -> None:
    history, records = published
    h = ["--history", str(history)]
    warn = records["warning-fail-on-error"].run_id
    assert main(["-q", "gate", warn, *h, "--fail-on", "warning"]) == 1
    assert main(["-q", "gate", warn, *h, "--fail-on", "warning", "--baseline", _baseline_file(history.parent)]) == 0
    assert "accepted by the baseline" in capsys.readouterr().out
    strict_run = records["warning-fail-on-warning"].run_id
    assert main(["-q", "gate", strict_run, *h, "--fail-on", "error"]) == 0  # the option beats the stored policy
    inc = records["gate-inconclusive"].run_id
    assert main(["-q", "gate", inc, *h, "--strict"]) == 1
    assert main(["-q", "gate", records["gate-inconclusive-strict"].run_id, *h, "--no-strict"]) == 0
    assert main(["-q", "gate", records["error"].run_id, *h, "--gate", "health.error <= 1"]) == 0
    capsys.readouterr()
    assert main(["-q", "gate", records["partial-clean"].run_id, *h, "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["outcome"] == "inconclusive" and doc["partial"] is True and "partial run" in doc["reasons"][0]
    bad = history.parent / "bad-baseline.json"
    bad.write_text("{not json")
    assert main(["-q", "gate", warn, *h, "--baseline", str(bad)]) == 2
    assert "bad-baseline.json" in capsys.readouterr().err


def test_decide_arguments_and_notes(tmp_path: Path) -> None:
    record = _record("r1", [_check(warnings=1, errors=1)], [_eval(inconclusive=True)])
    assert decide(record).exit_code == 1
    baseline = Baseline.from_record(record)
    verdict = decide(record, baseline=baseline, fail_on="warning")
    assert verdict == Verdict(verdict.outcome, 0, (), verdict.notes, verdict.gates)
    assert sum("accepted by the baseline" in n for n in verdict.notes) == 2
    assert any("inconclusive" in n for n in verdict.notes)  # not strict: a note, not a failure
    assert decide(record, baseline=baseline, strict=True).outcome == "fail"
    # a health gate takes its severity over from fail_on
    warn = _record("r2", [_check(warnings=2)])
    assert decide(warn, fail_on="warning", gates=["health.warning <= 2"]).passed
    assert not decide(warn, fail_on="warning", gates=["health.warning <= 1"]).passed
    # a gate overriding an eval metric re-judges the stored evaluation
    assert decide(_record("r3", [], [_eval(gates_pass=False)]), gates=["wer_delta <= 0.5"]).passed
    # a stored baseline that went missing cannot vouch: inconclusive, never a crash
    gone = dataclasses.replace(warn, policy={"fail_on": "warning", "baseline": str(tmp_path / "gone.json")})
    v = decide(gone)
    assert v.exit_code == 2 and "gone.json" in v.reasons[0] and gone.exit_code == 2
    # a gate given for the verdict on a figure the run never measured cannot be decided; one that does not apply
    # by design (loudness without a measurement) is a note
    unmeasured = decide(_record("r4", [], [_eval()]), gates=["garbled_count <= 0"])
    assert unmeasured.outcome == "inconclusive" and "not measured" in unmeasured.reasons[0]
    not_applicable = decide(_record("r5", [], [_eval()]), gates=["loudness >= -30"])
    assert not_applicable.passed and any("not applicable" in n for n in not_applicable.notes)
    # an evaluation whose report says it could not run
    broken = _eval()
    broken.report["exit_code"] = 2
    assert decide(_record("r6", [_check()], [broken])).exit_code == 2
    bad_gate = decide(_record("r7", [_check()], [], gates=({"expr": "wer <= nonsense"},)))
    assert bad_gate.exit_code == 2 and bad_gate.reasons[0].startswith("gate 'wer <= nonsense' cannot be applied")
    with pytest.raises(UsageError, match="fail_on"):
        decide(warn, fail_on="fatal")
    # old records (schema 1): no partial/policy keys -> complete, default policy
    old = record.to_dict()
    for key in ("partial", "coverage", "policy", "outcome", "reasons"):
        old.pop(key)
    back = RunRecord.from_dict(old)
    assert back.partial is False and back.policy["fail_on"] == "error" and back.exit_code == 1


def test_write_run_summary_has_the_verdict(tmp_path: Path) -> None:
    record = _record("r-sum", [_crashed()], [_eval()], policy={"fail_on": "warning", "gates": ["wer <= 0.9"]})
    paths = write_run(record, tmp_path)
    summary = json.loads(paths.summary.read_text())
    assert summary["exit_code"] == 2 and summary["outcome"] == "inconclusive"
    assert "crashed" in summary["reasons"][0] and "boom in rule" in summary["reasons"][0]
    assert summary["policy"]["gates"] == ["wer <= 0.9"] and summary["policy"]["fail_on"] == "warning"
    assert RunRecord.from_dict(summary) == record
