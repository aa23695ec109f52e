"""Scores for one synthesised sentence: edit counts against its text, and signal checks on its waveform.

Word and character error rates come from jiwer's alignment (``process_words`` / ``process_characters``); the
raw edit counts are kept so that corpus rates are computed from summed counts, not averaged ratios. Signal
checks look at the waveform alone (plus the text length): the 602-code generation cap, runaway or truncated
output, long pauses, clipping, loudness, non-finite samples and noise. :func:`clip_flags` turns those figures
(plus the transcript's WER, Whisper's language identification and the base model's clip of the same sentence)
into the flags of :data:`xtts_qa.evaluation.registry.FLAGS`. Every threshold in :class:`SignalLimits` says where
it comes from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import jiwer
import numpy as np

from xtts_qa.evaluation.normalize import CHARACTER_LANGUAGES, Normaliser, base_language
from xtts_qa.evaluation.registry import GARBLED_WER, REGRESSION_WER

__all__ = [
    "EditCounts",
    "TextScore",
    "score_text",
    "SignalStats",
    "SignalLimits",
    "signal_stats",
    "clip_flags",
    "expected_seconds",
    "GARBLED_WER",
    "LanguageId",
]


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
        return EditCounts(
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
            self.hits + other.hits,
        )


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
        leading_silence_s: quiet before the first speech frame.
        trailing_silence_s: quiet after the last speech frame.
        active_s: seconds of speech frames.
        span_s: seconds from the first to the last speech frame.
        longest_pause_s: longest quiet stretch between the first and the last speech frame.
        flatness: median spectral flatness of the speech frames (0 tonal ... ~0.56 white noise).
        snr_db: speech-band level range (95th minus 10th percentile of 20 ms frame levels in 300-3400 Hz, the
            telephone band that carries intelligibility): how far the speech stands above the background.
        loudness: integrated loudness in LUFS (ITU-R BS.1770-4 via pyloudnorm); NaN when too short to measure.
    """

    seconds: float
    peak: float
    rms: float
    nonfinite: int
    clipped_share: float
    leading_silence_s: float
    trailing_silence_s: float
    active_s: float
    span_s: float = 0.0
    longest_pause_s: float = 0.0
    flatness: float = 0.0
    snr_db: float = 0.0
    loudness: float = float("nan")

    def to_dict(self) -> dict[str, float | None]:
        return {k: (round(float(v), 5) if np.isfinite(v) else None) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SignalStats:
        """Rebuild from :meth:`to_dict` (raises KeyError for figures written by an older version)."""
        # JSON gives every figure back as a float (nonfinite too); None stood for a non-finite value
        values: dict[str, Any] = {k: float("nan") if data[k] is None else data[k] for k in cls.__dataclass_fields__}
        return cls(**values)


@dataclass(frozen=True)
class SignalLimits:
    """Thresholds that turn :class:`SignalStats` into flags, each derived from what a listener hears or from
    figures measured on clean espeak-ng speech and on noise (tests/test_eval_signals.py builds both).

    Attributes:
        silence_rms: below this RMS (-70 dBFS) nothing is audible at any normal playback volume.
        quiet_db: a frame more than this below the clip's loud frames (95th percentile) counts as a pause.
        long_pause_s: a gap inside a sentence longer than 1 s is heard as a broken sentence (commas and full
            stops are 0.2-0.6 s in read speech).
        edge_silence_s: leading or trailing silence longer than this is a noticeable dead start/end.
        clipped_share: more samples at full scale than 0.1 % is audible distortion.
        noise_snr_db: speech-band level range below 20 dB. Measured on two espeak-ng sentences: white/pink noise at a
            true SNR of 5 dB gives 16.6-18.1 dB, at 10 dB 21.5-22.7 dB, at 20 dB 31-32.5 dB; pure white, pink or
            brown noise 1.5-3 dB; clean speech over 60 dB. At 5 dB SNR a listener hears speech buried in noise, at
            10 dB noisy but clear speech; brown noise at 0 dB (RMS) sits mostly below 300 Hz, a rumble under clear
            speech, and is not flagged (36 dB).
        noise_flatness: median spectral flatness above this is white-noise-like (speech sits around 0.001-0.2).
        too_quiet_lufs: integrated loudness below -40 LUFS is barely audible (speech is mastered at -16 to -23 LUFS;
            espeak-ng gives -21).
        quieter_than_base_lu: 10 LU quieter is perceived as half as loud: a listener notices.
        short_ratio: a clip whose speech span is under half the text's expected duration lost words.
        long_ratio, long_min_s: more than 2.5x the text's expected duration (and over 4 s: one-word inputs often
            take 3 s) is runaway or looping.
        base_short_ratio: under 0.7x the base's span of the same sentence is cut short (with deletions) or too
            fast (without); between two XTTS samples of one sentence durations vary by about +-20 %.
        base_long_ratio, base_long_extra_s: over 1.6x the base's span and 2 s longer is too long/looping.
        cap_seconds: XTTS stops at 602 audio codes, about 27.9 s; output this long hit the cap.
        wrong_language_p, other_language_p: Whisper gives the sentence's own language a probability under 0.2
            while another language is over 0.5: clearly another language.
        unlikely_language_p, language_ratio: or the sentence's language is under 0.15, another language at least
            1.5x as likely, and most words do not come through (WER above 0.5). Whisper base's language
            identification is weak on synthetic speech (espeak-ng German as German p=0.16, English 0.09; espeak-ng
            Spanish as Thai 0.37 vs Spanish 0.33), so a low-confidence identification counts only together with
            the transcript failing in the sentence's language.
    """

    silence_rms: float = 3e-4
    quiet_db: float = 30.0
    long_pause_s: float = 1.0
    edge_silence_s: float = 1.5
    clipped_share: float = 1e-3
    noise_snr_db: float = 20.0
    noise_flatness: float = 0.35
    too_quiet_lufs: float = -40.0
    quieter_than_base_lu: float = 10.0
    short_ratio: float = 0.5
    long_ratio: float = 2.5
    long_min_s: float = 4.0
    base_short_ratio: float = 0.7
    base_long_ratio: float = 1.6
    base_long_extra_s: float = 2.0
    cap_seconds: float = 27.5
    wrong_language_p: float = 0.2
    other_language_p: float = 0.5
    unlikely_language_p: float = 0.15
    language_ratio: float = 1.5


#: speaking rate in characters of normalised text per second (CJK languages count characters, not letters)
_CHARS_PER_SECOND = {"zh": 4.5, "ja": 7.0, "ko": 6.0}
_DEFAULT_CPS = 14.0


def expected_seconds(text: str, language: str) -> float:
    """A rough speaking time for ``text`` (characters without spaces / a per-language rate)."""
    lang = base_language(language)
    chars = len("".join(ch for ch in text if ch.isalnum()))
    return chars / _CHARS_PER_SECOND.get(lang, _DEFAULT_CPS)


def _loudness(x: np.ndarray, sample_rate: int) -> float:
    import pyloudnorm

    if x.size < int(0.5 * sample_rate):  # BS.1770 gates 400 ms blocks: shorter clips have no integrated loudness
        return float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        value = float(pyloudnorm.Meter(sample_rate).integrated_loudness(x))
    return value if np.isfinite(value) else float("-inf")


def signal_stats(
    samples: np.ndarray, sample_rate: int, *, quiet_db: float = 30.0, frame_s: float = 0.02
) -> SignalStats:
    """Measure a waveform (raw synthesis output, before it is written as 16-bit PCM)."""
    from scipy.signal import butter, sosfilt

    samples = np.asarray(samples, dtype=np.float64).reshape(-1)
    finite_mask = np.isfinite(samples)
    nonfinite = int(samples.size - finite_mask.sum())
    x = np.where(finite_mask, samples, 0.0)
    seconds = x.size / float(sample_rate)
    frame = max(1, int(sample_rate * frame_s))
    n = x.size // frame
    if n == 0:
        return SignalStats(seconds, float(np.max(np.abs(x))) if x.size else 0.0, 0.0, nonfinite, 0.0, seconds, 0.0, 0.0)
    peak = float(np.max(np.abs(x)))
    rms = float(np.sqrt(np.mean(x**2)))
    clipped = float(np.mean(np.abs(x) >= 0.999))
    band = sosfilt(
        butter(4, [300.0, min(3400.0, 0.45 * sample_rate)], btype="bandpass", fs=sample_rate, output="sos"), x
    )
    level = 10 * np.log10(np.mean(band[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-14)
    loud_level = float(np.percentile(level, 95))
    speech = level > max(loud_level - quiet_db, -100.0)
    loud = np.flatnonzero(speech)
    if loud.size == 0 or rms == 0.0:
        return SignalStats(seconds, peak, rms, nonfinite, clipped, seconds, seconds, 0.0)
    leading = loud[0] * frame_s
    trailing = max(0.0, seconds - (loud[-1] + 1) * frame_s)
    inner = ~speech[loud[0] : loud[-1] + 1]
    longest = 0
    run = 0
    for quiet in inner:
        run = run + 1 if quiet else 0
        longest = max(longest, run)
    frames = x[: n * frame].reshape(n, frame)
    spectrum = np.abs(np.fft.rfft(frames[loud] * np.hanning(frame), axis=1)) ** 2 + 1e-12
    flatness = np.exp(np.mean(np.log(spectrum), axis=1)) / np.mean(spectrum, axis=1)
    snr = loud_level - float(np.percentile(level, 10))
    return SignalStats(
        seconds,
        peak,
        rms,
        nonfinite,
        clipped,
        float(leading),
        float(trailing),
        float(loud.size * frame_s),
        float((loud[-1] + 1 - loud[0]) * frame_s),
        float(longest * frame_s),
        float(np.median(flatness)),
        float(snr),
        _loudness(x, sample_rate),
    )


@dataclass(frozen=True)
class LanguageId:
    """Whisper's language identification of one clip.

    Attributes:
        detected: the most probable language.
        detected_p: its probability.
        expected_p: the probability of the sentence's own language.
    """

    detected: str
    detected_p: float
    expected_p: float


def clip_flags(
    stats: SignalStats,
    text: str,
    language: str,
    limits: SignalLimits | None = None,
    *,
    cap_hit: bool = False,
    score: TextScore | None = None,
    base: SignalStats | None = None,
    language_id: LanguageId | None = None,
    voice_measured: bool = True,
    base_score: TextScore | None = None,
) -> list[str]:
    """Names (from :data:`~xtts_qa.evaluation.registry.FLAGS`) of the problems a listener would hear in one clip.

    ``garbled`` is raised only when no signal flag explains a high WER (noise, silence, truncation, looping or a
    wrong language are named as such) and, when the base's clip of the same sentence was scored (``base_score``),
    only when the candidate is worse than the base by more than REGRESSION_WER (a sentence the ASR mis-hears in
    both is the ASR's limit, not the model's). ``base`` is the base's clip's :class:`SignalStats`.
    """
    limits = limits or SignalLimits()
    flags: list[str] = []
    if stats.nonfinite:
        flags.append("non-finite")
    if stats.rms < limits.silence_rms or stats.active_s == 0.0:
        return flags + ["silent"]
    if stats.snr_db < limits.noise_snr_db or stats.flatness > limits.noise_flatness:
        flags.append("noise")
    if stats.clipped_share > limits.clipped_share:
        flags.append("clipped")
    if np.isfinite(stats.loudness) and (
        stats.loudness < limits.too_quiet_lufs
        or (
            base is not None
            and np.isfinite(base.loudness)
            and stats.loudness < base.loudness - limits.quieter_than_base_lu
        )
    ):
        flags.append("too-quiet")
    expected = expected_seconds(text, language)
    lost_words = (
        score is not None
        and score.words.reference_length > 0
        and score.words.deletions / score.words.reference_length >= 0.2
    )
    if expected >= 1.0 and stats.span_s < limits.short_ratio * expected:
        flags.append("truncated")
    elif base is not None and base.span_s >= 1.0 and stats.span_s < limits.base_short_ratio * base.span_s:
        flags.append("truncated" if lost_words else "too-fast")
    if (
        cap_hit
        or stats.seconds >= limits.cap_seconds
        or stats.span_s > max(limits.long_min_s, limits.long_ratio * expected)
        or (
            base is not None
            and stats.span_s > max(limits.base_long_ratio * base.span_s, base.span_s + limits.base_long_extra_s)
        )
    ):
        flags.append("too-long")
    if (
        stats.longest_pause_s > limits.long_pause_s
        or max(stats.leading_silence_s, stats.trailing_silence_s) > limits.edge_silence_s
    ):
        flags.append("long-pause")
    if language_id is not None and base_language(language_id.detected) != base_language(language):
        lid = language_id
        clear = lid.expected_p < limits.wrong_language_p and lid.detected_p > limits.other_language_p
        likely = (
            lid.expected_p < limits.unlikely_language_p
            and lid.detected_p >= limits.language_ratio * lid.expected_p
            and score is not None
            and score.wer > GARBLED_WER
        )
        if clear or likely:
            flags.append("wrong-language")
    worse_than_base = base_score is None or (score is not None and score.wer - base_score.wer > REGRESSION_WER)
    if (
        score is not None
        and score.wer > GARBLED_WER
        and worse_than_base
        and not {"noise", "silent", "truncated", "too-long", "wrong-language", "non-finite", "too-quiet"} & set(flags)
    ):
        flags.append("garbled")
    if not voice_measured and "silent" not in flags:
        flags.append("no-voice")
    return flags


def is_character_language(language: str) -> bool:
    return base_language(language) in CHARACTER_LANGUAGES
