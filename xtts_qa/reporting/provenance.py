"""Provenance of a run: the environment it ran in and content hashes of the checkpoints it judged.

File hashes come from :func:`xtts_qa.cache.file_digest` (memoised by path, size and mtime, shared with the
evaluation cache), so a 1.87 GB model.pth is read once per content.
"""

from __future__ import annotations

import hashlib
import platform
import sys
from pathlib import Path
from typing import Any

from xtts_qa.cache import file_digest
from xtts_qa.checkpoint import locate_files
from xtts_qa.versions import package_versions

__all__ = ["environment", "content_hash"]


def environment(device: str | None = None) -> dict[str, Any]:
    """What a verdict depends on besides the checkpoint: package versions (:func:`xtts_qa.versions.package_versions`,
    the one list) plus what only the running process knows: the platform, CUDA and the device."""
    env: dict[str, Any] = {
        "versions": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
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


def content_hash(target: str | Path | None) -> str | None:
    """A short content hash of a model folder (its role files) or of a single checkpoint file.

    The files are the ones the check reads (:func:`xtts_qa.checkpoint.locate_files`: model.pth, best_model.pth or
    the newest checkpoint_N.pth, and the support files), so two folders with the same files (by content) get the
    same hash, wherever they live.
    """
    if target is None:
        return None
    target = Path(target)
    if not target.exists():
        return None
    if target.is_file():
        return file_digest(target)[:16]
    digest = hashlib.sha256()
    try:
        _, paths = locate_files(target)
    except Exception:
        return None
    for role, path in sorted(paths.items()):
        if path.is_file():
            digest.update(f"{role}:{file_digest(path)}\n".encode())
    return digest.hexdigest()[:16]
