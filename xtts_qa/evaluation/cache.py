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
from pathlib import Path
from typing import Any

from xtts_qa.cache import atomic_write_bytes, cache_dir, file_digest  # noqa: F401 (re-exported)

log = logging.getLogger("xtts_qa")

__all__ = ["EvalCache", "file_digest", "key_of", "atomic_write_bytes"]



def key_of(*parts: Any) -> str:
    """A stable hash of JSON-serialisable parts (dict order does not matter)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()


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
