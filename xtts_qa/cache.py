"""Where xtts_qa keeps generated things (architectures, demo models, audio): never inside a user's model folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """Return (and create) a folder under the xtts_qa cache.

    ``XTTS_QA_CACHE`` wins; otherwise ``$XDG_CACHE_HOME/xtts_qa`` or ``~/.cache/xtts_qa``.
    """
    root = os.environ.get("XTTS_QA_CACHE")
    if root:
        base = Path(root)
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xtts_qa"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def link_or_copy(src: Path, dst: Path) -> Path:
    """Put ``src`` at ``dst`` as a hard link (no extra disk for unchanged files), else a copy; replaces ``dst``."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
    return dst
