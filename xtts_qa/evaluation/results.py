"""Typed, immutable evaluation results and the JSON contract (``kind: "eval"``, :data:`SCHEMA_VERSION`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from xtts_qa.evaluation.gates import GateResult

__all__ = ["SCHEMA_VERSION", "SentenceResult", "ModelMetrics", "EvalReport"]

SCHEMA_VERSION = 1


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
        similarity_ref: cosine similarity of the candidate's voice with the reference clip.
        similarity_base: cosine similarity with the base model's clip of the same sentence.
        duration_s: length of the candidate's audio.
        rtf: synthesis seconds per second of audio.
        flags: signal problems and ``hallucination`` (WER above 0.5).
        verdict: ``pass`` or ``fail`` (any flag fails the sentence).
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
    rtf: float
    flags: tuple[str, ...]
    audio: str | None = None
    base_audio: str | None = None
    base_transcript: str | None = None
    base_wer: float | None = None
    reference_audio: str | None = None
    seed: int = 0
    speaker: str = ""
    normaliser: str = ""

    @property
    def verdict(self) -> str:
        return "fail" if self.flags else "pass"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "language": self.language, "text": self.text, "transcript": self.transcript,
            "wer": _num(self.wer), "cer": _num(self.cer), "similarity_ref": _num(self.similarity_ref),
            "similarity_base": _num(self.similarity_base), "duration_s": _num(self.duration_s, 3), "rtf": _num(self.rtf, 4),
            "flags": list(self.flags), "verdict": self.verdict, "audio": self.audio, "base_audio": self.base_audio,
            "base_transcript": self.base_transcript, "base_wer": _num(self.base_wer), "reference_audio": self.reference_audio,
            "seed": self.seed, "speaker": self.speaker, "normaliser": self.normaliser,
        }


@dataclass(frozen=True)
class ModelMetrics:
    """Corpus figures of one model over the suite.

    Attributes:
        wer: corpus WER from summed edit counts.
        cer: corpus CER from summed edit counts.
        mean_wer: mean of the per-sentence WERs.
        hallucination_rate: share of sentences with WER above 0.5.
        similarity_ref: mean similarity with the reference clips.
        similarity_base: mean similarity with the base model's clips (None for the base itself).
        rtf: total synthesis time / total audio time.
        flag_rate: share of sentences with a signal flag.
    """

    wer: float
    cer: float
    mean_wer: float
    hallucination_rate: float
    similarity_ref: float | None
    similarity_base: float | None
    rtf: float
    flag_rate: float = 0.0

    def to_dict(self) -> dict[str, float | None]:
        return {k: _num(getattr(self, k)) for k in self.__dataclass_fields__}


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

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def exit_code(self) -> int:
        """0 every gate passed, 1 a gate failed (a run that cannot start raises instead: exit code 2)."""
        return 0 if self.passed else 1

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
            "gates": [g.to_dict() for g in self.gates],
            "metrics": {"candidate": self.metrics.to_dict(), "base": self.base_metrics.to_dict() if self.base_metrics else None},
            "sentences": [s.to_dict() for s in self.sentences],
            "provenance": self.provenance,
            "seconds": round(self.seconds, 3),
            "out_dir": self.out_dir,
        }
