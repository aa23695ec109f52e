"""The package exports its public API, documented, without importing torch on ``import xtts_qa``."""

from __future__ import annotations

import json
import subprocess
import sys

import xtts_qa


def test_every_public_name_resolves_and_is_documented() -> None:
    missing_docs = []
    for name in xtts_qa.__all__:
        if name == "__version__":
            continue
        value = getattr(xtts_qa, name)
        if not (getattr(value, "__doc__", None) or "").strip():
            missing_docs.append(name)
    assert missing_docs == []
    assert xtts_qa.evaluate.__name__ == "run_eval"
    assert "check" in dir(xtts_qa)


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        xtts_qa.no_such_name  # noqa: B018
    except AttributeError as e:
        assert "no_such_name" in str(e)
    else:
        raise AssertionError("an unknown name resolved")


def test_import_is_light() -> None:
    code = (
        "import sys, json, xtts_qa; print(json.dumps(sorted(m for m in ('torch', 'TTS', 'numpy') if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


def test_the_exported_check_runs(tmp_path) -> None:
    report = xtts_qa.check(tmp_path)  # an empty folder: a clear verdict, not a crash
    assert isinstance(report, xtts_qa.CheckReport)
    assert report.exit_code == 2
    assert any(f.severity is xtts_qa.Severity.ERROR for f in report.findings)


def test_all_lists_exactly_the_exports() -> None:
    assert sorted(xtts_qa.__all__) == sorted(["__version__", *xtts_qa._EXPORTS])
