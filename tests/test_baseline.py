"""Baseline files of accepted findings: round trip, matching by digest then label, bad files, safe writes, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from plugin_helpers import check_report

from xtts_qa.baseline import BASELINE_KIND, AcceptedFinding, Baseline
from xtts_qa.cli import main
from xtts_qa.errors import InputError
from xtts_qa.reporting import CheckEntry, RunRecord, publish

T0 = "2026-03-01T00:00:00+00:00"


def _record(run_id: str = "20260301T000000-aaaaaa", *, digest: str | None = "d1") -> RunRecord:
    warned = check_report("/models/finetune", errors=1, warnings=1)
    if digest:
        warned["provenance"]["checkpoint_digest"] = digest
    clean = check_report("/models/merged")  # no digest: matched by label
    return RunRecord(run_id, T0, T0, "cli", "", (CheckEntry("finetune", warned), CheckEntry("merged", clean)))


def test_round_trip_and_accepts(tmp_path: Path) -> None:
    baseline = Baseline.from_record(_record())
    assert [(a.checkpoint, a.code, a.checkpoint_digest, a.severity) for a in baseline.accepted] == [
        ("finetune", "XQ401", "d1", "error"),
        ("finetune", "XQ602", "d1", "warning"),
    ]
    path = baseline.write(tmp_path / "qa" / "accepted.json")
    data = json.loads(path.read_text())
    assert data["kind"] == BASELINE_KIND and data["version"] == 1 and data["source_run"] == "20260301T000000-aaaaaa"
    assert data["accepted"][0]["message"] == "dvae.pth keys carry the prefix dvae."  # for the humans who review it
    back = Baseline.load(path)
    assert back.accepted == baseline.accepted and back.path == path
    assert back.accepts("d1", "finetune", "XQ401")
    assert back.accepts("d1", "renamed-folder", "XQ602")  # same content under another label
    assert not back.accepts("d2", "finetune", "XQ401")  # same label, other content: not accepted
    assert not back.accepts(None, "finetune", "XQ401")  # content unknown (no digest): not vouched for by label
    assert not back.accepts("d1", "finetune", "XQ999")
    by_label = Baseline((AcceptedFinding("XQ602", "merged"),))
    assert by_label.accepts(None, "merged", "XQ602") and by_label.accepts("any", "merged", "XQ602")
    assert not by_label.accepts(None, "finetune", "XQ602")
    assert Baseline.from_record(_record(digest=None)).accepted[0].checkpoint_digest is None


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{oops", "not valid JSON (line 1"),
        ("[]", "not an xtts-qa baseline"),
        ('{"kind": "run"}', "not an xtts-qa baseline (kind 'run'"),
        ('{"kind": "xtts-qa-baseline"}', "no valid baseline version"),
        ('{"kind": "xtts-qa-baseline", "version": 9, "accepted": []}', "newer than this xtts-qa reads"),
        ('{"kind": "xtts-qa-baseline", "version": 1}', "no 'accepted' list"),
        ('{"kind": "xtts-qa-baseline", "version": 1, "accepted": [{"checkpoint": "a"}]}', "accepted[0] has no rule"),
        ('{"kind": "xtts-qa-baseline", "version": 1, "accepted": [{"code": "XQ1"}]}', "no 'checkpoint' label"),
        (
            '{"kind": "xtts-qa-baseline", "version": 1, "accepted": [{"code": "XQ1", "checkpoint": "a", '
            '"checkpoint_digest": 5}]}',
            "non-text 'checkpoint_digest'",
        ),
    ],
)
def test_bad_files_name_the_file_and_the_fix(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bl.json"
    path.write_text(content)
    with pytest.raises(InputError) as err:
        Baseline.load(path)
    assert problem in str(err.value) and str(path) in str(err.value) and "Fix:" in str(err.value)


def test_missing_and_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist.*xtts-qa baseline RUN -o FILE"):
        Baseline.load(tmp_path / "nope.json")
    with pytest.raises(InputError, match="is a folder"):
        Baseline.load(tmp_path)


def test_write_never_clobbers_another_file(tmp_path: Path) -> None:
    precious = tmp_path / "notes.json"
    precious.write_text('{"my": "notes"}')
    with pytest.raises(InputError, match="refusing to overwrite"):
        Baseline.from_record(_record()).write(precious)
    assert precious.read_text() == '{"my": "notes"}'
    with pytest.raises(InputError, match="is a folder"):
        Baseline().write(tmp_path)
    path = Baseline.from_record(_record()).write(tmp_path / "bl.json")
    Baseline().write(path)  # an existing baseline is replaced
    assert Baseline.load(path).accepted == ()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left behind


def test_baseline_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history = tmp_path / "h.sqlite"
    record = _record()
    publish(record, tmp_path / "reports", history)
    out = tmp_path / "accepted.json"
    assert main(["-q", "baseline", "latest", "-o", str(out), "--history", str(history)]) == 0
    assert "2 accepted findings from run 20260301T000000-aaaaaa" in capsys.readouterr().out
    loaded = Baseline.load(out)
    assert loaded.source_run == record.run_id and loaded.accepted == Baseline.from_record(record).accepted
    assert {a.code for a in loaded.accepted} == {"XQ401", "XQ602"}
    # the run fails on its error; with the baseline it passes, and with fail_on=warning it still passes
    assert main(["-q", "gate", "--history", str(history)]) == 1
    assert main(["-q", "gate", "--history", str(history), "--baseline", str(out), "--fail-on", "warning"]) == 0
    other = tmp_path / "other.txt"
    other.write_text("keep me")
    assert main(["-q", "baseline", "latest", "-o", str(other), "--history", str(history)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err and other.read_text() == "keep me"
