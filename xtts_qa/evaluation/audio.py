"""Read, validate, resample and write audio.

:func:`load_reference` is the gate every speaker reference clip passes: a missing file, an unreadable one,
stereo, a sample rate too low for XTTS, a clip too short, or one that is silent each raise an
:class:`~xtts_qa.errors.InputError` naming the file and the fix. Clips at other rates are resampled.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf

from xtts_qa.errors import InputError

log = logging.getLogger("xtts_qa")

__all__ = [
    "Clip",
    "ReferenceLimits",
    "read_wav",
    "load_reference",
    "resample",
    "wav_bytes",
    "write_wav",
    "active_seconds",
]


@dataclass(frozen=True)
class Clip:
    """Mono float32 audio.

    Attributes:
        samples: the waveform, float32, nominally in [-1, 1].
        sample_rate: samples per second.
        path: the file it came from, if any.
    """

    samples: np.ndarray
    sample_rate: int
    path: Path | None = None

    @property
    def seconds(self) -> float:
        return len(self.samples) / float(self.sample_rate)

    def at(self, sample_rate: int) -> np.ndarray:
        """The samples at ``sample_rate`` (resampled when needed)."""
        return resample(self.samples, self.sample_rate, sample_rate)


@dataclass(frozen=True)
class ReferenceLimits:
    """What a usable reference clip must satisfy.

    Attributes:
        min_rate: lowest accepted sample rate (XTTS encodes references at 22.05 kHz; 16 kHz is the least that works).
        min_seconds: shortest clip (the XTTS paper uses 3-8 s references).
        min_active_seconds: least amount of non-silent audio.
        silence_peak: a clip whose peak is below this is silent.
    """

    min_rate: int = 16000
    min_seconds: float = 2.0
    min_active_seconds: float = 0.5
    silence_peak: float = 1e-3


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling (scipy), float32 out; a no-op at the same rate."""
    if source_rate == target_rate:
        return samples.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = gcd(int(source_rate), int(target_rate))
    out: np.ndarray = resample_poly(samples, target_rate // g, source_rate // g).astype(np.float32)
    return out


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """(samples [frames, channels] float32, sample rate) of an audio file.

    Raises:
        InputError: missing, empty or not a readable audio file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(
            path,
            "audio file not found.",
            "check the path in the suite file (relative paths start at the suite's folder).",
        )
    if path.stat().st_size == 0:
        raise InputError(path, "is empty (0 bytes).", "record or export the clip again.")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise InputError(
            path, f"is not a readable audio file ({str(exc)[:120]}).", "export it as a 16-bit PCM WAV file."
        ) from None
    return data, int(rate)


def active_seconds(samples: np.ndarray, sample_rate: int, *, floor_db: float = -40.0, frame_s: float = 0.02) -> float:
    """Seconds of frames louder than ``floor_db`` relative to the clip's loudest frame."""
    frame = max(1, int(sample_rate * frame_s))
    n = len(samples) // frame
    if n == 0:
        return 0.0
    rms = np.sqrt(np.mean(samples[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-20)
    threshold = rms.max() * 10 ** (floor_db / 20)
    return float(np.sum(rms > max(threshold, 1e-4)) * frame_s)


def load_reference(path: str | Path, limits: ReferenceLimits | None = None) -> Clip:
    """Read and validate a speaker reference clip (mono, loud enough, long enough, a usable sample rate).

    Raises:
        InputError: missing, unreadable, stereo, sample rate too low, too short, silent or non-finite.
    """
    limits = limits or ReferenceLimits()
    path = Path(path)
    data, rate = read_wav(path)
    if data.shape[1] != 1:
        raise InputError(
            path,
            f"has {data.shape[1]} channels; a speaker reference must be mono.",
            f"mix it down: sox {path.name} -c 1 mono.wav (or ffmpeg -i {path.name} -ac 1 mono.wav).",
        )
    samples = data[:, 0]
    if rate < limits.min_rate:
        raise InputError(
            path,
            f"is sampled at {rate} Hz; XTTS needs at least {limits.min_rate} Hz (it encodes references at 22050 Hz).",
            "use the original recording at 22.05 kHz or higher; upsampling a narrow-band clip does not restore it.",
        )
    if not np.all(np.isfinite(samples)):
        raise InputError(path, "contains NaN or infinite samples.", "export the clip again as 16-bit PCM.")
    seconds = len(samples) / rate
    if seconds < limits.min_seconds:
        raise InputError(
            path,
            (
                f"is {seconds:.2f} s long; a reference needs at least {limits.min_seconds:.1f} s of speech (3-8 s is "
                "best)."
            ),
            "use a longer clip of the target speaker.",
        )
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    speech = active_seconds(samples, rate)
    if peak < limits.silence_peak or speech < limits.min_active_seconds:
        raise InputError(
            path,
            f"is silent (peak {peak:.1e}, {speech:.2f} s above the noise floor).",
            "check the recording: the file holds no audible speech.",
        )
    return Clip(samples, rate, path)


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """A 16-bit PCM WAV file's bytes (samples clipped to [-1, 1], non-finite samples written as 0)."""
    clean = np.clip(np.nan_to_num(np.asarray(samples, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0), -1.0, 1.0)
    buffer = io.BytesIO()
    sf.write(buffer, clean, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> Path:
    """Write a 16-bit PCM WAV atomically."""
    from xtts_qa.evaluation.artifact_cache import atomic_write_bytes

    path = Path(path)
    atomic_write_bytes(path, wav_bytes(samples, sample_rate))
    return path
