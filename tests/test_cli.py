"""The xtts-qa command line: exit codes, JSON, rule docs, selection, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from xtts_qa.cli import main
from xtts_qa.results import SCHEMA_VERSION
from xtts_qa.rules import registry


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["-q", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_exit_codes(family, capsys) -> None:
    fam, targets = family
    base = str(fam.base.folder)
    assert run(capsys, "check", str(targets["finetune"]), "--base", base)[0] == 0
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
