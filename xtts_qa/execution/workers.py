"""The work itself, the same code in both engines: synthesis, transcription, speaker scoring, structural checks.

The local engine calls these in-process; the Ray engine wraps :class:`Synthesiser` and :class:`Listener` as
actors (one model loaded and kept per actor) and :func:`score_clips` / :func:`check_target` as tasks. Workers
never write the cache or the history: they return values and the driver stores them.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from xtts_qa.execution import adapter
from xtts_qa.execution.units import ClipResult, Unit, UnitContext

log = logging.getLogger("xtts_qa")

__all__ = ["Synthesiser", "Listener", "score_clips", "check_target"]


def _set_threads(threads: int) -> None:
    import torch

    if threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


class Synthesiser:
    """Loads one model at a time and keeps it for every unit of that model.

    Args:
        context: evaluation options and the speaker references (as bytes: written to a private folder here).
    """

    def __init__(self, context: UnitContext) -> None:
        from xtts_qa.evaluation.artifact_cache import EvalCache

        self.context = context
        self._folder = Path(tempfile.mkdtemp(prefix="xtts_qa-worker-"))
        # the backend only keeps scratch there (sanitised copies of legacy checkpoints, written atomically)
        self._cache = EvalCache(context.eval_options.cache_root)
        self._refs = {}
        for name, (ref, data) in context.references.items():
            local = self._folder / f"ref-{ref.digest}.wav"
            local.write_bytes(data)
            self._refs[name] = replace(ref, path=local)
        self._loaded: tuple[str, str, Any] | None = None  # (model, role, backend)
        self.units_done = 0

    def pid(self) -> int:
        """This worker's process id (for operators and the fault-injection tests)."""
        return os.getpid()

    def _backend(self, unit: Unit) -> Any:
        if self._loaded is None or self._loaded[:2] != (unit.model, unit.role):
            if self._loaded is not None:
                self._loaded[2].close()
            backend = adapter.backend_for(unit.model, self.context.eval_options, self._cache, base=unit.role == "base")
            self._loaded = (unit.model, unit.role, backend)
        return self._loaded[2]

    def run(self, unit: Unit) -> list[ClipResult]:
        """Synthesise every clip of ``unit``."""
        _set_threads(self.context.threads)
        backend = self._backend(unit)
        out = []
        for job in unit.clips:
            wav, meta = adapter.synthesise_clip(backend, job.sentence, self._refs[job.speaker], job.seed)
            out.append(ClipResult(job.key, wav, meta, job.sentence.language))
        self.units_done += 1
        return out


class Listener:
    """A faster-whisper model loaded once, transcribing the clips of many units.

    Args:
        context: the ASR settings are ``context.eval_options.asr``.
    """

    def __init__(self, context: UnitContext) -> None:
        from xtts_qa.evaluation.asr import Transcriber

        self.transcriber = Transcriber(context.eval_options.asr)
        self._folder = Path(tempfile.mkdtemp(prefix="xtts_qa-asr-"))

    def pid(self) -> int:
        return os.getpid()

    def transcribe(self, clips: list[ClipResult]) -> list[dict[str, Any]]:
        """What the ASR heard in each clip (:func:`~xtts_qa.execution.adapter.transcript_entry`), in order."""
        texts = []
        for clip in clips:
            path = self._folder / f"{clip.key}.wav"
            path.write_bytes(clip.wav)
            try:
                texts.append(adapter.transcript_entry(self.transcriber, path, clip.language))
            finally:
                path.unlink(missing_ok=True)
        return texts


@functools.lru_cache(maxsize=2)
def _encoder(device: str) -> Any:
    from xtts_qa.evaluation.similarity import SpeakerEncoder

    return SpeakerEncoder(device)


def score_clips(clips: list[ClipResult], device: str, threads: int) -> list[list[float] | None]:
    """Speaker embeddings of the clips (the encoder is loaded once per worker process and kept)."""
    _set_threads(threads)
    encoder = _encoder(device)
    return [adapter.embed_wav(encoder, clip.wav) for clip in clips]


def check_target(target: str, base: str | None, options: Any) -> dict[str, Any]:
    """The structural check of one checkpoint, as ``CheckReport.to_dict()``."""
    from xtts_qa.engine import check

    return check(target, base, options).to_dict()
