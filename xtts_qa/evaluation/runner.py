"""Orchestration: suite -> references -> synthesis (candidate, base) -> ASR + speaker embeddings -> metrics -> gates.

Each stage asks the cache first and loads its model only on a miss, so a rerun (or a base model already
evaluated with the same suite, seeds and environment) loads nothing and synthesises nothing. Transcription
runs in a thread pool while synthesis continues, so ASR overlaps the next sentence's generation.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xtts_qa.cache import link_or_copy
from xtts_qa.device import resolve_device
from xtts_qa.errors import UsageError
from xtts_qa.evaluation.artifact_cache import EvalCache, atomic_write_bytes, key_of
from xtts_qa.evaluation.asr import AsrOptions, Transcriber, Transcript
from xtts_qa.evaluation.audio import wav_bytes
from xtts_qa.evaluation.gates import evaluate_gates, metric_values, parse_gates
from xtts_qa.evaluation.metrics import (
    LanguageId,
    SignalLimits,
    SignalStats,
    TextScore,
    clip_flags,
    score_text,
    signal_stats,
)
from xtts_qa.evaluation.normalize import base_language, normaliser_for
from xtts_qa.evaluation.references import Reference, prepare_reference
from xtts_qa.evaluation.registry import FLAGS, GARBLED_WER, SentenceSamples
from xtts_qa.evaluation.results import EvalReport, ModelMetrics, SentenceResult
from xtts_qa.evaluation.similarity import SPEAKER_MODEL, SpeakerEncoder, cosine
from xtts_qa.evaluation.suite import Suite, load_suite
from xtts_qa.evaluation.synth import (
    DEFAULT_COMMAND,
    CommandBackend,
    SynthOptions,
    SynthRequest,
    XttsBackend,
    environment_versions,
)
from xtts_qa.progress import Progress, progress

log = logging.getLogger("xtts_qa")

__all__ = ["EvalOptions", "ClipRecord", "run_eval", "make_backend"]


@dataclass(frozen=True)
class EvalOptions:
    """How to run an evaluation.

    Attributes:
        backend: ``xtts`` (model folders) or ``command`` (a command-line synthesiser).
        command: the command backend's template for the candidate.
        base_command: the template for the base (default: ``command``).
        device: ``auto``, ``cpu`` or ``cuda`` for synthesis and speaker embeddings.
        synth: XTTS generation settings.
        asr: faster-whisper settings.
        gates: gate expressions that override the suite's (same metric) or add to them.
        out_dir: where to copy the audio and write report.json; None keeps the audio in the cache only.
        use_cache: False re-synthesises and re-transcribes everything (nothing is read from the cache).
        cache_root: the cache folder (default ``cache_dir("eval")``, which honours XTTS_QA_CACHE).
        signal: thresholds of the signal checks.
        bootstrap_rounds: resamples for the confidence intervals of difference gates.
        progress: show progress bars on stderr (None: only on a terminal).
        progress_callback: where progress lines go instead of stderr (the pytest plugin's terminal reporter);
            lines every tenth of the clips or 30 s, with elapsed time and ETA.
        limit: evaluate only the first N sentences of the suite.
        strict: inconclusive gates fail the run (exit code 1).
    """

    backend: str = "xtts"
    command: str = DEFAULT_COMMAND
    base_command: str | None = None
    device: str = "auto"
    synth: SynthOptions = field(default_factory=SynthOptions)
    asr: AsrOptions = field(default_factory=AsrOptions)
    gates: tuple[str, ...] = ()
    out_dir: Path | None = None
    use_cache: bool = True
    cache_root: Path | None = None
    signal: SignalLimits = field(default_factory=SignalLimits)
    bootstrap_rounds: int = 2000
    progress: bool | None = None
    progress_callback: Callable[[str], Any] | None = None
    limit: int | None = None
    strict: bool = False


@dataclass
class ClipRecord:
    """One synthesised clip and what was measured on it.

    Attributes:
        sentence_id: the suite sentence.
        path: the wav in the cache.
        digest: hash of the wav bytes (key of its transcript and embedding).
        meta: synthesis time, audio seconds, codes, cap hit, sample rate and :class:`SignalStats` figures.
        cached: True when it came from the cache.
        transcript: filled in by the ASR stage.
        language_id: Whisper's language identification, filled in by the ASR stage.
        embedding: filled in by the speaker stage.
    """

    sentence_id: str
    path: Path
    digest: str
    meta: dict[str, Any]
    cached: bool
    transcript: str = ""
    language_id: LanguageId | None = None
    embedding: np.ndarray | None = None

    @property
    def stats(self) -> SignalStats:
        return SignalStats.from_dict(self.meta["stats"])


def make_backend(kind: str, target: str, options: EvalOptions, cache: EvalCache, *, base: bool = False) -> Any:
    """The synthesis backend for one model.

    Raises:
        UsageError: unknown backend kind.
        InputError: the model folder lacks a file XTTS needs.
    """
    if kind == "xtts":
        return XttsBackend(target, options.synth, options.device, cache)
    if kind == "command":
        return CommandBackend(target, (options.base_command or options.command) if base else options.command)
    raise UsageError(f"unknown backend {kind!r}; use xtts or command.")


class _Progress:
    """The run's progress displays: a tqdm bar on a terminal, plain lines with elapsed time and ETA elsewhere (CI)."""

    def __init__(self, enabled: bool | None, callback: Callable[[str], Any] | None = None) -> None:
        self.enabled = enabled
        self.callback = callback
        self.bars: list[Progress[Any]] = []

    def bar(self, desc: str, total: int) -> Progress[Any]:
        bar: Progress[Any] = progress(total, desc, "clip", enabled=self.enabled, callback=self.callback)
        self.bars.append(bar)
        return bar

    def close(self) -> None:
        for bar in reversed(self.bars):
            bar.close()


def synthesise_clip(backend: Any, sentence: Any, reference: Reference, seed: int) -> tuple[bytes, dict[str, Any]]:
    """Synthesise one clip: its wav bytes and the metadata stored beside it in the cache (digest, timings, signal
    statistics, seed, backend). Used by the local runner and by the execution engines' synthesis workers."""
    out = backend.synthesize(SynthRequest(sentence, reference, seed))
    stats = signal_stats(out.samples, out.sample_rate)
    data = wav_bytes(out.samples, out.sample_rate)
    meta = {
        "digest": hashlib.blake2b(data, digest_size=16).hexdigest(),
        "synth_seconds": out.seconds,
        "audio_seconds": stats.seconds,
        "sample_rate": out.sample_rate,
        "codes": out.codes,
        "cap_hit": out.cap_hit,
        "stats": stats.to_dict(),
        "seed": seed,
        "backend": backend.describe(),
    }
    return data, meta


class _Run:
    """The state of one evaluation (kept out of the public API)."""

    def __init__(self, suite: Suite, options: EvalOptions) -> None:
        self.suite = suite
        self.options = options
        self.cache = EvalCache(options.cache_root, enabled=options.use_cache)
        self.sentences = suite.sentences[: options.limit] if options.limit else suite.sentences
        self.timings = {"synthesis_s": 0.0, "asr_s": 0.0, "similarity_s": 0.0, "model_load_s": 0.0, "audio_s": 0.0}
        self.counts = {"audio_hits": 0, "audio_misses": 0, "transcript_hits": 0, "transcript_misses": 0}
        self.progress = _Progress(options.progress, options.progress_callback)
        self._inflight: dict[str, Future[Transcript]] = {}
        self._lock = threading.Lock()  # counters and timings are updated from the ASR threads too

    def tally(self, counter: str, timing: str | None = None, seconds: float = 0.0) -> None:
        with self._lock:
            self.counts[counter] += 1
            if timing is not None:
                self.timings[timing] += seconds

    # -- synthesis ---------------------------------------------------------------------------------
    def synthesise(
        self,
        backend: Any,
        refs: dict[str, Reference],
        label: str,
        asr: Transcriber,
        pool: ThreadPoolExecutor,
        asr_bar: Progress[Any],
    ) -> tuple[list[ClipRecord], list[Future[Transcript]]]:
        identity = backend.identity()
        bar = self.progress.bar(f"synthesis ({label})", len(self.sentences))
        records, futures = [], []
        for sentence in self.sentences:
            ref = refs[sentence.speaker]
            seed = self.suite.seed_for(sentence)
            key = key_of("audio", identity, sentence.text, sentence.language, sentence.voice, ref.digest, seed)
            hit = self.cache.get_audio(key)
            if hit is not None:
                path, meta = hit
                self.counts["audio_hits"] += 1
                meta = _current_stats(path, meta)
                record = ClipRecord(sentence.id, path, meta["digest"], meta, True)
            else:
                before = getattr(backend, "load_seconds", 0.0)
                data, meta = synthesise_clip(backend, sentence, ref, seed)
                self.timings["model_load_s"] += getattr(backend, "load_seconds", 0.0) - before
                path = self.cache.put_audio(key, data, meta)
                self.counts["audio_misses"] += 1
                self.timings["synthesis_s"] += meta["synth_seconds"]
                self.timings["audio_s"] += meta["audio_seconds"]
                record = ClipRecord(sentence.id, path, meta["digest"], meta, False)
            records.append(record)
            futures.append(self._submit(pool, asr, record, sentence.language, asr_bar))
            bar.update(1)
        return records, futures

    # -- ASR -----------------------------------------------------------------------------------------
    def _submit(
        self, pool: ThreadPoolExecutor, asr: Transcriber, record: ClipRecord, language: str, bar: Progress[Any]
    ) -> Future[Transcript]:
        # the caller copies the result into the record once every future is done (callbacks may run later)
        """Queue a transcription; identical audio (a base equal to the candidate) is transcribed once."""
        key = key_of("transcript", record.digest, asr.identity(), base_language(language))
        first = self._inflight.get(key)
        if first is None:
            first = self._inflight[key] = pool.submit(self._transcript, asr, key, record.path, language)

        first.add_done_callback(lambda _: bar.update(1))
        return first

    def _transcript(self, asr: Transcriber, key: str, path: Path, language: str) -> Transcript:
        cached = self.cache.get_json("text", key)
        if cached is not None:
            self.tally("transcript_hits")
            lid = cached.get("language_id")
            return Transcript(str(cached["text"]), LanguageId(**lid) if lid else None)
        started = time.perf_counter()
        out = asr.recognise(path, language)
        self.tally("transcript_misses", "asr_s", time.perf_counter() - started)
        lid = out.language_id
        self.cache.put_json(
            "text",
            key,
            {
                "text": out.text,
                "language": language,
                "language_id": None
                if lid is None
                else {"detected": lid.detected, "detected_p": lid.detected_p, "expected_p": lid.expected_p},
            },
        )
        return out

    # -- speaker embeddings ------------------------------------------------------------------------
    def embedding(
        self, encoder: SpeakerEncoder, digest: str, path: Path, identity: dict[str, Any]
    ) -> np.ndarray | None:
        key = key_of("embedding", digest, identity)
        cached = self.cache.get_json("embeddings", key)
        if cached is not None:
            return None if cached["vector"] is None else np.asarray(cached["vector"], dtype=np.float32)
        import soundfile as sf

        started = time.perf_counter()
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
        vector = encoder.embed(samples.mean(axis=1), rate)
        self.timings["similarity_s"] += time.perf_counter() - started
        self.cache.put_json(
            "embeddings", key, {"vector": None if vector is None else [round(float(v), 7) for v in vector]}
        )
        return vector


@functools.lru_cache(maxsize=4)
def _transcriber(options: AsrOptions) -> Transcriber:
    """One loaded ASR model per settings and process: repeated evaluations (the pytest plugin, sweeps) reuse it."""
    return Transcriber(options)


@functools.lru_cache(maxsize=2)
def _speaker_encoder(device: str) -> SpeakerEncoder:
    return SpeakerEncoder(device)


def _current_stats(path: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Cached audio measured by an older version lacks newer figures: measure its wav again (the raw samples are
    gone, so non-finite samples and clipping are read from the stored 16-bit file)."""
    try:
        SignalStats.from_dict(meta["stats"])
        return meta
    except (KeyError, TypeError):
        import soundfile as sf

        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
        return {**meta, "stats": signal_stats(samples.mean(axis=1), rate).to_dict()}


def _samples(
    scores: list[TextScore],
    records: list[ClipRecord],
    sim_ref: list[float | None],
    sim_base: list[float | None],
    flags: list[list[str]],
) -> SentenceSamples:
    def arr(values: list[float | None]) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in values], dtype=float)

    return SentenceSamples(
        word_errors=np.array([s.words.errors for s in scores], dtype=float),
        word_total=np.array([s.words.reference_length for s in scores], dtype=float),
        char_errors=np.array([s.chars.errors for s in scores], dtype=float),
        char_total=np.array([s.chars.reference_length for s in scores], dtype=float),
        wer=np.array([s.wer for s in scores], dtype=float),
        similarity_ref=arr(sim_ref),
        similarity_base=arr(sim_base),
        synth_seconds=arr([None if r.cached else r.meta["synth_seconds"] for r in records]),
        audio_seconds=np.array([r.meta["audio_seconds"] for r in records], dtype=float),
        loudness=arr([r.stats.loudness for r in records]),
        flags={f: np.array([f in fl for fl in flags], dtype=float) for f in FLAGS},
    )


def _metrics(samples: SentenceSamples, base: SentenceSamples | None = None, *, is_base: bool = False) -> ModelMetrics:
    values: dict[str, float | None] = {
        k: (v if np.isfinite(v) else None) for k, v in metric_values(samples, base).items()
    }
    if is_base or base is None:
        values["similarity_base"] = None
    return ModelMetrics(values)


def _publish(path: Path, out_dir: Path | None, relative: str) -> str:
    """The path reported for a clip: a hard link (or copy) under ``out_dir``, else the cache file."""
    if out_dir is None:
        return str(path)
    return str(link_or_copy(path, out_dir / relative))


def run_eval(
    candidate: str | Path, base: str | Path | None, suite: str | Path | Suite, options: EvalOptions | None = None
) -> EvalReport:
    """Evaluate ``candidate`` (and ``base``) on ``suite`` and judge the gates.

    Raises:
        UsageError: bad option, unknown suite, gate syntax, ASR model not available offline or English-only on a
            multilingual suite, a failing synthesis command.
        InputError: a suite file, reference clip or model file that cannot be used.
    """
    options = options or EvalOptions()
    started = time.perf_counter()
    suite = suite if isinstance(suite, Suite) else load_suite(suite)
    gates = parse_gates(suite.gates, options.gates)
    run = _Run(suite, options)
    asr = _transcriber(options.asr)
    foreign = sorted({s.language for s in run.sentences if base_language(s.language) != "en"})
    if foreign and not asr.is_multilingual:
        raise UsageError(
            f"suite {suite.name!r} has {', '.join(foreign)} sentences but the ASR model {asr.name} is English-only; "
            "drop --asr-model to use the bundled multilingual base model, or pass a multilingual Whisper model "
            "(e.g. a local large-v3 or small folder)."
        )
    cand_backend = make_backend(options.backend, str(candidate), options, run.cache)
    base_backend = make_backend(options.backend, str(base), options, run.cache, base=True) if base is not None else None
    refs = {
        name: prepare_reference(suite.speakers[name], run.cache) for name in sorted({s.speaker for s in run.sentences})
    }

    n_models = 1 + (base_backend is not None)
    asr_bar = run.progress.bar("transcription", len(run.sentences) * n_models)
    try:
        with ThreadPoolExecutor(max_workers=max(1, options.asr.workers), thread_name_prefix="xtts_qa-asr") as pool:
            cand_records, futures = run.synthesise(cand_backend, refs, "candidate", asr, pool, asr_bar)
            cand_backend.close()
            base_records: list[ClipRecord] = []
            if base_backend is not None:
                base_records, more = run.synthesise(base_backend, refs, "base", asr, pool, asr_bar)
                base_backend.close()
                futures += more
            # speaker embeddings on this thread while the pool is still transcribing
            encoder = _speaker_encoder(resolve_device(options.device))
            speaker_identity = encoder.identity()
            every = cand_records + base_records
            sim_bar = run.progress.bar("speaker similarity", len(every) + len(refs))
            ref_vectors = {}
            for name, ref in refs.items():
                ref_vectors[name] = run.embedding(encoder, ref.digest, ref.path, speaker_identity)
                sim_bar.update(1)
            for record in every:
                record.embedding = run.embedding(encoder, record.digest, record.path, speaker_identity)
                sim_bar.update(1)
            for record, future in zip(every, futures, strict=True):
                heard = future.result()  # re-raises ASR errors here
                record.transcript, record.language_id = heard.text, heard.language_id
    finally:
        run.progress.close()

    out_dir = Path(options.out_dir) if options.out_dir else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    sentences, cand_scores, base_scores, cand_flags, base_flags = [], [], [], [], []
    sim_ref, sim_base, base_sim_ref = [], [], []
    normalisers: dict[str, str] = {}
    limits = options.signal
    for i, s in enumerate(run.sentences):
        norm = normaliser_for(s.language)
        normalisers[s.language] = norm.name
        rec = cand_records[i]
        base_rec = base_records[i] if base_records else None
        score = score_text(s.text, rec.transcript, norm)
        sr = cosine(rec.embedding, ref_vectors[s.speaker])
        b_score = score_text(s.text, base_rec.transcript, norm) if base_rec else None
        flags = clip_flags(
            rec.stats,
            s.text,
            s.language,
            limits,
            cap_hit=bool(rec.meta.get("cap_hit")),
            score=score,
            base=base_rec.stats if base_rec else None,
            language_id=rec.language_id,
            voice_measured=rec.embedding is not None,
            base_score=b_score,
        )
        sb = None
        if base_rec is not None and b_score is not None:
            sb = cosine(rec.embedding, base_rec.embedding)
            base_scores.append(b_score)
            base_flags.append(
                clip_flags(
                    base_rec.stats,
                    s.text,
                    s.language,
                    limits,
                    cap_hit=bool(base_rec.meta.get("cap_hit")),
                    score=b_score,
                    language_id=base_rec.language_id,
                    voice_measured=base_rec.embedding is not None,
                )
            )
            base_sim_ref.append(cosine(base_rec.embedding, ref_vectors[s.speaker]))
        cand_scores.append(score)
        cand_flags.append(flags)
        sim_ref.append(sr)
        sim_base.append(sb)
        loud = rec.stats.loudness
        sentences.append(
            SentenceResult(
                id=s.id,
                language=s.language,
                text=s.text,
                transcript=rec.transcript,
                wer=score.wer,
                cer=score.cer,
                similarity_ref=sr,
                similarity_base=sb,
                duration_s=rec.meta["audio_seconds"],
                rtf=None if rec.cached else rec.meta["synth_seconds"] / max(rec.meta["audio_seconds"], 1e-9),
                flags=tuple(flags),
                audio=_publish(rec.path, out_dir, f"candidate/{s.id}.wav"),
                base_audio=_publish(base_rec.path, out_dir, f"base/{s.id}.wav") if base_rec else None,
                base_transcript=base_rec.transcript if base_rec else None,
                base_wer=base_scores[-1].wer if base_rec else None,
                reference_audio=_publish(refs[s.speaker].path, out_dir, f"references/{s.speaker}.wav"),
                seed=suite.seed_for(s),
                speaker=s.speaker,
                normaliser=norm.name,
                loudness=loud if np.isfinite(loud) else None,
                detected_language=rec.language_id.detected if rec.language_id else None,
                cached=rec.cached,
            )
        )
    cand_samples = _samples(cand_scores, cand_records, sim_ref, sim_base, cand_flags)
    base_samples = (
        _samples(base_scores, base_records, base_sim_ref, [None] * len(base_records), base_flags)
        if base_records
        else None
    )
    gate_results = evaluate_gates(
        gates, cand_samples, base_samples, rounds=options.bootstrap_rounds, seed=suite.seed, strict=options.strict
    )
    versions = environment_versions()
    provenance = {
        "candidate_hash": cand_backend.describe()["hash"],
        "base_hash": base_backend.describe()["hash"] if base_backend else None,
        "versions": versions,
        "asr_model": asr.name,
        "asr": asr.identity(),
        "speaker_model": SPEAKER_MODEL,
        "normaliser": normalisers.get("en") or next(iter(normalisers.values())),
        "normalisers": normalisers,
        "seeds": {s.id: suite.seed_for(s) for s in run.sentences},
        "suite_seed": suite.seed,
        "device": resolve_device(options.device),
        "backend": cand_backend.describe(),
        "base_backend": base_backend.describe() if base_backend else None,
        "suite_path": str(suite.path),
        "references": {name: {"source": r.source, "path": str(r.path), "digest": r.digest} for name, r in refs.items()},
        "garbled_wer": GARBLED_WER,
        "signal_limits": asdict(limits),
        "language_id": bool(options.asr.language_id and any(r.language_id for r in cand_records)),
        "rtf_source": (
            "measured in this run"
            if not any(r.cached for r in cand_records)
            else "cached audio: synthesis not timed in this run"
            if all(r.cached for r in cand_records)
            else "measured on the clips synthesised in this run; cached clips excluded"
        ),
        "bootstrap_rounds": options.bootstrap_rounds,
        "cache": {"root": str(run.cache.root), "enabled": run.cache.enabled, **run.counts},
        "timings": {k: round(v, 3) for k, v in run.timings.items()},
    }
    report = EvalReport(
        candidate=str(candidate),
        base=str(base) if base is not None else None,
        suite=suite.name,
        gates=tuple(gate_results),
        metrics=_metrics(cand_samples, base_samples),
        base_metrics=_metrics(base_samples, is_base=True) if base_samples else None,
        sentences=tuple(sentences),
        provenance=provenance,
        seconds=time.perf_counter() - started,
        out_dir=str(out_dir) if out_dir else None,
        strict=options.strict,
    )
    if out_dir is not None:
        atomic_write_bytes(out_dir / "report.json", json.dumps(report.to_dict(), indent=2, ensure_ascii=False).encode())
    return report
