"""The xtts-qa command line: exit codes, JSON, rule docs, selection, one-line errors, several targets and globs,
run records and the history, --fail-on and --baseline, -q/-v after the sub-command, help text, progress lines."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from xtts_qa.cli import build_parser, main
from xtts_qa.progress import Progress, format_duration, plural, progress
from xtts_qa.reporting.history import HistoryStore
from xtts_qa.reporting.record import load_record
from xtts_qa.results import SCHEMA_VERSION
from xtts_qa.rules import registry


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command runs in an empty folder: no pyproject.toml settings, and default run records land there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("XTTS_QA_RECORD", raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["-q", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_exit_codes(family, capsys, tmp_path) -> None:
    fam, targets = family
    base = str(fam.base.folder)
    assert run(capsys, "check", str(targets["finetune"]), "--base", base)[0] == 0
    # with no settings, the run record goes to ./reports and the history beside it
    (folder,) = [p for p in (tmp_path / "reports").iterdir() if p.is_dir()]
    record = load_record(folder)
    assert record.source == "cli" and record.exit_code == 0 and record.checkpoints == ["finetune"]
    assert HistoryStore(tmp_path / "reports" / "history.sqlite").get(record.run_id).run_id == record.run_id
    assert run(capsys, "check", str(targets["sequential-broken-dvae"]), "--base", base, "--intent", "finetune")[0] == 1
    # inference never reads dvae.pth: the broken one is a note there, not a failure
    assert run(capsys, "check", str(targets["sequential-broken-dvae"]), "--base", base)[0] == 0
    assert run(capsys, "check", str(targets["truncated-copy"]))[0] == 2


def test_text_report_has_fix(family, capsys) -> None:
    fam, targets = family
    code, out, _ = run(
        capsys, "check", str(targets["sequential-broken-dvae"]), "--base", str(fam.base.folder), "--intent", "finetune"
    )
    assert code == 1
    assert "XQ401 dvae-key-set" in out and "fix: Copy dvae.pth from the base" in out and "UNHEALTHY" in out


def test_json_report(family, capsys) -> None:
    fam, targets = family
    code, out, _ = run(capsys, "check", str(targets["merge-weights-1.2"]), "--base", str(fam.base.folder), "--json")
    data = json.loads(out)
    assert code == 1 and data["schema_version"] == SCHEMA_VERSION and data["exit_code"] == 1
    assert {r["code"] for r in data["results"]} == set(registry())
    xq901 = next(r for r in data["results"] if r["code"] == "XQ901")
    assert xq901["status"] == "failed" and xq901["findings"][0]["details"]["median_ratio"] == pytest.approx(
        1.2, abs=0.01
    )


def test_select_and_ignore(family, capsys) -> None:
    fam, targets = family
    code, out, _ = run(
        capsys,
        "check",
        str(targets["sequential-broken-dvae"]),
        "--base",
        str(fam.base.folder),
        "--select",
        "dvae",
        "--ignore",
        "XQ402",
        "--intent",
        "finetune",
        "--json",
    )
    data = json.loads(out)
    assert [r["code"] for r in data["results"]] == ["XQ401"] and code == 1
    code, _, err = run(capsys, "check", str(targets["finetune"]), "--select", "XQ999")
    assert code == 2 and "matches no rule" in err


def test_rules_and_rule(capsys) -> None:
    code, out, _ = run(capsys, "rules")
    assert code == 0 and all(c in out for c in registry())
    code, out, _ = run(capsys, "rule", "XQ401")
    assert code == 0 and "What it checks" in out and "Why it matters" in out and "How to fix" in out
    assert run(capsys, "rule", "dvae-key-set")[1] == out
    code, _, err = run(capsys, "rule", "XQ000")
    assert code == 2 and "no rule" in err


def test_missing_target_is_one_line(tmp_path, capsys) -> None:
    code, out, err = run(capsys, "check", str(tmp_path / "nope"))
    assert code == 2 and err.count("\n") == 1 and "does not exist" in err and "Traceback" not in err


def test_console_script_installed() -> None:
    exe = __import__("shutil").which("xtts-qa", path=str(__import__("pathlib").Path(sys.executable).parent))
    assert exe, "the xtts-qa console script is not installed next to the interpreter"
    assert subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.startswith("xtts-qa ")


def _summary(folder: Path) -> dict:
    (run_folder,) = [p for p in folder.iterdir() if p.is_dir()]
    return json.loads((run_folder / "summary.json").read_text())


def test_several_targets_globs_and_record(family, capsys, tmp_path) -> None:
    fam, targets = family
    seq = Path(targets["sequential-broken-dvae"])
    dotted = str(seq / ".." / seq.name)  # normalised to .../sequential-broken-dvae
    pattern = str(Path(targets["merge-weights-1.2"]).parent / "merge-weights-*")
    reports = tmp_path / "runs"
    code = main(
        [
            "check",
            str(targets["finetune"]),
            dotted,
            pattern,
            "--base",
            str(fam.base.folder),
            "--intent",
            "finetune",
            "--select",
            "XQ401,XQ901",
            "--report-dir",
            str(reports),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 1
    assert f"xtts-qa check {seq}  (base: " in out and ".." not in out
    assert "UNHEALTHY: 4 checkpoints: 2 healthy, 2 unhealthy (fail on error); 2 errors, 0 warnings, 0 notes" in out
    # without a terminal, progress is a plain line with done/total, elapsed and ETA
    assert "check: 4/4 checkpoints (100%), elapsed" in err and "ETA" in err
    summary = _summary(reports)
    assert summary["source"] == "cli" and summary["exit_code"] == code
    labels = [c["checkpoint"] for c in summary["checks"]]
    assert labels == ["finetune", "sequential-broken-dvae", "merge-weights-0.6-0.4", "merge-weights-1.2"]
    assert {c["checkpoint"]: c["report"]["exit_code"] for c in summary["checks"]}["merge-weights-1.2"] == 1
    stored = HistoryStore(reports / "history.sqlite").get(summary["run_id"])
    assert stored.exit_code == code and stored.source == "cli"


def test_glob_without_match_and_missing_target(family, capsys, tmp_path) -> None:
    fam, targets = family
    code, out, err = run(capsys, "check", str(tmp_path / "nothing-*.pth"))
    assert code == 2 and err.count("\n") == 1 and "nothing-*.pth: matches no file" in err
    assert not (tmp_path / "reports").exists(), "nothing was checked, nothing recorded"
    code, out, err = run(
        capsys, "check", str(targets["sequential-broken-dvae"]), str(tmp_path / "gone"), "--select", "XQ401"
    )
    assert code == 2, "a target that cannot be checked makes the run exit 2"
    assert "xtts-qa check " + str(targets["sequential-broken-dvae"]) in out  # the other target is still reported
    assert "CANNOT CHECK: " + str(tmp_path / "gone") + ": does not exist" in out
    assert "2 checkpoints: 1 healthy, 0 unhealthy, 1 not checked" in out
    summary = _summary(tmp_path / "reports")  # the run record says the same
    assert summary["exit_code"] == 2 and summary["outcome"] == "inconclusive"
    gone = {c["checkpoint"]: c["report"] for c in summary["checks"]}["gone"]
    assert gone["unreadable"] is True and "does not exist" in gone["provenance"]["error"]


def test_fail_on_and_baseline(family, capsys, tmp_path) -> None:
    from xtts_qa.baseline import Baseline

    _, targets = family
    target = str(targets["sequential-broken-dvae"])  # XQ401 is a note for inference
    code, out, _ = run(capsys, "check", target, "--select", "XQ401", "--fail-on", "info", "--report-dir", "r")
    assert code == 1 and "verdict under this policy: UNHEALTHY (1 finding at or above info)" in out
    summary = _summary(tmp_path / "r")
    assert summary["exit_code"] == 1 and summary["policy"]["fail_on"] == "info"
    baseline = Baseline.from_record(load_record(tmp_path / "r" / summary["run_id"])).write(tmp_path / "accepted.json")
    code, out, _ = run(
        capsys, "check", target, "--select", "XQ401", "--fail-on", "info", "--baseline", str(baseline), "--no-record"
    )
    assert code == 0 and "accepted by the baseline: XQ401" in out
    assert run(capsys, "check", target, "--select", "XQ401", "--fail-on", "warning", "--no-record")[0] == 0
    code, _, err = run(capsys, "check", target, "--baseline", str(tmp_path / "none.json"), "--no-record")
    assert code == 2 and "none.json: does not exist" in err


def test_quiet_and_verbose_after_the_subcommand() -> None:
    parser = build_parser()
    assert parser.parse_args(["check", "x", "-q"]).quiet is True
    assert parser.parse_args(["-q", "check", "x"]).quiet is True  # not undone by the sub-command's default
    assert parser.parse_args(["check", "x"]).quiet is False
    assert parser.parse_args(["rules", "-v"]).verbose is True
    assert parser.parse_args(["-v", "check", "x"]).verbose is True
    assert parser.parse_args(["sweep", "x", "-q"]).quiet is True


def test_help_on_every_subcommand_and_option() -> None:
    missing: list[str] = []

    def walk(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
        names = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, command in action.choices.items():
                    names.append(f"{prefix}{name}")
                    if not (command.description or "").strip():
                        missing.append(f"{prefix}{name}: no description")
                    names += walk(command, f"{prefix}{name} ")
            elif not action.help:
                missing.append(
                    f"{prefix.strip() or 'xtts-qa'} {'/'.join(action.option_strings) or action.dest}: no help"
                )
        return names

    commands = walk(build_parser(), "")
    assert {"check", "rules", "rule", "eval", "sweep", "demo", "gate"} <= set(commands)
    assert not missing, missing


def test_demo_rejects_unknown_scenario(capsys) -> None:
    code, out, err = run(capsys, "demo", "--scenario", "nope", "--no-eval")
    assert code == 2 and "unknown scenario 'nope'" in err and "sequential-broken-dvae" in err
    assert "as catalogued" not in out


def test_progress_lines_without_a_tty() -> None:
    stream = io.StringIO()
    ticks = iter(float(t) for t in range(1000))
    bar: Progress[None] = Progress(
        total=40, desc="synthesis", unit="clip", file=stream, interval=1000, clock=lambda: next(ticks)
    )
    assert bar.mode == "lines", "a StringIO is no terminal"
    for _ in range(40):
        bar.update(1)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("synthesis: 0/40 clips (0%)")
    assert len(lines) == 1 + 10, lines  # the first line, then one per 4 clips (a tenth)
    assert lines[-1].startswith("synthesis: 40/40 clips (100%), elapsed") and lines[-1].endswith("ETA 0:00:00")
    assert "synthesis: 20/40 clips (50%)" in stream.getvalue()
    # a callback (the pytest plugin's terminal reporter) instead of a stream, iterating
    seen: list[str] = []
    assert list(progress(["a", "b", "c"], "asr", "checkpoint", callback=seen.append, interval=0)) == ["a", "b", "c"]
    assert seen[0] == "asr: 0/3 checkpoints (0%), elapsed 0:00:00, ETA ?" and seen[-1].startswith(
        "asr: 3/3 checkpoints"
    )
    assert progress(3, "x", enabled=False, file=stream).mode == "off"


def test_progress_heartbeat_while_an_item_runs() -> None:
    import time

    seen: list[str] = []
    with progress(2, "synthesis", "clip", callback=seen.append, interval=0.2):
        time.sleep(1.0)  # one slow item: lines keep coming (CI no-output timeouts)
    assert len([line for line in seen if line.startswith("synthesis: 0/2 clips")]) >= 3


def test_plurals() -> None:
    assert (
        plural(1, "note") == "1 note" and plural(2, "note") == "2 notes" and plural(0, "checkpoint") == "0 checkpoints"
    )
    assert (
        plural(1, "checkpoint") == "1 checkpoint"
        and plural(3, "entry") == "3 entries"
        and plural(2, "pass") == "2 passes"
    )
    assert format_duration(3725) == "1:02:05" and format_duration(float("nan")) == "?"


@pytest.mark.slow
def test_eval_files_a_run_record_where_the_settings_say(tmp_path, capsys) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.xtts_qa]\nreport_dir = "qa/runs"\n')
    argv = ["-q", "eval", "espeak", "--backend", "command", "--limit", "2", "--no-language-id", "--label", "ci-42"]
    code = main(argv)
    out = capsys.readouterr().out
    (folder,) = [p for p in (tmp_path / "qa" / "runs").iterdir() if p.is_dir()]
    summary = json.loads((folder / "summary.json").read_text())
    assert code == summary["exit_code"] == 0, out
    assert summary["source"] == "cli" and summary["label"] == "ci-42" and len(summary["evals"]) == 1
    assert (folder / "report.html").is_file() and len((folder / "sentences.jsonl").read_text().splitlines()) == 2
    history = HistoryStore(tmp_path / "qa" / "runs" / "history.sqlite")
    assert history.count() == 1 and history.get(summary["run_id"]).evals[0].suite == "smoke-en"
    assert f"run record: {folder}" not in out  # -q: no extra lines
    assert main([*argv, "--no-record"]) == 0
    assert len([p for p in (tmp_path / "qa" / "runs").iterdir() if p.is_dir()]) == 1


def test_a_record_that_cannot_be_written_warns_and_keeps_the_verdict(family, capsys, caplog, tmp_path) -> None:
    _, targets = family
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    target = str(targets["sequential-broken-dvae"])
    code, out, err = run(
        capsys, "check", target, "--select", "XQ401", "--fail-on", "info", "--report-dir", str(blocker)
    )
    assert code == 1 and "XQ401" in out
    warned = err + caplog.text  # the warning goes to stderr (or to pytest's log capture when it owns logging)
    assert "run record not written to " + str(blocker) in warned and blocker.read_text() == "not a folder"
