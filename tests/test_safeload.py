"""Bad input files: each gets a one-line error naming the file and the likely cause; no pickle ever runs."""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import zipfile
from pathlib import Path

import pytest
import torch

from xtts_qa.checkpoint import open_bundle
from xtts_qa.engine import check
from xtts_qa.errors import InputError
from xtts_qa.safeload import PickledConfig, load_json, load_torch


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        (b"", "empty"),
        (random.Random(0).randbytes(4096), "cannot be read as a PyTorch checkpoint"),
        (b"PK\x03\x04" + random.Random(1).randbytes(100), "truncated or corrupt zip"),
    ],
    ids=["empty", "random-bytes", "broken-zip-header"],
)
def test_bad_bytes(tmp_path: Path, content: bytes, expect: str) -> None:
    path = tmp_path / "model.pth"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        load_torch(path)
    assert expect in str(err.value) and str(path) in str(err.value) and err.value.fix


def test_truncated_archive(tmp_path: Path) -> None:
    full = tmp_path / "full.pth"
    torch.save({"model": {"a": torch.ones(1000)}}, full)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(InputError, match="truncated|corrupt"):
        load_torch(cut)


def test_missing_and_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        load_torch(tmp_path / "nope.pth")
    with pytest.raises(InputError, match="folder"):
        load_torch(tmp_path)


def test_code_pickle_refused_and_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    path = tmp_path / "model.pth"
    torch.save({"model": {"a": torch.ones(1)}, "x": _Payload(marker)}, path, pickle_module=pickle)
    with pytest.raises(InputError) as err:
        load_torch(path)
    assert "refused" in err.value.problem and "system" in err.value.problem
    assert not marker.exists()


def test_legacy_format_loads_without_mmap(tmp_path: Path) -> None:
    path = tmp_path / "old.pth"
    torch.save({"model": {"a": torch.arange(3.0)}}, path, _use_new_zipfile_serialization=False)
    assert torch.equal(load_torch(path)["model"]["a"], torch.arange(3.0))


def test_pickled_coqui_config_needs_no_coqui_code(tmp_path: Path, family) -> None:
    """Released XTTS files pickle XttsConfig; it is read into an inert stand-in, and used as the config."""
    from TTS.tts.configs.xtts_config import XttsConfig

    fam, _ = family
    config = XttsConfig()
    config.load_json(str(fam.base.config))
    folder = tmp_path / "released"
    shutil.copytree(fam.base.folder, folder)
    state = load_torch(fam.base.model, mmap=False)["model"]
    (folder / "model.pth").unlink()
    torch.save({"model": state, "config": config}, folder / "model.pth")
    raw = load_torch(folder / "model.pth")
    assert isinstance(raw["config"], PickledConfig)
    (folder / "config.json").unlink()
    bundle = open_bundle(folder)
    assert bundle.config_source and "embedded" in bundle.config_source
    assert bundle.model_args["gpt_layers"] == 1
    report = check(folder)
    # coqui-tts (and every loader built on it) needs config.json on disk; the embedded copy keeps the rules running
    assert report.exit_code == 1 and {"XQ002", "XQ702"} <= report.codes() <= {"XQ002", "XQ007", "XQ701", "XQ702"}
    assert report.loads_in_coqui is False
    assert {r.code for r in report.results if r.status.value == "passed"} >= {"XQ101", "XQ102", "XQ103", "XQ201"}


@pytest.mark.parametrize(
    ("text", "expect"),
    [("{not json", "not valid JSON (line 1"), ("\udcff", "not UTF-8")],
    ids=["syntax", "binary"],
)
def test_bad_json(tmp_path: Path, text: str, expect: str) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(InputError, match=expect.replace("(", r"\(")):
        load_json(path)


def test_broken_support_files_do_not_stop_the_report(family, tmp_path: Path) -> None:
    fam, targets = family
    folder = shutil.copytree(targets["finetune"], tmp_path / "m")
    for name, data in {
        "vocab.json": b"[1, 2",
        "speakers_xtts.pth": random.Random(2).randbytes(64),
        "dvae.pth": b"",
    }.items():
        (folder / name).unlink()
        (folder / name).write_bytes(data)
    report = check(folder, fam.base.folder)
    assert report.exit_code == 2
    unreadable = [f for f in report.findings if f.code == "XQ001"]
    assert {Path(f.file).name for f in unreadable} == {"vocab.json", "speakers_xtts.pth", "dvae.pth"}
    ran = {r.code for r in report.results if r.status.value != "skipped"}
    assert {"XQ101", "XQ501", "XQ601"} <= ran  # the rest of the report still ran


def test_config_json_not_an_object(family, tmp_path: Path) -> None:
    fam, targets = family
    folder = shutil.copytree(targets["finetune"], tmp_path / "m")
    (folder / "config.json").unlink()
    (folder / "config.json").write_text(json.dumps([1, 2, 3]))
    report = check(folder)
    assert report.exit_code == 2 and "XQ001" in report.codes()


def test_zip_without_pickle(tmp_path: Path) -> None:
    path = tmp_path / "model.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(InputError):
        load_torch(path)
