"""``[tool.xtts_qa]`` in pyproject.toml: parsing, paths relative to the file, errors naming the key, and the
command line winning over the file (through the real CLI)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from xtts_qa.cli import build_parser, main
from xtts_qa.errors import InputError
from xtts_qa.settings import Settings, find_pyproject, load_settings


def write(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pyproject.toml"
    path.write_text('[project]\nname = "voice"\n\n' + body)
    return path


def test_defaults_without_a_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    pyproject = write(tmp_path, "")
    settings = load_settings(tmp_path)
    assert settings == Settings(source=pyproject)
    assert settings.fail_on == "error" and settings.engine == "local" and settings.ray_address is None


def test_every_key_and_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "ray://env:10001")
    pyproject = write(
        tmp_path / "repo",
        """
[tool.xtts_qa]
base = "models/base"
intent = "finetune"
select = ["XQ4", "frozen"]
ignore = ["XQ503"]
fail-on = "warning"
baseline = "qa/accepted.json"
history = "/abs/history.sqlite"
report_dir = "qa/reports"
format = "sarif"
engine = "ray"
suites = "smoke-en"
gates = ["wer_delta <= 0.02"]
checkpoints = ["runs/*/checkpoint_*.pth"]
device = "cpu"
strict = true
""",
    )
    sub = tmp_path / "repo" / "src" / "deep"
    sub.mkdir(parents=True)
    assert find_pyproject(sub) == pyproject
    s = load_settings(sub)  # walks up from a sub-folder; paths stay relative to the file's folder
    root = pyproject.parent.resolve()
    assert s.source == pyproject and s.base == root / "models/base" and s.baseline == root / "qa/accepted.json"
    assert s.report_dir == root / "qa/reports" and s.history == Path("/abs/history.sqlite")
    assert s.select == ("XQ4", "frozen") and s.ignore == ("XQ503",) and s.suites == ("smoke-en",)
    assert s.fail_on == "warning" and s.intent == "finetune" and s.format == "sarif" and s.strict is True
    assert s.engine == "ray" and s.ray_address == "ray://env:10001" and s.device == "cpu"
    assert s.checkpoints == (str(root / "runs/*/checkpoint_*.pth"),) and s.gates == ("wer_delta <= 0.02",)


def test_merged_command_line_wins(tmp_path: Path) -> None:
    write(tmp_path, '[tool.xtts_qa]\nfail_on = "warning"\nselect = ["XQ4"]\nray_address = "ray://file:1"\n')
    s = load_settings(tmp_path)
    merged = s.merged(fail_on="error", select=(), ignore=["XQ401"], base=None, ray_address="ray://cli:2")
    assert merged.fail_on == "error" and merged.select == ("XQ4",) and merged.ignore == ("XQ401",)
    assert merged.ray_address == "ray://cli:2" and merged.base is None and merged.source == s.source
    assert s.fail_on == "warning", "merged returns a copy"
    with pytest.raises(InputError, match="fail_on = 'never' is not one of error, warning, info"):
        s.merged(fail_on="never")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('failon = "warning"', "unknown key 'failon'"),
        ("fail_on = 1", "fail_on must be a string"),
        ('engine = "spark"', "engine = 'spark' is not one of local, ray"),
        ('select = "XQ4, 5"\nstrict = "yes"', "strict must be true or false"),
        ("select = [1, 2]", "select must be a list of strings"),
        ('base = ""', "base must be a non-empty path string"),
    ],
)
def test_bad_values_name_the_file_and_key(tmp_path: Path, body: str, expected: str) -> None:
    pyproject = write(tmp_path, "[tool.xtts_qa]\n" + body + "\n")
    with pytest.raises(InputError) as info:
        load_settings(tmp_path)
    assert info.value.path == pyproject and expected in str(info.value) and info.value.fix


def test_invalid_toml(tmp_path: Path) -> None:
    write(tmp_path, "[tool.xtts_qa\n")
    with pytest.raises(InputError, match="is not valid TOML"):
        load_settings(tmp_path)


def test_cli_reports_a_bad_key_in_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    write(tmp_path, '[tool.xtts_qa]\nfial_on = "warning"\n')
    monkeypatch.chdir(tmp_path)
    assert main(["check", "model"]) == 2  # the settings are read before any command runs
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pyproject.toml: [tool.xtts_qa] has an unknown key 'fial_on'" in err


def test_cli_settings_precedence(family, tmp_path: Path, monkeypatch, capsys) -> None:
    _, targets = family
    target = str(targets["sequential-broken-dvae"])  # XQ401 is a note for inference
    write(
        tmp_path,
        f'[tool.xtts_qa]\nfail_on = "info"\nselect = ["XQ401"]\nreport_dir = "qa/runs"\ncheckpoints = ["{target}"]\n',
    )
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    monkeypatch.delenv("XTTS_QA_RECORD", raising=False)
    # the file's fail_on = "info" fails the note; the file's report_dir (relative to pyproject.toml) gets the record
    assert main(["-q", "check", target]) == 1
    (run,) = [p for p in (tmp_path / "qa" / "runs").iterdir() if p.is_dir()]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["policy"]["fail_on"] == "info" and summary["exit_code"] == 1
    assert [r["code"] for r in summary["checks"][0]["report"]["results"]] == ["XQ401"]
    assert summary["provenance"]["options"]["settings"] == str((tmp_path / "pyproject.toml").resolve())
    # the command line wins
    assert main(["-q", "check", target, "--fail-on", "error", "--no-record"]) == 0
    # no target on the command line: the file's checkpoints
    assert main(["-q", "check", "--no-record"]) == 1
    assert "xtts-qa check " + target in capsys.readouterr().out


def test_check_without_any_target_is_a_usage_error(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["check"]) == 2
    assert "check needs at least one target" in capsys.readouterr().err


def test_sweep_reads_engine_and_ray_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from xtts_qa.sweep import sweep_options_from_args

    write(tmp_path, '[tool.xtts_qa]\nengine = "ray"\nray_address = "ray://head:10001"\nsuites = ["multilingual"]\n')
    monkeypatch.chdir(tmp_path)
    args: argparse.Namespace = build_parser().parse_args(["sweep", "ckpt", "--no-record"])
    args.settings = load_settings()
    options = sweep_options_from_args(args)
    assert options.engine == "ray" and options.ray_address == "ray://head:10001"  # type: ignore[attr-defined]
    assert options.suites == ("multilingual",)  # type: ignore[attr-defined]
    args = build_parser().parse_args(["sweep", "ckpt", "--engine", "local", "--no-record"])
    args.settings = load_settings()
    assert sweep_options_from_args(args).engine == "local"  # type: ignore[attr-defined]
