"""Provenance of a run: the environment it ran in and content hashes of the checkpoints it judged.

Hashes are cached by (path, size, mtime) under the xtts_qa cache so a 1.87 GB model.pth is read once; the cache
file is replaced atomically, so several processes (pytest-xdist workers, parallel CI jobs) can share it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

from xtts_qa.cache import cache_dir
from xtts_qa.checkpoint import ROLES

__all__ = ["environment", "content_hash", "file_hash"]

_CHUNK = 1 << 20


def environment(device: str | None = None) -> dict[str, Any]:
    """Package versions, Python, platform, torch and CUDA: what a verdict depends on besides the checkpoint."""
    from xtts_qa.engine import versions

    env: dict[str, Any] = {"versions": versions(), "python": sys.version.split()[0], "platform": platform.platform()}
    try:
        import torch

        env["torch"] = torch.__version__
        env["cuda"] = torch.version.cuda
        env["cuda_available"] = bool(torch.cuda.is_available())
        env["cuda_devices"] = torch.cuda.device_count() if env["cuda_available"] else 0
    except Exception as exc:  # provenance must never break a run
        env["torch"] = f"unavailable: {type(exc).__name__}"
    if device is not None:
        env["device"] = device
    return env


def _cache_path() -> Path:
    return cache_dir("hashes") / "sha256.json"


def _read_cache() -> dict[str, str]:
    try:
        return dict(json.loads(_cache_path().read_text()))
    except (OSError, ValueError):
        return {}


def _write_cache(entries: dict[str, str]) -> None:
    path = _cache_path()
    merged = {**_read_cache(), **entries}  # keep what other processes added meanwhile
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".sha256-", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(merged, fh)
    os.replace(tmp, path)


def file_hash(path: str | Path) -> str:
    """sha256 of one file (hex), cached by path, size and modification time."""
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    cached = _read_cache().get(key)
    if cached:
        return cached
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    value = digest.hexdigest()
    try:
        _write_cache({key: value})
    except OSError:
        pass  # a read-only cache only costs speed
    return value


def content_hash(target: str | Path | None) -> str | None:
    """A short content hash of a model folder (its role files) or of a single checkpoint file.

    Two folders with the same files (by content) get the same hash, wherever they live.
    """
    if target is None:
        return None
    target = Path(target)
    if not target.exists():
        return None
    if target.is_file():
        return file_hash(target)[:16]
    digest = hashlib.sha256()
    for role, name in sorted(ROLES.items()):
        candidates = [target / name] if role != "model" else [target / n for n in ("model.pth", "best_model.pth")]
        for path in candidates:
            if path.is_file():
                digest.update(f"{role}:{file_hash(path)}\n".encode())
                break
    return digest.hexdigest()[:16]
