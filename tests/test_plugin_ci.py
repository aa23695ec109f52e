"""The pytest plugin as a CI job meets it (issue 11): one verdict for items, summary and summary.json; opt-in item
generation; partial runs marked with their coverage; progress lines without a terminal; quiet libraries; skip lines
and ids that name the item; a light import; and the Ray engine giving the local verdict. Real tiny coqui-tts models
(``plugin_helpers.build_models``), real pytest runs (pytester)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from plugin_helpers import build_models

from xtts_qa.errors import UsageError
from xtts_qa.reporting import HistoryStore, load_record

pytest_plugins = ["pytester"]

UNIT_TEST = "def test_x():\n    assert True\n\ndef test_y():\n    assert True\n"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """base, finetune (healthy) and broken (sequential-broken-dvae), built once for this module."""
    return build_models(tmp_path_factory.getbasetemp() / "plugin-models")  # shared with test_plugin.py


def _run_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []


def test_a_failing_gate_fails_items_summary_and_summary_json_alike(
    pytester: pytest.Pytester, models: dict[str, Path]
) -> None:
    # the base checked against itself: XQ503 gpt-unchanged is a warning; a health.warning gate makes it fail
    argv = ["--xtts-select=XQ503", f"--xtts-checkpoint={models['base']}", f"--xtts-base={models['base']}"]
    result = pytester.runpytest(*argv, "--xtts-gate=health.warning <= 0", "--xtts-report-dir=gated")
    result.assert_outcomes(passed=1, warnings=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, "every item passed, but the run's verdict is FAIL"
    result.stdout.fnmatch_lines(["*verdict: FAIL (exit 1*", "*pytest exits 1: the run's verdict (fail)*"])
    summary = json.loads((_run_dirs(pytester.path / "gated")[0] / "summary.json").read_text())
    assert summary["exit_code"] == 1 and summary["passed"] is False

    # --xtts-fail-on=warning: the warning fails its item, and the stored policy says so
    strict = pytester.runpytest(*argv, "--xtts-fail-on=warning", "--xtts-report-dir=strict")
    strict.assert_outcomes(failed=1)
    strict.stdout.fnmatch_lines(["XQ503 gpt-unchanged failed on base*", "*verdict: FAIL (exit 1; fail on warning)*"])
    record = load_record(_run_dirs(pytester.path / "strict")[0])
    assert record.policy["fail_on"] == "warning" and record.exit_code == 1


def test_checkpoints_in_the_ini_file_do_not_take_over_unrelated_runs(
    pytester: pytest.Pytester, models: dict[str, Path]
) -> None:
    pytester.makeini(f"""
        [pytest]
        xtts_checkpoints =
            {models["broken"]}
        xtts_select = XQ001
    """)
    pytester.makepyfile(test_unit=UNIT_TEST)
    result = pytester.runpytest("test_unit.py::test_x")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    assert "xtts_qa summary" not in result.stdout.str() and "xtts_qa:" not in result.stdout.str()
    assert not (pytester.path / "reports").exists(), "no report and no history row"

    health = pytester.runpytest("--collect-only", "-q", "-m", "health")
    assert "sequential-broken-dvae::XQ001-" in health.stdout.str()
    not_slow = pytester.runpytest("--collect-only", "-q", "-m", "not slow")
    assert "XQ001" not in not_slow.stdout.str(), "-m 'not slow' does not ask for xtts items"


def test_rootdir_surprise_warns_and_relative_paths_are_normalised(
    pytester: pytest.Pytester, models: dict[str, Path]
) -> None:
    pytester.makeini("[pytest]\nxtts_intent = finetune\n")
    # with a space, pytest takes the path for a test path and picks its rootdir (and no ini file) from it
    result = pytester.runpytest("--collect-only", "-q", "--xtts-select=XQ001", "--xtts-checkpoint", str(models["base"]))
    result.stdout.fnmatch_lines(["*xtts_qa: pytest did not read *tox.ini*--xtts-checkpoint=PATH*"])

    work = pytester.path / "work"
    work.mkdir()
    relative = Path("..") / Path(*([".."] * len(work.parts[1:]))) / models["finetune"].relative_to("/")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        ran = pytester.runpytest("--xtts-select=XQ001", f"--xtts-checkpoint={relative}", "--xtts-report-dir=out")
    ran.assert_outcomes(passed=1)
    record = load_record(_run_dirs(work / "out")[0])
    target = record.provenance["checkpoints"]["finetune"]["target"]
    assert ".." not in target and Path(target) == models["finetune"]


def test_a_full_health_run_prints_progress_is_complete_and_has_no_xq701(
    pytester: pytest.Pytester, models: dict[str, Path]
) -> None:
    result = pytester.runpytest("-m", "health", f"--xtts-checkpoint={models['finetune']}", "--xtts-history=h.sqlite")
    assert result.ret == pytest.ExitCode.OK
    # no TTY here: progress lines through the terminal reporter, with elapsed time and ETA
    result.stdout.fnmatch_lines(["xtts_qa: *items, elapsed *, ETA *", "xtts_qa: finetune done (* items, 0 failed)*"])
    record = load_record(_run_dirs(pytester.path / "reports")[0])
    assert record.partial is False and record.exit_code == 0
    assert record.coverage["rules"]["ran"] == record.coverage["rules"]["collected"] > 30
    codes = {f["code"] for r in record.checks[0].report["results"] for f in r.get("findings", [])}
    assert "XQ701" not in codes, "a healthy inference model carries no restore-only note"
    assert "XQ701" not in result.stdout.str()


def test_k_narrowed_run_is_partial_with_its_coverage(pytester: pytest.Pytester, models: dict[str, Path]) -> None:
    result = pytester.runpytest(
        "-m", "health", "-k", "XQ401", f"--xtts-checkpoint={models['broken']}", "--xtts-history=h.sqlite"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["partial run: ran 1 of * items*-k XQ401*", "*verdict: INCONCLUSIVE*"])
    assert result.ret == 2, "pytest exits with the verdict: a partial run is inconclusive, as in summary.json"
    record = load_record(_run_dirs(pytester.path / "reports")[0])
    assert record.partial is True
    assert record.coverage["items"]["ran"] == 1 and record.coverage["items"]["collected"] > 30
    assert "sequential-broken-dvae::XQ402-dvae-differs-from-base" in record.coverage["not_run"]
    history = HistoryStore(pytester.path / "h.sqlite")
    assert history.count() == 1
    with pytest.raises(UsageError, match="partial runs are left out"):  # a partial run is never latest
        history.get("latest")


def test_skip_lines_name_the_item_and_printed_ids_run_again(pytester: pytest.Pytester, models: dict[str, Path]) -> None:
    argv = [f"--xtts-checkpoint={models['finetune']}", "--xtts-report-dir=off"]
    skipped = pytester.runpytest("-rs", "--xtts-select=XQ402", *argv)
    skipped.assert_outcomes(skipped=1)
    skipped.stdout.fnmatch_lines(["SKIPPED ?1? finetune::XQ402-dvae-differs-from-base: *needs*base*"])
    assert "items.py" not in skipped.stdout.str()

    listed = pytester.runpytest("--collect-only", "-q", "--xtts-select=XQ0", *argv)
    ids = [line for line in listed.stdout.lines if line.startswith("finetune::")]
    assert len(ids) > 2
    again = pytester.runpytest("-v", ids[1], *argv)
    again.assert_outcomes(passed=1)
    again.stdout.fnmatch_lines([f"{ids[1]} PASSED*"])
    assert sum(1 for line in again.stdout.lines if line.startswith("finetune::")) == 1


def test_library_deprecation_noise_is_filtered(pytester: pytest.Pytester, models: dict[str, Path]) -> None:
    pytester.makepyfile(
        test_noise="""
        import warnings

        def test_resemblyzer_import_noise():
            warnings.warn_explicit(
                "Please import `binary_dilation` from the `scipy.ndimage` namespace", DeprecationWarning,
                "resemblyzer/audio.py", 1, module="resemblyzer.audio",
            )
        """
    )
    plain = pytester.runpytest("test_noise.py")
    plain.assert_outcomes(passed=1, warnings=1)  # without the plugin at work, the warning shows
    quiet = pytester.runpytest(
        "test_noise.py", "--xtts-select=XQ001", f"--xtts-checkpoint={models['finetune']}", "--xtts-report-dir=off"
    )
    quiet.assert_outcomes(passed=2)
    assert "binary_dilation" not in quiet.stdout.str()


def test_importing_the_plugin_loads_no_heavy_library() -> None:
    code = (
        "import sys, xtts_qa.pytest_plugin\n"
        "print(sorted(m for m in ('torch', 'TTS', 'numpy', 'xtts_qa.engine', 'xtts_qa.rules') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


SUITE = """
name: tiny
language: en
seed: 7
speakers:
  narrator:
    espeak:
      voice: en-us
      text: "Good morning. This is a short recording of my voice."
