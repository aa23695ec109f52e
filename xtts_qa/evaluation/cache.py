"""A content-addressed cache for synthesised audio, transcripts and speaker embeddings.

Keys are hashes of everything that determines a value (checkpoint content, text, speaker, language, seed and
settings for audio; audio content, ASR model and settings for transcripts), so a rerun or a base model already
evaluated costs nothing and a changed checkpoint can never hit a stale entry. Every write goes to a temporary
file in the same folder and is moved into place with :func:`os.replace`, so concurrent workers never leave a
half-written entry behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from xtts_qa.cache import cache_dir

log = logging.getLogger("xtts_qa")

__all__ = ["EvalCache", "file_digest", "key_of", "atomic_write_bytes"]

_CHUNK = 1 << 22
_memo_lock = threading.Lock()
_memo: dict[tuple[str, int, int], str] = {}


def key_of(*parts: Any) -> str:
    """A stable hash of JSON-serialisable parts (dict order does not matter)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()


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
    """blake2b of a file's content, streamed; memoised by (path, size, mtime_ns) in memory and on disk.

    A file rewritten in place changes its size or mtime, so the memo never returns a stale digest.
    """
    path = Path(path).resolve()
    stat = path.stat()
    memo_key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _memo_lock:
        if memo_key in _memo:
            return _memo[memo_key]
    disk = cache_dir("eval", "digests") / f"{key_of(*memo_key)}.txt"
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


class EvalCache:
    """Audio, transcripts and embeddings under one root (default ``cache_dir("eval")``, which honours XTTS_QA_CACHE).

    Attributes:
        root: the cache folder.
        enabled: False makes every lookup miss and every store a no-op (``--no-cache``).
    """

    def __init__(self, root: Path | None = None, *, enabled: bool = True) -> None:
        self.root = Path(root) if root is not None else cache_dir("eval")
        self.enabled = enabled

    def _path(self, kind: str, key: str, suffix: str) -> Path:
        return self.root / kind / key[:2] / f"{key}{suffix}"

    def audio_path(self, key: str) -> Path:
        """Where the wav for ``key`` lives (whether or not it exists yet)."""
        return self._path("audio", key, ".wav")

    def get_audio(self, key: str) -> tuple[Path, dict[str, Any]] | None:
        """(wav path, metadata) of a cached clip, or None."""
        if not self.enabled:
            return None
        wav, meta = self.audio_path(key), self._path("audio", key, ".json")
        if wav.is_file() and meta.is_file():
            try:
                return wav, json.loads(meta.read_text())
            except (OSError, json.JSONDecodeError):
                return None
        return None

    def put_audio(self, key: str, wav: bytes, meta: dict[str, Any]) -> Path:
        """Store a wav file's bytes and its metadata (the wav first, so metadata only ever points at a complete
        file). With the cache disabled the wav is still written (later stages read it) but never found again."""
        path = self.audio_path(key)
        atomic_write_bytes(path, wav)
        if self.enabled:
            atomic_write_bytes(self._path("audio", key, ".json"), json.dumps(meta).encode())
        return path

    def get_json(self, kind: str, key: str) -> Any:
        if not self.enabled:
            return None
        path = self._path(kind, key, ".json")
        try:
            return json.loads(path.read_text()) if path.is_file() else None
        except (OSError, json.JSONDecodeError):
            return None

    def put_json(self, kind: str, key: str, value: Any) -> None:
        if self.enabled:
            atomic_write_bytes(self._path(kind, key, ".json"), json.dumps(value, ensure_ascii=False).encode())
