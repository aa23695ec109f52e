"""Where xtts_qa keeps generated things (architectures, demo models, audio): never inside a user's model folder."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from pathlib import Path

_CHUNK = 1 << 22
_memo_lock = threading.Lock()
_memo: dict[tuple[str, int, int, int, int, int], str] = {}
#: bump when the memo key or the digest changes, so old on-disk memos are never read
_DIGEST_FORMAT = 2


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


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and :func:`os.replace` (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_digest(path: str | Path) -> str:
    """blake2b of a file's content, streamed; memoised in memory and on disk by the file's identity.

    The one content hash of checkpoints, references and programs: evaluation cache keys and report provenance
    both use it, so a 1.87 GB model.pth is read once per content.

    The memo key is (path, size, mtime_ns, device, inode, ctime_ns). Every XTTS-v2 model.pth has the same size,
    and ``cp -p`` / ``rsync -a`` / ``touch -r`` restore the mtime, so size and mtime alone can serve a swapped
    file the old digest. ``rsync`` and atomic saves give the new file a new inode; writing into the old file
    updates its ctime, which no user-level tool can set back. Hashing always instead costs about 4.7 s per GB on this
    2-core machine (``benchmarks/bench_digest.py``), on every check of an unchanged model.
    """
    path = Path(path).resolve()
    stat = path.stat()
    memo_key = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_dev, stat.st_ino, stat.st_ctime_ns)
    with _memo_lock:
        if memo_key in _memo:
            return _memo[memo_key]
    name = hashlib.blake2b(repr((_DIGEST_FORMAT, memo_key)).encode(), digest_size=16).hexdigest()
    disk = cache_dir("digests") / f"{name}.txt"
    if disk.is_file():
        digest = disk.read_text().strip()
    else:
        h = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
        digest = h.hexdigest()
        atomic_write_bytes(disk, digest.encode())
    with _memo_lock:
        _memo[memo_key] = digest
    return digest
