"""Speech recognition with faster-whisper: one model per run, many clips transcribed concurrently.

The model is a name (``tiny.en``, ``large-v3``: only from the local Hugging Face cache, never downloaded), a
local CTranslate2 folder, or one of the bundled offline models (:mod:`.asr_models`): ``base`` (multilingual
Whisper base, the default for every suite) and ``tiny.en``. The default is ``base`` for English too: on the same
20 clean espeak-ng sentences it measured corpus WER 0.085 against tiny.en's 0.141 (worst sentence 0.62 vs 0.78;
benchmarks/bench_eval.py --asr-only), so it adds less noise to every gate. It costs more CPU (about 2-4x tiny.en's
time per clip on 2 shared cores, plus about 50 % for language identification, which ``--no-language-id`` skips);
a gate decided by ASR noise costs more than that. Whether a model is multilingual is read from the loaded model
(CTranslate2's ``is_multilingual``), never guessed from its files. The language is pinned per clip from the suite.
Decoding is greedy-deterministic (temperature 0, no fallback sampling) so a transcript depends only on the audio and
these settings.
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
from typing import TYPE_CHECKING, Any

from xtts_qa.device import resolve_device
from xtts_qa.errors import UsageError
from xtts_qa.evaluation.artifact_cache import file_digest
from xtts_qa.evaluation.asr_models import BASE_NAME, TINY_EN_NAME, tiny_en_path, whisper_base_path
from xtts_qa.evaluation.normalize import base_language
from xtts_qa.extras import require

if TYPE_CHECKING:
    from xtts_qa.evaluation.metrics import LanguageId

# The evaluation pipeline's entry (the runner, the CLI and the sweep import this module before metrics, which
# imports jiwer): a core install without [eval] gets one line naming the extra, not an ImportError traceback.
require("eval", feature="the listening evaluation (xtts-qa eval)")

log = logging.getLogger("xtts_qa")

__all__ = ["AsrOptions", "Transcript", "Transcriber", "default_model_path", "resolve_model", "BUNDLED"]

#: bundled offline models by name
BUNDLED = {"base": (whisper_base_path, BASE_NAME), "tiny.en": (tiny_en_path, TINY_EN_NAME)}


@dataclass(frozen=True)
class AsrOptions:
    """faster-whisper settings (all part of the transcript cache key except ``workers``/``cpu_threads``).

    Attributes:
        model: ``base`` / ``tiny.en`` (bundled), a model name from the local Hugging Face cache or a local CTranslate2
            folder; None = the bundled multilingual ``base``.
        language_id: run Whisper's language identification on each clip (multilingual models only).
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
    language_id: bool = True

    def settings(self) -> dict[str, Any]:
        data = asdict(self)
        for k in ("model", "workers", "cpu_threads", "device"):
            data.pop(k)
        return data


def default_model_path() -> Path:
    """The offline default: the multilingual Whisper base model assembled from its PyPI packages.

    Raises:
        UsageError: the packages are not installed or the assembled file is not the expected one.
    """
    return whisper_base_path()


def resolve_model(model: str | None) -> Path:
    """A local CTranslate2 Whisper folder for ``model``; never downloads.

    Raises:
        UsageError: a name not in the local cache, or a folder without model.bin.
    """
    if model is None or model in BUNDLED:
        path = BUNDLED[model or "base"][0]()
    elif Path(model).expanduser().exists():
        path = Path(model).expanduser()
    else:
        from faster_whisper import download_model

        try:
            path = Path(download_model(model, local_files_only=True))
        except (OSError, ValueError) as exc:
            raise UsageError(
                f"--asr-model {model!r} is not available offline ({str(exc).splitlines()[0][:120]}). "
                'Download it once where there is network (python -c "import faster_whisper; '
                f"faster_whisper.download_model('{model}')\"), or pass a local CTranslate2 folder, "
                "or use a bundled model: base (multilingual) or tiny.en."
            ) from None
    if not (path / "model.bin").is_file():
        raise UsageError(f"--asr-model {str(path)!r} is not a CTranslate2 Whisper folder (no model.bin).")
    return path


@dataclass(frozen=True)
class Transcript:
    """What the ASR heard in one clip.

    Attributes:
        text: the transcript (decoded in the sentence's language).
        language_id: Whisper's language identification, or None (English-only model, or switched off).
    """

    text: str
    language_id: LanguageId | None = None


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
        self.name = (
            BUNDLED[self.options.model or "base"][1]
            if (self.options.model or "base") in BUNDLED
            else str(self.options.model)
        )
        self._digest = file_digest(self.path / "model.bin")
        self._model: Any = None
        self._lock = threading.Lock()
        self.load_seconds = 0.0

    def identity(self) -> dict[str, Any]:
        return {"asr": "faster-whisper", "model": self._digest, "settings": self.options.settings(), "format": 2}

    @property
    def is_multilingual(self) -> bool:
        """Whether the model knows more than English, as the loaded model itself says (loads it if needed)."""
        return bool(self._load().model.is_multilingual)

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                import time

                from faster_whisper import WhisperModel

                o = self.options
                # CTranslate2 takes the device kind and its index apart ("cuda", 1), not torch's "cuda:1"
                device, _, index = resolve_device(o.device).partition(":")
                compute = o.compute_type if o.compute_type != "default" else ("float16" if device == "cuda" else "int8")
                threads = o.cpu_threads or max(1, (os.cpu_count() or 1) // max(1, o.workers))
                started = time.perf_counter()
                self._model = WhisperModel(
                    str(self.path),
                    device=device,
                    device_index=int(index or 0),
                    compute_type=compute,
                    cpu_threads=threads,
                    num_workers=max(1, o.workers),
                    local_files_only=True,
                )
                self.load_seconds = time.perf_counter() - started
            return self._model

    def transcribe(self, audio: str | Path, language: str) -> str:
        """One clip's transcript (the segment generator is consumed fully)."""
        model = self._load()
        lang = base_language(language)
        segments, _ = model.transcribe(
            str(audio),
            language=lang,
            beam_size=self.options.beam_size,
            temperature=0.0,
            condition_on_previous_text=False,
            vad_filter=False,
            without_timestamps=True,
        )
        return " ".join(seg.text.strip() for seg in segments).strip()

    def identify_language(self, audio: str | Path, language: str) -> LanguageId | None:
        """Whisper's language identification of a clip (first 30 s); None for English-only models."""
        model = self._load()
        if not model.model.is_multilingual:
            return None
        from faster_whisper import decode_audio

        samples = decode_audio(str(audio), sampling_rate=model.feature_extractor.sampling_rate)
        detected, p, probs = model.detect_language(audio=samples)
        expected = dict(probs).get(base_language(language), 0.0)
        from xtts_qa.evaluation.metrics import LanguageId

        return LanguageId(str(detected), float(p), float(expected))

    def recognise(self, audio: str | Path, language: str) -> Transcript:
        """Transcript and (when enabled and possible) language identification of one clip."""
        text = self.transcribe(audio, language)
        lid = self.identify_language(audio, language) if self.options.language_id else None
        return Transcript(text, lid)

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