gates:
  - silent_count <= 0
  - non_finite_count <= 0
sentences:
  - id: one
    text: "Hello there."
    speaker: narrator
"""


@pytest.mark.slow
def test_ray_engine_gives_the_local_verdict(
    pytester: pytest.Pytester, models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # find_spec, not importorskip: pytester drops modules imported during the test from sys.modules, and a second
    # import of ray's extension in this process (tests/test_sweep.py) crashes it
    if importlib.util.find_spec("ray") is None:
        pytest.skip("the ray extra is not installed (pip install -e '.[ray]')")
    pytester.makefile(".yaml", tiny=SUITE)
    argv = ["-m", "eval", f"--xtts-checkpoint={models['finetune']}", "--xtts-suite=tiny.yaml", "--xtts-device=cpu"]
    # each engine gets its own evaluation cache, so the Ray run cannot reuse what the local run synthesised; the
    # assembled ASR model (checked by its SHA-256) is shared with the session's cache
    shared_asr = Path(os.environ.get("XTTS_QA_CACHE") or pytester.path / "asr-cache") / "asr"
    shared_asr.mkdir(parents=True, exist_ok=True)
    for name in ("cache-local", "cache-ray"):
        (pytester.path / name).mkdir()
        (pytester.path / name / "asr").symlink_to(shared_asr, target_is_directory=True)
    monkeypatch.setenv("XTTS_QA_CACHE", str(pytester.path / "cache-local"))
    # in subprocesses: Ray keeps process-wide state (its auth-token loader reads the HOME pytester sets), which must
    # not leak into the session's own Ray cluster (tests/test_sweep.py)
    local = pytester.runpytest_subprocess(*argv, "--xtts-report-dir=local")
    # no TTY: the evaluation's own progress (clips synthesised, elapsed, ETA) reaches the terminal reporter
    local.stdout.fnmatch_lines(["*finetune tiny: synthesis (*): 1/1 clip* elapsed *"])
    monkeypatch.setenv("XTTS_QA_CACHE", str(pytester.path / "cache-ray"))
    remote = pytester.runpytest_subprocess(*argv, "--xtts-engine=ray", "--xtts-report-dir=remote")
    assert remote.ret == local.ret
    assert remote.parseoutcomes() == local.parseoutcomes()
    remote.stdout.fnmatch_lines(["*evaluating suite tiny (1 sentences, ray engine)*"])
    journal = [
        json.loads(line)
        for path in (pytester.path / "cache-ray").rglob("sweeps/*.jsonl")
        for line in path.read_text().splitlines()
    ]
    assert journal and all(j["worker"].startswith("ray:") for j in journal), "the units ran on Ray actors"
    a = load_record(_run_dirs(pytester.path / "local")[0])
    b = load_record(_run_dirs(pytester.path / "remote")[0])
    assert b.provenance["engine"] == "ray" and a.provenance["engine"] == "local"
    assert a.exit_code == b.exit_code
    gates = [[(g["expr"], g.get("outcome")) for g in e.report["gates"]] for e in a.evals]
    assert gates == [[(g["expr"], g.get("outcome")) for g in e.report["gates"]] for e in b.evals]


def test_tool_xtts_qa_in_pyproject_is_read_and_a_bad_one_stops_only_xtts_runs(
    pytester: pytest.Pytester, models: dict[str, Path]
) -> None:
    pytester.makepyprojecttoml(f"""
        [tool.pytest.ini_options]
        xtts_report_dir = "off"

        [tool.xtts_qa]
        checkpoints = ["{models["finetune"]}"]
        select = ["XQ001"]
        fail_on = "warning"
    """)
    result = pytester.runpytest("--xtts", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*fail on warning*", "finetune::XQ001-* PASSED*"])

    pytester.makepyprojecttoml('[tool.xtts_qa]\nfail_on = "sometimes"\n')
    pytester.makepyfile(test_unit=UNIT_TEST)
    assert pytester.runpytest("test_unit.py").ret == pytest.ExitCode.OK, "an unrelated run is not stopped"
    bad = pytester.runpytest(f"--xtts-checkpoint={models['finetune']}", "--xtts-select=XQ001")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    assert "pyproject.toml" in bad.stderr.str() and "fail_on" in bad.stderr.str()


def test_lf_reruns_failed_xtts_items(pytester: pytest.Pytester, models: dict[str, Path]) -> None:
    """A CI "retry the failures" step (`pytest --lf`) reruns failed health items instead of passing without them."""
    pytester.makeini(f"""
        [pytest]
        xtts_checkpoints =
            {models["broken"]}
        xtts_base = {models["base"]}
        xtts_intent = finetune
        xtts_select = XQ40
    """)
    pytester.makepyfile(test_unit=UNIT_TEST)
    first = pytester.runpytest("--xtts", "--xtts-report-dir=off")
    assert first.ret == pytest.ExitCode.TESTS_FAILED
    again = pytester.runpytest("--lf", "--xtts-report-dir=off")
    again.stdout.fnmatch_lines(["*xtts_qa: enabled by --lf*", "FAILED sequential-broken-dvae::XQ40*"])
    assert again.ret != pytest.ExitCode.OK
    assert again.parseoutcomes().get("failed", 0) >= 1
