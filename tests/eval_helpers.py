"""Helpers for the evaluation tests: real espeak-ng speech, ways to damage it, and models loaded once per process."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."


def espeak(path: Path, text: str = SENTENCE, voice: str = "en-us", rate: int | None = None) -> Path:
    """Real speech from espeak-ng (22.05 kHz mono, 16-bit), optionally resampled with sox."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = path.with_suffix(".raw.wav") if rate else path
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True, capture_output=True)
    if rate:
        subprocess.run(["sox", str(raw), "-r", str(rate), str(path)], check=True, capture_output=True)
        raw.unlink()
    return path


def read(path: Path) -> tuple[np.ndarray, int]:
    data, rate = sf.read(str(path), dtype="float32")
    return data, rate


def write(path: Path, samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, rate, subtype=subtype)
    return path


def damaged(clean: np.ndarray, rate: int) -> dict[str, np.ndarray]:
    """Healthy speech broken the ways synthesis breaks: noise, reversed, truncated, looped, silence."""
    rng = np.random.default_rng(0)
    peak = float(np.max(np.abs(clean)))
    return {
        "noise": (rng.standard_normal(len(clean)) * 0.3 * peak).astype(np.float32),
        "reversed": clean[::-1].copy(),
        "truncated": clean[: len(clean) // 4].copy(),
        "looped": np.concatenate([clean] * 4),
        "silence": np.zeros_like(clean),
    }


@functools.lru_cache(maxsize=None)
def transcriber():
    """The bundled tiny.en, loaded once per test process."""
    from xtts_qa.evaluation.asr import AsrOptions, Transcriber

    return Transcriber(AsrOptions(workers=1))


@functools.lru_cache(maxsize=None)
def encoder():
    from xtts_qa.evaluation.similarity import SpeakerEncoder

    return SpeakerEncoder("cpu")
