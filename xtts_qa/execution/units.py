"""Work units of a sweep: model x suite x sentence batch, each with a content-addressed key.

A unit's key hashes the cache keys of its clips and the ASR and speaker-model identities, so it is the same in
every sweep that needs the same work (a base model shared by 100 checkpoints is one set of units) and a unit
whose results are in the cache is never run again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xtts_qa.evaluation.artifact_cache import key_of
from xtts_qa.evaluation.references import Reference
from xtts_qa.evaluation.suite import Sentence

__all__ = ["ClipJob", "Unit", "UnitContext", "ClipResult", "unit_key", "batches"]


@dataclass(frozen=True)
class ClipJob:
    """One sentence to synthesise for one model.

    Attributes:
        key: the clip's audio cache key.
        sentence: the suite sentence.
        speaker: the suite speaker whose reference is cloned.
        seed: the seed set before generation.
    """

    key: str
    sentence: Sentence
    speaker: str
    seed: int


@dataclass(frozen=True)
class Unit:
    """Model x suite x sentence batch.

    Attributes:
        key: content-addressed id (:func:`unit_key`).
        model: the model folder / checkpoint (or command-backend model string).
        role: ``candidate`` or ``base`` (the command backend's base uses ``--base-command``).
        suite: the suite's name.
        batch: the batch's index within the suite.
        clips: the sentences of the batch.
    """

    key: str
    model: str
    role: str
    suite: str
    batch: int
    clips: tuple[ClipJob, ...]

    def describe(self) -> str:
        return f"{self.model} [{self.role}] {self.suite}#{self.batch}"


@dataclass(frozen=True)
class UnitContext:
    """What every worker needs besides the unit (shipped once per actor, not per unit).

    Attributes:
        eval_options: the evaluation options (backend, device, synthesis and ASR settings).
        references: speaker name -> (reference, its wav bytes) so workers need no shared file system.
        threads: torch threads for synthesis and embeddings (CPU results depend on it bit for bit, so both
            engines use the same number).
    """

    eval_options: Any
    references: dict[str, tuple[Reference, bytes]] = field(default_factory=dict)
    threads: int = 1


@dataclass(frozen=True)
class ClipResult:
    """What a worker produced for one clip.

    Attributes:
        key: the audio cache key.
        wav: the wav bytes.
        meta: synthesis metadata (digest, timings, signal statistics).
        language: the sentence's language.
        transcript: filled in by the ASR stage (the cache entry: text, language, language identification).
        embedding: filled in by the scoring stage (None: no speech).
    """

    key: str
    wav: bytes
    meta: dict[str, Any]
    language: str
    transcript: dict[str, Any] = field(default_factory=dict)
    embedding: list[float] | None = None


def unit_key(clip_keys: list[str], asr_identity: dict[str, Any], speaker_identity: dict[str, Any]) -> str:
    """The key of a unit: its clips and the models that listen to them."""
    return key_of("unit", clip_keys, asr_identity, speaker_identity)


def batches(items: list[Any], size: int) -> list[list[Any]]:
    """``items`` in consecutive batches of at most ``size``."""
    size = max(1, int(size))
    return [items[i : i + size] for i in range(0, len(items), size)]
