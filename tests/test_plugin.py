"""The pytest plugin, exercised with pytester: options and ini, markers, item ids, explained failures, exit status,
skips, warnings, JUnit properties, reports and history, fixtures, eval items, and an xdist run."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from plugin_helpers import build_models, eval_report

from xtts_qa.labels import checkpoint_labels
from xtts_qa.plugin import evalbridge
from xtts_qa.plugin.options import resolve_device
from xtts_qa.reporting import HistoryStore, load_record

pytest_plugins = ["pytester"]

PLAIN_TEST = "def test_plain():\n    assert True\n"


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """base, finetune (healthy) and broken (sequential-broken-dvae), built once per session."""
    return build_models(tmp_path_factory.getbasetemp() / "plugin-models")  # shared with test_plugin_ci.py


def args(models: dict[str, Path], *names: str, base: bool = True) -> list[str]:
    out = [f"--xtts-checkpoint={models[n]}" for n in names]
    return out + ([f"--xtts-base={models['base']}"] if base else [])


def test_options_are_in_their_own_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    text = result.stdout.str()
    assert "xtts_qa: health checks and evaluation of XTTS-v2 checkpoints:" in text
    for option in (
        "--xtts-checkpoint",
        "--xtts-base",
        "--xtts-suite",
        "--xtts-device",
        "--xtts-select",
        "--xtts-ignore",
        "--xtts-intent",
        "--xtts-report-dir",
        "--xtts-history",
        "--xtts-gate",
    ):
        assert option in text
    for ini in ("xtts_checkpoints", "xtts_base", "xtts_suites", "xtts_select", "xtts_report_dir", "xtts_history"):
        assert ini in text


def test_markers_registered_for_strict_markers(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.health:*structural*", "@pytest.mark.eval:*synthesis*"])
    pytester.makepyfile("import pytest\n\n@pytest.mark.health\ndef test_user_health():\n    pass\n")
    assert pytester.runpytest("--strict-markers").ret == 0


def test_silent_without_checkpoints(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PLAIN_TEST)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "xtts_qa summary" not in result.stdout.str()
    assert not (pytester.path / "reports").exists()


def test_item_ids_and_health_selection(pytester: pytest.Pytester, models: dict[str, Path]) -> None:
    pytester.makepyfile(PLAIN_TEST)
    result = pytester.runpytest("--collect-only", "-q", "-m", "health", *args(models, "finetune", "broken"))
    out = result.stdout.str()
    assert "finetune::XQ401-dvae-key-set" in out
    assert "sequential-broken-dvae::XQ402-dvae-differs-from-base" in out
    assert "test_plain" not in out  # -m health selects only the structural items
    everything = pytester.runpytest("--collect-only", "-q", *args(models, "finetune"))
    assert "test_plain" in everything.stdout.str()


def test_failure_explains_what_why_fix_without_traceback(pytester: pytest.Pytester, models: dict[str, Path]) -> None:
    result = pytester.runpytest(
        "-m", "health", "--xtts-intent=finetune", "--xtts-report-dir=off", *args(models, "finetune", "broken")
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*sequential-broken-dvae: XQ401 dvae-key-set*",
            "XQ401 dvae-key-set failed on sequential-broken-dvae*",
            "*what is wrong: only 0 of * DiscreteVAE keys would load*",
            "*why it matters:*",
            "*how to fix:*Copy dvae.pth from the base*",
            "*more: xtts-qa rule XQ401*",
        ]
    )
    assert "Traceback" not in out and "def runtest" not in out and "raise RuleFailure" not in out
    result.stdout.fnmatch_lines(
        ["FAILED sequential-broken-dvae::XQ401-dvae-key-set*", "FAILED sequential-broken-dvae::XQ402-*"]
    )
    assert "FAILED finetune::" not in out


def test_healthy_checkpoint_exits_zero(pytester: pytest.Pytester, models: dict[str, Path]) -> None:
    result = pytester.runpytest("-m", "health", "--xtts-report-dir=off", *args(models, "finetune"))
    assert result.ret == pytest.ExitCode.OK


def test_skipped_rules_are_skips_with_reason(pytester: pytest.Pytester, models: dict[str, Path]) -> None:
    result = pytester.runpytest(
        "-rs", "--xtts-select=XQ402", "--xtts-report-dir=off", *args(models, "finetune", base=False)
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*XQ402 dvae-differs-from-base: needs*base*"])


def test_warnings_are_reported_not_failed(pytester: pytest.Pytester, models: dict[str, Path]) -> None:
    # the base model checked against itself: XQ503 gpt-unchanged is a warning
    result = pytester.runpytest(
        "--xtts-select=XQ503",
        f"--xtts-checkpoint={models['base']}",
        f"--xtts-base={models['base']}",
        "--xtts-report-dir=reports",
    )
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*CheckpointWarning: base: XQ503 gpt-unchanged*", "*warnings (1, not failing):*"])
    assert result.ret == pytest.ExitCode.OK


def test_ini_settings_and_command_line_wins(pytester: pytest.Pytester, models: dict[str, Path]) -> None:
    pytester.makeini(f"""
        [pytest]
        xtts_checkpoints =
            {models["broken"]}
        xtts_base = {models["base"]}
        xtts_select = XQ4
        xtts_intent = finetune
        xtts_report_dir = out/reports
    """)
    result = pytester.runpytest("--collect-only", "-q", "--xtts")
    ids = [line for line in result.stdout.lines if "::" in line]
    assert ids and all(i.startswith("sequential-broken-dvae::XQ4") for i in ids)
    overridden = pytester.runpytest("--collect-only", "-q", "--xtts", "--xtts-select=XQ6")
    ids = [line for line in overridden.stdout.lines if "::" in line]
    assert ids and all("::XQ6" in i for i in ids)
    ran = pytester.runpytest("--xtts")
    assert ran.ret == pytest.ExitCode.TESTS_FAILED
    assert (pytester.path / "out" / "reports" / "history.sqlite").exists()  # relative to the ini file


def test_globs_expand_to_every_checkpoint(pytester: pytest.Pytester, models: dict[str, Path]) -> None:
    result = pytester.runpytest(
        "--collect-only", "-q", "--xtts-select=XQ001", f"--xtts-checkpoint={models['base'].parent}/*e*"
    )
    out = result.stdout.str()
    assert "finetune::XQ001-" in out and "sequential-broken-dvae::XQ001-" in out and "base::XQ001-" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--xtts-select=XQ999"], "matches no rule"),
        (["--xtts-checkpoint=/nonexistent/model"], "no such model folder"),
        (["--xtts-intent=speak"], "invalid choice"),
    ],
)
def test_usage_errors(pytester: pytest.Pytester, models: dict[str, Path], argv: list[str], message: str) -> None:
    result = pytester.runpytest(*args(models, "finetune"), *argv)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_unexpected_errors_fall_back_to_pytest_report(
    pytester: pytest.Pytester, models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import xtts_qa.plugin.items as items

    def boom(rule: object, ctx: object) -> None:
        raise RuntimeError("unexpected boom")

    monkeypatch.setattr(items, "run_rule", boom)
    result = pytester.runpytest("--xtts-select=XQ001", "--xtts-report-dir=off", *args(models, "finetune"))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*RuntimeError: unexpected boom*"])


def test_junit_properties_and_reports(pytester: pytest.Pytester, models: dict[str, Path]) -> None:
    result = pytester.runpytest(
        "--junitxml=junit.xml",
        "--xtts-select=XQ4",
        "--xtts-label=ci-42",
        "--xtts-intent=finetune",
        *args(models, "finetune", "broken"),
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    tree = ET.parse(pytester.path / "junit.xml")
    case = next(
        c
        for c in tree.iter("testcase")
        if c.get("name") == "XQ401-dvae-key-set" and "sequential" in c.get("classname", "")
    )
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["xtts_qa.rule"] == "XQ401" and props["xtts_qa.status"] == "failed" and props["xtts_qa.errors"] == "1"

    result.stdout.fnmatch_lines(
        ["*xtts_qa summary*", "finetune * healthy", "sequential-broken-dvae * UNHEALTHY", "report: *report.html"]
    )
    runs = sorted(p for p in (pytester.path / "reports").iterdir() if p.is_dir())
    assert len(runs) == 1
    record = load_record(runs[0])
    assert record.label == "ci-42" and record.exit_code == 1
    assert {c.checkpoint for c in record.checks} == {"finetune", "sequential-broken-dvae"}
    broken = next(c for c in record.checks if c.checkpoint == "sequential-broken-dvae").report
    assert broken["exit_code"] == 1 and {r["code"] for r in broken["results"]} >= {"XQ401", "XQ402"}
    prov = record.provenance
    assert prov["checkpoints"]["finetune"]["hash"] and prov["base"]["hash"] and prov["environment"]["torch"]
    assert (runs[0] / "report.html").read_text().count("XQ401") >= 1
    assert HistoryStore(pytester.path / "reports" / "history.sqlite").count() == 1


def test_fixtures_for_users_tests(pytester: pytest.Pytester, models: dict[str, Path]) -> None:
    pytester.makepyfile("""
        def test_bundle(xtts_checkpoint, xtts_bundle):
            assert xtts_bundle.checkpoint is not None
            assert xtts_bundle is xtts_checkpoint.bundle  # opened once per session

        def test_report(xtts_checkpoint, xtts_check_report):
            assert xtts_check_report.exit_code == (1 if xtts_checkpoint.label.startswith("sequential") else 0)

        def test_device(xtts_device):
            assert xtts_device == "cpu"
    """)
    result = pytester.runpytest(
        "-m", "not health", "--xtts-intent=finetune", "--xtts-report-dir=off", *args(models, "finetune", "broken")
    )
    result.assert_outcomes(passed=5)
    result.stdout.no_fnmatch_line("*xtts_qa summary*")


def test_fixtures_skip_without_checkpoints(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_bundle(xtts_bundle):\n    pass\n")
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no checkpoint configured*"])


@pytest.fixture
def fake_eval(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple]:
    """Eval items driven by fixture EvalReport dicts instead of synthesis (the bridge is the only seam)."""
    calls: list[tuple] = []

    def load_suite(ref: str) -> evalbridge.SuiteSpec:
        return evalbridge.SuiteSpec("smoke", ref, ("s1", "s2", "s3"))

    def run_suite(
        candidate: Path, base: Path | None, ref: str, device: str, gates: tuple[str, ...] = (), **engine: object
    ) -> dict:
        calls.append((Path(candidate).name, ref, device, gates))
        failing = ("s2",) if "sequential" in str(candidate) else ()
        return eval_report(
            tmp_path / Path(candidate).name, candidate=str(candidate), failing=failing, wer=0.1, gates_pass=not failing
        )

    monkeypatch.setattr(evalbridge, "load_suite", load_suite)
    monkeypatch.setattr(evalbridge, "run_suite", run_suite)
    return calls


def test_eval_items_per_sentence(pytester: pytest.Pytester, models: dict[str, Path], fake_eval: list[tuple]) -> None:
    result = pytester.runpytest(
        "-m", "eval", "--xtts-suite=smoke", "--junitxml=junit.xml", *args(models, "finetune", "broken")
    )
    result.assert_outcomes(passed=6, failed=2)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "FAILED sequential-broken-dvae::smoke::s2 - *",
            "FAILED sequential-broken-dvae::smoke::gates - *",
        ]
    )
    assert "sentence s2 (en) of suite smoke failed on sequential-broken-dvae: fail" in out
    assert "heard:      something else entirely" in out and "flags: hallucination" in out
    assert "Traceback" not in out
    assert len(fake_eval) == 2  # one evaluation per checkpoint x suite, shared by its items
    props = {
        p.get("name"): p.get("value")
        for c in ET.parse(pytester.path / "junit.xml").iter("testcase")
        if c.get("name") == "s1"
        for p in c.iter("property")
    }
    assert float(props["xtts_qa.wer"]) == pytest.approx(0.1)

    run = next(p for p in (pytester.path / "reports").iterdir() if p.is_dir())
    record = load_record(run)
    assert [(e.checkpoint, e.suite, len(e.sentences)) for e in record.evals] == [
        ("finetune", "smoke", 3),
        ("sequential-broken-dvae", "smoke", 3),
    ]
    lines = (run / "sentences.jsonl").read_text().splitlines()
    assert len(lines) == 6 and json.loads(lines[0])["provenance"]["asr_model"] == "tiny.en"
    assert len(list((run / "audio").rglob("*.wav"))) >= 12


def test_sentence_failures_can_warn(pytester: pytest.Pytester, models: dict[str, Path], fake_eval: list[tuple]) -> None:
    result = pytester.runpytest(
        "-m", "eval", "--xtts-suite=smoke", "--xtts-sentences=warn", "--xtts-report-dir=off", *args(models, "broken")
    )
    result.assert_outcomes(passed=3, failed=1, warnings=1)  # the gates item still fails


def test_gate_override_is_passed_to_the_evaluation(
    pytester: pytest.Pytester, models: dict[str, Path], fake_eval: list[tuple]
) -> None:
    pytester.runpytest(
        "-m", "eval", "--xtts-suite=smoke", "--xtts-gate=wer <= 0.9", "--xtts-report-dir=off", *args(models, "finetune")
    )
    assert fake_eval == [("finetune", "smoke", "cpu", ("wer <= 0.9",))]


def test_eval_items_skip_when_evaluation_is_unavailable(
    pytester: pytest.Pytester, models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(ref: str) -> None:
        raise evalbridge.EvalUnavailable("xtts_qa.evaluation cannot be imported (no faster_whisper)")

    monkeypatch.setattr(evalbridge, "load_suite", unavailable)
    result = pytester.runpytest(
        "-rs", "-m", "eval", "--xtts-suite=smoke", "--xtts-report-dir=off", *args(models, "finetune")
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*evaluation unavailable: xtts_qa.evaluation cannot be imported*"])


def test_xdist_two_workers(pytester: pytest.Pytester, models: dict[str, Path]) -> None:
    pytester.makepyfile(PLAIN_TEST)
    result = pytester.runpytest_subprocess(
        "-n",
        "2",
        "-v",
        "-p",
        "no:cacheprovider",
        "--xtts-select=XQ0,XQ4",
        "--xtts-history=h.sqlite",
        "--xtts-intent=finetune",
        *args(models, "finetune", "broken"),
        timeout=240,
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 2 and outcomes["passed"] >= 10
    result.stdout.fnmatch_lines(["*xtts_qa summary*", "sequential-broken-dvae *2 * UNHEALTHY"])
    # --dist loadgroup is the default with xtts items when the user did not choose a mode
    result.stdout.fnmatch_lines(["xtts_qa: --dist loadgroup (the default with xtts items*"])
    record = HistoryStore(pytester.path / "h.sqlite").get("latest")
    # every item's result crossed from its worker to the controller
    for check in record.checks:
        assert all(r["code"].startswith(("XQ0", "XQ4")) for r in check.report["results"])
    total = sum(len(c.report["results"]) for c in record.checks)
    assert total == outcomes["failed"] + outcomes["passed"] + outcomes.get("skipped", 0) - 1  # minus test_plain


def test_resolve_device_per_worker() -> None:
    assert resolve_device("auto", None, 0) == "cpu"
    assert resolve_device("auto", None, 1) == "cuda:0"
    assert resolve_device("cuda", "gw0", 4) == "cuda:0"
    assert resolve_device("cuda", "gw5", 4) == "cuda:1"
    assert resolve_device("auto", "gw3", 2) == "cuda:1"
    assert resolve_device("cpu", "gw1", 4) == "cpu"
    assert resolve_device("cuda:2", "gw1", 4) == "cuda:2"


def test_labels_are_short_and_unique(tmp_path: Path) -> None:
    for rel in ("run1/best_model.pth", "run2/best_model.pth", "run1/checkpoint_100.pth", "finetune/x"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    paths = [
        tmp_path / "run1/best_model.pth",
        tmp_path / "run2/best_model.pth",
        tmp_path / "run1/checkpoint_100.pth",
        tmp_path / "finetune",
    ]
    assert checkpoint_labels(paths) == ["run1-best_model", "run2-best_model", "checkpoint_100", "finetune"]


def test_an_evaluation_that_could_not_run_never_passes(
    pytester: pytest.Pytester, models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eval items skip when the evaluation is unavailable (no [eval] extra): the run asked for it, so no pass."""

    def load_suite(ref: str) -> evalbridge.SuiteSpec:
        return evalbridge.SuiteSpec("smoke", ref, ("s1", "s2"))

    def run_suite(*_: object, **__: object) -> dict:
        raise evalbridge.EvalUnavailable("xtts_qa.evaluation cannot be imported (No module named 'faster_whisper')")

    monkeypatch.setattr(evalbridge, "load_suite", load_suite)
    monkeypatch.setattr(evalbridge, "run_suite", run_suite)
    result = pytester.runpytest("-rs", "-m", "eval", "--xtts-suite=smoke", *args(models, "finetune"))
    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines(["*no evaluation of finetune/smoke*", "*verdict: INCONCLUSIVE*"])
    assert result.ret == 2, "skipped evaluations must not let pytest exit 0"
    record = load_record(next(p for p in (pytester.path / "reports").iterdir() if p.is_dir()))
    assert record.partial and record.coverage["not_evaluated"] == ["finetune/smoke"]
    assert record.exit_code == 2
