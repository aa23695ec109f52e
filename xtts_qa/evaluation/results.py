"""Typed, immutable evaluation results and the JSON contract (``kind: "eval"``, :data:`SCHEMA_VERSION`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from xtts_qa.evaluation.gates import GateResult
from xtts_qa.evaluation.registry import ALIASES, FLAGS, METRICS

__all__ = ["SCHEMA_VERSION", "SentenceResult", "ModelMetrics", "EvalReport", "headline"]

SCHEMA_VERSION = 2


def _num(x: float | None, digits: int = 6) -> float | None:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return None
    return round(float(x), digits)


@dataclass(frozen=True)
class SentenceResult:
    """One sentence of the suite, as the candidate (and the base) said it.

    Attributes:
        id: the sentence id from the suite.
        language: its language code.
        text: what should be said.
        transcript: what the ASR heard in the candidate's audio.
        wer, cer: the candidate's error rates (WER is a CER for zh/ja/ko).
        similarity_ref: cosine similarity of the candidate's voice with the reference clip (None: not measurable).
        similarity_base: cosine similarity with the base model's clip of the same sentence (None: no base, or not
            measurable).
        duration_s: length of the candidate's audio.
        rtf: synthesis seconds per second of audio, measured in this run; None when the clip came from the cache.
        flags: what a listener would say (names from :data:`~xtts_qa.evaluation.registry.FLAGS`).
        verdict: ``pass`` or ``fail`` (any flag fails the sentence).
        loudness: integrated loudness in LUFS (None when too short to measure).
        detected_language: Whisper's language identification (None when not run).
        cached: the audio came from the cache (synthesised by an earlier run).
        audio, base_audio, reference_audio: wav paths.
        base_transcript, base_wer: the base model's transcript and WER.
        seed: the seed the sentence was synthesised with.
        speaker: the speaker reference it used.
        normaliser: the text normaliser applied before scoring.
    """

    id: str
    language: str
    text: str
    transcript: str
    wer: float
    cer: float
    similarity_ref: float | None
    similarity_base: float | None
    duration_s: float
    rtf: float | None
    flags: tuple[str, ...]
    audio: str | None = None
    base_audio: str | None = None
    base_transcript: str | None = None
    base_wer: float | None = None
    reference_audio: str | None = None
    seed: int = 0
    speaker: str = ""
    normaliser: str = ""
    loudness: float | None = None
    detected_language: str | None = None
    cached: bool = False

    @property
    def verdict(self) -> str:
        return "fail" if self.flags else "pass"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "language": self.language,
            "text": self.text,
            "transcript": self.transcript,
            "wer": _num(self.wer),
            "cer": _num(self.cer),
            "similarity_ref": _num(self.similarity_ref),
            "similarity_base": _num(self.similarity_base),
            "duration_s": _num(self.duration_s, 3),
            "rtf": _num(self.rtf, 4),
            "flags": list(self.flags),
            "verdict": self.verdict,
            "audio": self.audio,
            "base_audio": self.base_audio,
            "base_transcript": self.base_transcript,
            "base_wer": _num(self.base_wer),
            "reference_audio": self.reference_audio,
            "seed": self.seed,
            "speaker": self.speaker,
            "normaliser": self.normaliser,
            "loudness": _num(self.loudness, 2),
            "detected_language": self.detected_language,
            "cached": self.cached,
            "explanations": {f: FLAGS.get(f, "") for f in self.flags},
        }


@dataclass(frozen=True)
class ModelMetrics:
    """Corpus figures of one model over the suite: every metric of the registry, by name (``metrics.wer``).

    Attributes:
        values: metric name -> value (None: could not be measured, or not applicable to this side).
    """

    values: dict[str, float | None]

    def __getattr__(self, name: str) -> float | None:
        name = ALIASES.get(name, name)
        if name != "values" and name in METRICS:
            return self.values.get(name)
        raise AttributeError(name)

    def to_dict(self) -> dict[str, float | None]:
        return {k: _num(v) for k, v in self.values.items()}


def headline(report: EvalReport) -> str:
    """One sentence saying what is wrong (or that nothing is)."""
    failed = [g for g in report.gates if g.outcome == "fail"]
    unsure = [g for g in report.gates if g.outcome == "inconclusive"]
    counts: dict[str, int] = {}
    for s in report.sentences:
        for f in s.flags:
            counts[f] = counts.get(f, 0) + 1
    heard = ", ".join(
        f"{n} {f}"
        for f, n in sorted(counts.items(), key=lambda kv: (-kv[1], list(FLAGS).index(kv[0]) if kv[0] in FLAGS else 99))
    )
    n = len(report.sentences)
    if failed:
        text = f"FAILED: {', '.join(g.expr for g in failed)}"
        return text + (f"; a listener would hear, in {n} sentences: {heard}." if heard else ".")
    if unsure and report.strict:
        return f"FAILED (--strict): inconclusive {', '.join(g.expr for g in unsure)}: the suite cannot tell."
    text = "PASSED: every gate holds"
    if unsure:
        text += (
            f", but {', '.join(g.expr for g in unsure)} {'is' if len(unsure) == 1 else 'are'} inconclusive (the "
            "suite cannot tell)"
        )
    if heard:
        text += f"; flagged sentences ({n}): {heard}"
    return text + "."


@dataclass(frozen=True)
class EvalReport:
    """A candidate evaluated on a suite, against a base, with its gates.

    Attributes:
        candidate: the candidate model (folder, checkpoint, or command-backend model string).
        base: the base model, or None.
        suite: the suite's name.
        gates: every gate's verdict.
        metrics: the candidate's corpus figures.
        base_metrics: the base's corpus figures, or None.
        sentences: one result per sentence, in suite order.
        provenance: hashes, versions, models, normalisers, seeds and device.
        seconds: wall time of the run.
        out_dir: where audio and report.json were written, if anywhere.
        strict: inconclusive gates fail the run.
    """

    candidate: str
    base: str | None
    suite: str
    gates: tuple[GateResult, ...]
    metrics: ModelMetrics
    base_metrics: ModelMetrics | None
    sentences: tuple[SentenceResult, ...]
    provenance: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    out_dir: str | None = None
    strict: bool = False

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def exit_code(self) -> int:
        """0: no gate failed (inconclusive and not-applicable gates do not fail a run, except inconclusive under
        ``--strict``); 1: a gate failed. A run that cannot start raises instead (exit code 2)."""
        return 0 if self.passed else 1

    @property
    def headline(self) -> str:
        """One sentence saying what is wrong."""
        return headline(self)

    @property
    def failed_gates(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "eval",
            "candidate": self.candidate,
            "base": self.base,
            "suite": self.suite,
            "exit_code": self.exit_code,
            "passed": self.passed,
            "strict": self.strict,
            "headline": self.headline,
            "flags": {f: FLAGS[f] for f in FLAGS if any(f in s.flags for s in self.sentences)},
            "gates": [g.to_dict() for g in self.gates],
            "metrics": {
                "candidate": self.metrics.to_dict(),
                "base": self.base_metrics.to_dict() if self.base_metrics else None,
            },
            "sentences": [s.to_dict() for s in self.sentences],
            "provenance": self.provenance,
            "seconds": round(self.seconds, 3),
            "out_dir": self.out_dir,
        }
