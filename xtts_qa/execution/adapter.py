"""The one place the execution layer touches the evaluation pipeline.

Everything here goes through the evaluation's public pieces (``runner.make_backend`` and ``run_eval``, the
backends' ``identity()``/``synthesize()``, ``Transcriber``, ``SpeakerEncoder``, ``EvalCache``/``key_of``) and
produces cache entries under the same keys the in-process runner uses, so a sweep fills the very cache
``xtts-qa eval`` reads and the final report is computed by ``run_eval`` itself, from the cache. When the
runner's keys change and these drift, :func:`evaluate_from_cache` notices (cache misses where there should be
none) and says so, instead of silently producing different figures.
"""

from __future__ import annotations

import io
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from xtts_qa.evaluation.artifact_cache import EvalCache, key_of
from xtts_qa.evaluation.references import Reference
from xtts_qa.evaluation.runner import EvalOptions, make_backend, run_eval
from xtts_qa.evaluation.suite import Sentence, Suite

log = logging.getLogger("xtts_qa")

__all__ = [
    "backend_for",
    "audio_key",
    "transcript_key",
    "embedding_key",
    "synthesise_clip",
    "transcript_entry",
    "embed_wav",
    "store_clip",
    "clip_cached",
    "evaluate_from_cache",
]


def backend_for(target: str, options: EvalOptions, cache: EvalCache, *, base: bool) -> Any:
    """The runner's synthesis backend for ``target`` (built without loading the model)."""
    return make_backend(options.backend, target, options, cache, base=base)


def audio_key(identity: dict[str, Any], sentence: Sentence, reference: Reference, seed: int) -> str:
    """The runner's cache key of one synthesised clip."""
    return key_of("audio", identity, sentence.text, sentence.language, sentence.voice, reference.digest, seed)


def transcript_key(audio_digest: str, asr_identity: dict[str, Any], language: str) -> str:
    """The runner's cache key of one transcript."""
    from xtts_qa.evaluation.normalize import base_language

    return key_of("transcript", audio_digest, asr_identity, base_language(language))


def embedding_key(audio_digest: str, speaker_identity: dict[str, Any]) -> str:
    """The runner's cache key of one speaker embedding."""
    return key_of("embedding", audio_digest, speaker_identity)


def synthesise_clip(backend: Any, sentence: Sentence, reference: Reference, seed: int) -> tuple[bytes, dict[str, Any]]:
    """One clip as wav bytes plus the metadata the runner stores beside it (the runner's own function)."""
    from xtts_qa.evaluation.runner import synthesise_clip as runner_clip

    return runner_clip(backend, sentence, reference, seed)


def transcript_entry(transcriber: Any, path: Path, language: str) -> dict[str, Any]:
    """One clip heard by the ASR, as the runner caches it (text, language and Whisper's language identification)."""
    if not hasattr(transcriber, "recognise"):  # an ASR without language identification
        return {"text": transcriber.transcribe(path, language), "language": language}
    out = transcriber.recognise(path, language)
    lid = out.language_id
    return {
        "text": out.text,
        "language": language,
        "language_id": None
        if lid is None
        else {"detected": lid.detected, "detected_p": lid.detected_p, "expected_p": lid.expected_p},
    }


def embed_wav(encoder: Any, wav: bytes) -> list[float] | None:
    """A speaker embedding of wav bytes, rounded as the runner stores it (None: no speech)."""
    import soundfile as sf

    samples, rate = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    vector = encoder.embed(samples.mean(axis=1), rate)
    return None if vector is None else [round(float(v), 7) for v in np.asarray(vector)]


def store_clip(
    cache: EvalCache,
    key: str,
    wav: bytes,
    meta: dict[str, Any],
    transcript: tuple[str, dict[str, Any]],
    embedding: tuple[str, list[float] | None],
) -> Path:
    """Write one clip's audio, transcript and embedding into the cache (the driver is the only caller).

    Args:
        transcript: (cache key, :func:`transcript_entry`).
        embedding: (cache key, vector or None).
    """
    path = cache.put_audio(key, wav, meta)
    t_key, entry = transcript
    cache.put_json("text", t_key, entry)
    e_key, vector = embedding
    cache.put_json("embeddings", e_key, {"vector": vector})
    return path


def clip_cached(
    cache: EvalCache, key: str, asr_identity: dict[str, Any], speaker_identity: dict[str, Any], language: str
) -> bool:
    """True when the clip, its transcript and its embedding are all in the cache."""
    hit = cache.get_audio(key)
    if hit is None:
        return False
    digest = hit[1].get("digest", "")
    return (
        cache.get_json("text", transcript_key(digest, asr_identity, language)) is not None
        and cache.get_json("embeddings", embedding_key(digest, speaker_identity)) is not None
    )


def evaluate_from_cache(candidate: str, base: str | None, suite: Suite, options: EvalOptions) -> Any:
    """``run_eval`` over a filled cache: the report, gates and figures exactly as ``xtts-qa eval`` computes them.

    Clips the sweep did not produce (a drifted key, a unit that was skipped) are computed here, in-process,
    with a warning, so the report is always complete.
    """
    report = run_eval(candidate, base, suite, replace(options, progress=False, use_cache=True))
    counts = report.provenance.get("cache", {})
    missed = int(counts.get("audio_misses", 0)) + int(counts.get("transcript_misses", 0))
    if missed:
        log.warning(
            "sweep: %d clips of %s on %s were not in the cache and were computed on the driver "
            "(the execution adapter's keys may have drifted from the runner's)",
            missed,
            candidate,
            suite.name,
        )
    return report
