"""A content-addressed cache for synthesised audio, transcripts and speaker embeddings.

Keys are hashes of everything that determines a value (checkpoint content, text, speaker, language, seed and
settings for audio; audio content, ASR model and settings for transcripts), so a rerun or a base model already
evaluated costs nothing and a changed checkpoint can never hit a stale entry. Every write goes to a temporary
file in the same folder and is moved into place with :func:`os.replace`, so concurrent workers never leave a
half-written entry behind.

Entries verify themselves: each JSON entry is stored in an envelope with a format version, the key it was stored
under and a checksum of its value, and each kind's value has a known shape (a transcript has a ``text`` string,
an embedding a ``vector`` of numbers or null, audio metadata a ``digest`` string). An entry that fails any of
these (hand-edited, truncated by a full disk, written by an older version) is a miss: it is reported once and
rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from xtts_qa.cache import atomic_write_bytes, cache_dir, file_digest
from xtts_qa.errors import EnvironmentProblem

log = logging.getLogger("xtts_qa")

__all__ = ["EvalCache", "file_digest", "key_of", "atomic_write_bytes"]

_FORMAT = 1
_reported: set[str] = set()


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


#: kind -> the shape every consumer of that kind relies on
_SHAPES: dict[str, Any] = {
    "text": lambda v: (
        isinstance(v, dict)
        and isinstance(v.get("text"), str)
        and (v.get("language_id") is None or isinstance(v.get("language_id"), dict))
    ),
    "embeddings": lambda v: (
        isinstance(v, dict)
        and "vector" in v
        and (v["vector"] is None or (isinstance(v["vector"], list) and all(_is_number(x) for x in v["vector"])))
    ),
    "audio": lambda v: isinstance(v, dict) and isinstance(v.get("digest"), str),
}


def _checksum(value: Any) -> str:
    return hashlib.blake2b(json.dumps(value, sort_keys=True, ensure_ascii=False).encode(), digest_size=16).hexdigest()


def _envelope(key: str, value: Any) -> bytes:
    return json.dumps(
        {"format": _FORMAT, "key": key, "sum": _checksum(value), "value": value}, ensure_ascii=False
    ).encode()


def _report_once(path: Path, why: str) -> None:
    if str(path) not in _reported:
        _reported.add(str(path))
        log.warning("evaluation cache entry %s is invalid (%s); recomputing it", path, why)


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
        if root is None:
            try:
                root = cache_dir("eval")
            except OSError as exc:
                raise EnvironmentProblem(
                    exc.filename or "cache",
                    f"the xtts_qa cache folder cannot be used ({exc.strerror or exc}).",
                    "set XTTS_QA_CACHE to a writable folder.",
                ) from None
        self.root = Path(root)
        self.enabled = enabled

    def _path(self, kind: str, key: str, suffix: str) -> Path:
        return self.root / kind / key[:2] / f"{key}{suffix}"

    def audio_path(self, key: str) -> Path:
        """Where the wav for ``key`` lives (whether or not it exists yet)."""
        return self._path("audio", key, ".wav")

    def _read(self, kind: str, key: str, path: Path) -> Any:
        """The verified value of an entry, or None (absent or invalid: reported once)."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            _report_once(path, exc.strerror or type(exc).__name__)
            return None
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            _report_once(path, "not JSON")
            return None
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            _report_once(path, "unknown format")
            return None
        value = data.get("value")
        if data.get("key") != key:
            _report_once(path, "stored under another key")
            return None
        try:
            intact = data.get("sum") == _checksum(value)
        except (TypeError, ValueError, RecursionError):
            intact = False
        if not intact:
            _report_once(path, "checksum mismatch")
            return None
        shape = _SHAPES.get(kind)
        if shape is not None and not shape(value):
            _report_once(path, f"not a {kind} entry")
            return None
        return value

    def get_audio(self, key: str) -> tuple[Path, dict[str, Any]] | None:
        """(wav path, metadata) of a cached clip, or None."""
        if not self.enabled:
            return None
        wav, meta = self.audio_path(key), self._path("audio", key, ".json")
        if not wav.is_file():
            return None
        value = self._read("audio", key, meta)
        return (wav, value) if value is not None else None

    def put_audio(self, key: str, wav: bytes, meta: dict[str, Any]) -> Path:
        """Store a wav file's bytes and its metadata (the wav first, so metadata only ever points at a complete
        file). With the cache disabled the wav is still written (later stages read it) but never found again."""
        path = self.audio_path(key)
        atomic_write_bytes(path, wav)
        if self.enabled:
            atomic_write_bytes(self._path("audio", key, ".json"), _envelope(key, meta))
        return path

    def get_json(self, kind: str, key: str) -> Any:
        """A verified cached value of ``kind`` (``text``, ``embeddings``, ...), or None."""
        if not self.enabled:
            return None
        return self._read(kind, key, self._path(kind, key, ".json"))

    def put_json(self, kind: str, key: str, value: Any) -> None:
        if self.enabled:
            atomic_write_bytes(self._path(kind, key, ".json"), _envelope(key, value))
