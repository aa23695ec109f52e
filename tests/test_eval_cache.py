"""The content-addressed cache: keys, digests and concurrent writes."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from xtts_qa.evaluation.artifact_cache import EvalCache, atomic_write_bytes, file_digest, key_of


def test_key_depends_on_every_part_and_not_on_dict_order() -> None:
    base = key_of(
        "audio", {"files": {"model": "abc"}, "options": {"top_k": 50, "temperature": 0.75}}, "Hello.", "en", 1
    )
    same = key_of(
        "audio", {"options": {"temperature": 0.75, "top_k": 50}, "files": {"model": "abc"}}, "Hello.", "en", 1
    )
    assert base == same
    variants = [
        key_of("audio", {"files": {"model": "abd"}, "options": {"top_k": 50, "temperature": 0.75}}, "Hello.", "en", 1),
        key_of("audio", {"files": {"model": "abc"}, "options": {"top_k": 51, "temperature": 0.75}}, "Hello.", "en", 1),
        key_of("audio", {"files": {"model": "abc"}, "options": {"top_k": 50, "temperature": 0.75}}, "Hello!", "en", 1),
        key_of("audio", {"files": {"model": "abc"}, "options": {"top_k": 50, "temperature": 0.75}}, "Hello.", "de", 1),
        key_of("audio", {"files": {"model": "abc"}, "options": {"top_k": 50, "temperature": 0.75}}, "Hello.", "en", 2),
    ]
    assert len({base, *variants}) == 6


def test_file_digest_follows_content_changes(tmp_path: Path) -> None:
    f = tmp_path / "model.pth"
    f.write_bytes(b"a" * 1000)
    first = file_digest(f)
    assert file_digest(f) == first
    f.write_bytes(b"b" * 1000)  # same size: the new mtime must invalidate the memo
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 1_000_000))
    assert file_digest(f) != first
    g = tmp_path / "copy.pth"
    g.write_bytes(b"b" * 1000)
    assert file_digest(g) == file_digest(f)  # content-addressed: the path does not matter


def test_audio_round_trip_and_disabled_cache(tmp_path: Path) -> None:
    cache = EvalCache(tmp_path)
    assert cache.get_audio("k1") is None
    cache.put_audio("k1", b"RIFF....", {"digest": "d"})
    path, meta = cache.get_audio("k1")
    assert path.read_bytes() == b"RIFF...." and meta == {"digest": "d"}
    off = EvalCache(tmp_path, enabled=False)
    assert off.get_audio("k1") is None
    off.put_json("text", "k2", {"text": "x"})
    assert cache.get_json("text", "k2") is None


def test_concurrent_writers_never_leave_a_torn_file(tmp_path: Path) -> None:
    target = tmp_path / "entry.json"
    payloads = [json.dumps({"writer": i, "blob": "x" * 200_000}).encode() for i in range(8)]
    errors: list[Exception] = []

    def writer(data: bytes) -> None:
        try:
            for _ in range(10):
                atomic_write_bytes(target, data)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        for _ in range(200):
            if target.exists():
                json.loads(target.read_bytes())  # a torn file would not parse

    threads = [threading.Thread(target=writer, args=(p,)) for p in payloads] + [threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert target.read_bytes() in payloads
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
