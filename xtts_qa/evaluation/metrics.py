"""Scores for one synthesised sentence: edit counts against its text, and signal checks on its waveform.

Word and character error rates come from jiwer's alignment (``process_words`` / ``process_characters``); the
raw edit counts are kept so that corpus rates are computed from summed counts, not averaged ratios. Signal
checks look at the waveform alone (plus the text length): the 602-code generation cap, runaway or truncated
output, long leading/trailing silence, clipping, non-finite samples and noise-like spectra.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import jiwer
import numpy as np

from xtts_qa.evaluation.normalize import CHARACTER_LANGUAGES, Normaliser, base_language

__all__ = [
    "EditCounts", "TextScore", "score_text", "SignalStats", "SignalLimits", "signal_stats", "signal_flags",
    "expected_seconds", "HALLUCINATION_WER",
]

#: a sentence whose WER exceeds this counts as a hallucination (wrong words, loops, babble)
HALLUCINATION_WER = 0.5


@dataclass(frozen=True)
class EditCounts:
    """An alignment's edit counts.

    Attributes:
        substitutions, deletions, insertions, hits: as jiwer counts them.
    """

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    hits: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def reference_length(self) -> int:
        return self.substitutions + self.deletions + self.hits

    @property
    def rate(self) -> float:
        """errors / reference length (1.0 for an empty reference with output, 0.0 when both are empty)."""
        n = self.reference_length
        if n == 0:
            return 0.0 if self.errors == 0 else 1.0
        return self.errors / n

    def __add__(self, other: EditCounts) -> EditCounts:
        return EditCounts(self.substitutions + other.substitutions, self.deletions + other.deletions,
                          self.insertions + other.insertions, self.hits + other.hits)


@dataclass(frozen=True)
class TextScore:
    """A transcript scored against the text it should say.

    Attributes:
        words: word edit counts (character counts for CJK languages, whose WER is a CER).
        chars: character edit counts.
        reference: the normalised text.
        hypothesis: the normalised transcript.
        normaliser: the normaliser's name.
    """

    words: EditCounts
    chars: EditCounts
    reference: str
    hypothesis: str
    normaliser: str

    @property
    def wer(self) -> float:
        return self.words.rate

    @property
    def cer(self) -> float:
        return self.chars.rate


def _counts(out: Any) -> EditCounts:
    return EditCounts(out.substitutions, out.deletions, out.insertions, out.hits)


def _align(reference: str, hypothesis: str, by_char: bool) -> EditCounts:
    if not reference.strip():
        n = len(hypothesis.replace(" ", "")) if by_char else len(hypothesis.split())
        return EditCounts(insertions=n)
    if not hypothesis.strip():
        n = len(reference.replace(" ", "")) if by_char else len(reference.split())
        return EditCounts(deletions=n)
    if by_char:
        return _counts(jiwer.process_characters(reference, hypothesis))
    return _counts(jiwer.process_words(reference, hypothesis))


def score_text(text: str, transcript: str, normaliser: Normaliser) -> TextScore:
    """Normalise both sides and count word and character edits."""
    ref_words, hyp_words = normaliser.joined(text), normaliser.joined(transcript)
    ref_chars, hyp_chars = normaliser.characters(text), normaliser.characters(transcript)
    words = _align(ref_words, hyp_words, False)
    chars = _align(ref_chars, hyp_chars, True)
    return TextScore(words, chars, normaliser(text), normaliser(transcript), normaliser.name)


@dataclass(frozen=True)
class SignalStats:
    """Figures measured on a waveform (stored with cached audio; flags are derived from them).

    Attributes:
        seconds: duration.
        peak: largest absolute finite sample.
        rms: root mean square of the finite samples.
        nonfinite: number of NaN/Inf samples.
        clipped_share: share of samples at or beyond +-0.999.
        leading_silence_s: silence before the first frame above the floor.
        trailing_silence_s: silence after the last frame above the floor.
        active_s: seconds of frames above the floor.
        flatness: median spectral flatness of the frames above the floor (0 tonal ... ~0.56 white noise).
    """

    seconds: float
    peak: float
    rms: float
    nonfinite: int
    clipped_share: float
    leading_silence_s: float
    trailing_silence_s: float
    active_s: float
    flatness: float

    def to_dict(self) -> dict[str, float]:
        return {k: round(float(v), 5) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SignalStats:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class SignalLimits:
    """Thresholds that turn :class:`SignalStats` into flags.

    Attributes:
        silence_rms: below this RMS the clip is silent.
        edge_silence_s: leading or trailing silence longer than this is flagged.
        clipped_share: more clipped samples than this share is flagged.
        noise_flatness: median spectral flatness above this is noise-like (speech sits around 0.01-0.2).
        runaway_ratio: duration above this multiple of the expected duration (and above ``runaway_min_s``) is runaway.
        runaway_min_s: short inputs often take 3 s or more; never call anything shorter runaway.
        truncated_ratio: duration below this share of the expected duration is truncated.
        cap_seconds: XTTS stops at 602 audio codes, about 27.9 s; output this long hit the cap.
    """

    silence_rms: float = 3e-4
    edge_silence_s: float = 1.5
    clipped_share: float = 1e-3
    noise_flatness: float = 0.35
    runaway_ratio: float = 2.5
    runaway_min_s: float = 4.0
    truncated_ratio: float = 0.4
    cap_seconds: float = 27.5


#: speaking rate in characters of normalised text per second (CJK languages count characters, not letters)
_CHARS_PER_SECOND = {"zh": 4.5, "ja": 7.0, "ko": 6.0}
_DEFAULT_CPS = 14.0


def expected_seconds(text: str, language: str) -> float:
    """A rough speaking time for ``text`` (characters without spaces / a per-language rate)."""
    lang = base_language(language)
    chars = len("".join(ch for ch in text if ch.isalnum()))
    return chars / _CHARS_PER_SECOND.get(lang, _DEFAULT_CPS)


def signal_stats(samples: np.ndarray, sample_rate: int, *, floor_db: float = -40.0, frame_s: float = 0.02) -> SignalStats:
    """Measure a waveform (raw synthesis output, before it is written as 16-bit PCM)."""
    samples = np.asarray(samples, dtype=np.float64).reshape(-1)
    finite_mask = np.isfinite(samples)
    nonfinite = int(samples.size - finite_mask.sum())
    x = np.where(finite_mask, samples, 0.0)
    seconds = x.size / float(sample_rate)
    if x.size == 0:
        return SignalStats(0.0, 0.0, 0.0, nonfinite, 0.0, 0.0, 0.0, 0.0, 0.0)
    peak = float(np.max(np.abs(x)))
    rms = float(np.sqrt(np.mean(x ** 2)))
    clipped = float(np.mean(np.abs(x) >= 0.999))
    frame = max(1, int(sample_rate * frame_s))
    n = x.size // frame
    if n == 0:
        return SignalStats(seconds, peak, rms, nonfinite, clipped, seconds, 0.0, 0.0, 0.0)
    frames = x[: n * frame].reshape(n, frame)
    energy = np.sqrt(np.mean(frames ** 2, axis=1))
    threshold = max(float(energy.max()) * 10 ** (floor_db / 20), 1e-4)
    loud = np.flatnonzero(energy > threshold)
    if loud.size == 0:
        return SignalStats(seconds, peak, rms, nonfinite, clipped, seconds, seconds, 0.0, 0.0)
    leading = loud[0] * frame_s
    trailing = max(0.0, seconds - (loud[-1] + 1) * frame_s)
    spectrum = np.abs(np.fft.rfft(frames[loud] * np.hanning(frame), axis=1)) ** 2 + 1e-12
    flatness = np.exp(np.mean(np.log(spectrum), axis=1)) / np.mean(spectrum, axis=1)
    return SignalStats(seconds, peak, rms, nonfinite, clipped, float(leading), float(trailing),
                       float(loud.size * frame_s), float(np.median(flatness)))


def signal_flags(stats: SignalStats, text: str, language: str, limits: SignalLimits | None = None, *,
                 cap_hit: bool = False) -> list[str]:
    """Names of the problems a clip shows: ``non-finite``, ``silent``, ``clipping``, ``noise-like``, ``cap-hit``,
    ``runaway``, ``truncated``, ``leading-silence``, ``trailing-silence``."""
    limits = limits or SignalLimits()
    flags: list[str] = []
    if stats.nonfinite:
        flags.append("non-finite")
    if stats.rms < limits.silence_rms or stats.active_s == 0.0:
        flags.append("silent")
        return flags
    if stats.clipped_share > limits.clipped_share:
        flags.append("clipping")
    if stats.flatness > limits.noise_flatness:
        flags.append("noise-like")
    expected = expected_seconds(text, language)
    if cap_hit or stats.seconds >= limits.cap_seconds:
        flags.append("cap-hit")
    elif stats.seconds > max(limits.runaway_min_s, limits.runaway_ratio * expected):
        flags.append("runaway")
    if expected >= 1.0 and stats.active_s < limits.truncated_ratio * expected:
        flags.append("truncated")
    if stats.leading_silence_s > limits.edge_silence_s:
        flags.append("leading-silence")
    if stats.trailing_silence_s > limits.edge_silence_s:
        flags.append("trailing-silence")
    return flags


def is_character_language(language: str) -> bool:
    return base_language(language) in CHARACTER_LANGUAGES
