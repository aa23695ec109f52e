"""The one metric registry: every evaluation metric and signal flag, defined once.

A :class:`Metric` has a name, a direction (lower or higher is better), a label and unit for reports, a
per-sentence extractor and a corpus aggregate over :class:`SentenceSamples` (so a paired bootstrap can
resample sentences). Gates (:mod:`.gates`), results, the terminal and HTML reports, the history dashboard and
the pytest plugin all read :data:`METRICS`; a new metric is added here and nowhere else.

:data:`FLAGS` names what a listener would say about one clip, each with a one-line explanation (shown in the
terminal report and the HTML legend); each flag has a ``<flag>_count`` metric (sentences raising it) so a suite
can gate on it, e.g. ``garbled_count <= 0``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "plot_groups",
    "FLAGS",
    "Metric",
    "METRICS",
    "SentenceSamples",
    "GARBLED_WER",
    "REGRESSION_WER",
    "REGRESSION_WORDS",
    "flag_metric",
    "tracked_metrics",
    "higher_is_better",
]

#: a sentence whose WER is above this on clean-sounding audio is "garbled"; also the high_wer_rate cut-off.
#: At WER 0.5 half the words are wrong: a listener no longer gets the sentence. The bundled Whisper base model's
#: worst sentence on clean espeak-ng speech is 0.62 (one of 20; benchmarks/bench_eval.py), so a single
#: sentence above 0.5 can be ASR noise; suites therefore gate on counts with that in mind (see suites/).
GARBLED_WER = 0.5

#: flag -> what a listener would say, in one line (order: most to least severe)
FLAGS: dict[str, str] = {
    "non-finite": "the output holds NaN/Inf samples (the model produced numbers that are not audio)",
    "silent": "silent: no audible speech in the clip",
    "noise": (
        "noise, not clean speech: the speech stands less than 20 dB above the background (about 7 dB SNR), "
        "or the clip is pure noise"
    ),
    "clipped": "distorted: samples hit full scale (clipping)",
    "too-quiet": "too quiet: loudness below -40 LUFS, or more than 10 LU quieter than the base model's clip",
    "truncated": "cut short: far shorter than the text needs, or than the base model's clip of the same sentence",
    "too-fast": "too fast: spoken in well under the base model's time for the same sentence, with the words intact",
    "too-long": (
        "too long or looping: far longer than the text needs or than the base's clip, or it hit XTTS's generation cap"
    ),
    "long-pause": "a long pause: over 1 s of silence inside the sentence, or over 1.5 s before or after it",
    "wrong-language": "wrong language: Whisper's language identification hears another language than the sentence's",
    "garbled": "garbled: the audio sounds clean but most words are wrong (WER above 0.5)",
    "no-voice": "speaker similarity n/a: the speaker encoder found no voiced speech to measure",
}


def flag_metric(flag: str) -> str:
    """``too-quiet`` -> ``too_quiet_count``."""
    return flag.replace("-", "_") + "_count"


@dataclass(frozen=True)
class SentenceSamples:
    """Per-sentence figures of one model, aligned by sentence, from which every metric (and its bootstrap) is computed.

    Attributes:
        word_errors, word_total: word edit counts and reference lengths.
        char_errors, char_total: character edit counts and reference lengths.
        wer: per-sentence WER.
        similarity_ref: cosine similarity with the reference clip (NaN when it could not be measured).
        similarity_base: cosine similarity with the base model's clip (NaN when unknown).
        synth_seconds: synthesis time measured in this run (NaN for clips served from the cache).
        audio_seconds: output duration.
        loudness: integrated loudness in LUFS (ITU-R BS.1770; NaN for clips too short to measure).
        flags: flag name -> 0/1 per sentence (every name in :data:`FLAGS`).
    """

    word_errors: np.ndarray
    word_total: np.ndarray
    char_errors: np.ndarray
    char_total: np.ndarray
    wer: np.ndarray
    similarity_ref: np.ndarray
    similarity_base: np.ndarray
    synth_seconds: np.ndarray
    audio_seconds: np.ndarray
    loudness: np.ndarray = field(default_factory=lambda: np.zeros(0))
    flags: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.wer)

    def flag(self, name: str) -> np.ndarray:
        return np.asarray(self.flags.get(name, np.zeros(len(self))), dtype=float)

    @property
    def flagged(self) -> np.ndarray:
        """1 where the sentence raised any flag."""
        if not self.flags:
            return np.zeros(len(self))
        flagged: np.ndarray = np.max(np.stack([self.flag(f) for f in FLAGS]), axis=0)
        return flagged


Take = Callable[[np.ndarray], np.ndarray]


def _take(idx: np.ndarray | None) -> Take:
    return (lambda a: a) if idx is None else (lambda a: a[idx])


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        den_sum = den.sum(axis=-1)
        return np.where(den_sum > 0, num.sum(axis=-1) / np.maximum(den_sum, 1e-12), 0.0)


def _nanmean(values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        count = np.sum(~np.isnan(values), axis=-1)
        total = np.nansum(values, axis=-1)
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _rtf(s: SentenceSamples, t: Take) -> np.ndarray:
    synth, audio = t(s.synth_seconds), t(s.audio_seconds)
    fresh = ~np.isnan(synth)
    with np.errstate(invalid="ignore", divide="ignore"):
        num = np.where(fresh, synth, 0.0).sum(axis=-1)
        den = np.where(fresh, audio, 0.0).sum(axis=-1)
        return np.where(den > 0, num / np.maximum(den, 1e-12), np.nan)


def _loudness(s: SentenceSamples, t: Take) -> np.ndarray:
    # energy mean of per-clip loudness (LUFS are logarithmic: average the power, not the dB figures)
    values = t(s.loudness)
    with np.errstate(invalid="ignore", divide="ignore"):
        power = _nanmean(10 ** (values / 10))
        return np.where(power > 0, 10 * np.log10(np.maximum(power, 1e-30)), np.nan)


@dataclass(frozen=True)
class Metric:
    """One metric.

    Attributes:
        name: the gate and report name (``wer``, ``too_quiet_count`` ...).
        direction: ``lower`` or ``higher`` is better.
        label: a short human label.
        unit: the unit shown after the value ("" for ratios, ``LUFS``, ``sentences``).
        description: one line for docs and ``--help``.
        aggregate: corpus value over the sentences in ``idx`` (shape [..., n]; all when None); paired metrics get
            (candidate, base, idx).
        per_sentence: each sentence's own figure (for reports), or None.
        paired: the metric compares each sentence with the base's: it needs a base model.
        when_missing: the gate outcome when the value cannot be computed (``fail`` or ``not-applicable``).
        group: metrics plotted on one axis in the history dashboard ("" for none).
    """

    name: str
    direction: str
    label: str
    unit: str
    description: str
    aggregate: Callable[..., np.ndarray]
    per_sentence: Callable[[SentenceSamples], np.ndarray] | None = None
    paired: bool = False
    when_missing: str = "fail"
    group: str = ""

    @property
    def higher_is_better(self) -> bool:
        return self.direction == "higher"

    def value(
        self, cand: SentenceSamples, base: SentenceSamples | None = None, idx: np.ndarray | None = None
    ) -> np.ndarray:
        """The corpus value (paired metrics need ``base``)."""
        if self.paired:
            if base is None:
                raise ValueError(f"{self.name} needs the base model's samples")
            return self.aggregate(cand, base, _take(idx))
        return self.aggregate(cand, _take(idx))


#: a sentence regressed when its WER rose over the base's clip by more than this ...
REGRESSION_WER = 0.3
#: ... and by at least this many word errors (so one mis-heard word in a two-word sentence is not a regression)
REGRESSION_WORDS = 3


def _regressions(c: SentenceSamples, b: SentenceSamples, t: Take) -> np.ndarray:
    worse = (t(c.wer) - t(b.wer) > REGRESSION_WER) & (t(c.word_errors) - t(b.word_errors) >= REGRESSION_WORDS)
    counts: np.ndarray = worse.sum(axis=-1).astype(float)
    return counts


def _build() -> dict[str, Metric]:
    ms = [
        Metric(
            "wer",
            "lower",
            "WER",
            "",
            "corpus word error rate (summed edits / summed reference words; CER for zh/ja/ko)",
            lambda s, t: _ratio(t(s.word_errors), t(s.word_total)),
            lambda s: s.wer,
            group="error rate",
        ),
        Metric(
            "cer",
            "lower",
            "CER",
            "",
            "corpus character error rate",
            lambda s, t: _ratio(t(s.char_errors), t(s.char_total)),
            lambda s: np.where(s.char_total > 0, s.char_errors / np.maximum(s.char_total, 1), 0.0),
            group="error rate",
        ),
        Metric(
            "mean_wer",
            "lower",
            "mean WER",
            "",
            "mean of the per-sentence WERs",
            lambda s, t: t(s.wer).mean(axis=-1),
            group="error rate",
        ),
        Metric(
            "max_wer",
            "lower",
            "worst sentence WER",
            "",
            "the highest per-sentence WER",
            lambda s, t: t(s.wer).max(axis=-1),
        ),
        Metric(
            "high_wer_rate",
            "lower",
            "sentences with WER > 0.5",
            "",
            f"share of sentences whose WER is above {GARBLED_WER}",
            lambda s, t: (t(s.wer) > GARBLED_WER).mean(axis=-1),
        ),
        Metric(
            "wer_regressions",
            "lower",
            "sentences worse than the base",
            "sentences",
            f"sentences whose WER is over {REGRESSION_WER} above the base's clip of the same sentence, with at least "
            f"{REGRESSION_WORDS} more word errors: one garbled sentence in a suite shows here",
            _regressions,
            None,
            paired=True,
        ),
        Metric(
            "similarity_ref",
            "higher",
            "similarity to reference",
            "cosine",
            "mean speaker similarity with the reference clip",
            lambda s, t: _nanmean(t(s.similarity_ref)),
            lambda s: s.similarity_ref,
            group="speaker similarity",
        ),
        Metric(
            "similarity_base",
            "higher",
            "similarity to base",
            "cosine",
            "mean speaker similarity with the base model's clip",
            lambda s, t: _nanmean(t(s.similarity_base)),
            lambda s: s.similarity_base,
            when_missing="not-applicable",
            group="speaker similarity",
        ),
        Metric(
            "loudness",
            "higher",
            "loudness",
            "LUFS",
            "integrated loudness (ITU-R BS.1770, energy mean over clips)",
            _loudness,
            lambda s: s.loudness,
            when_missing="not-applicable",
        ),
        Metric(
            "duration",
            "higher",
            "audio seconds",
            "s",
            "total seconds of audio",
            lambda s, t: t(s.audio_seconds).sum(axis=-1),
            lambda s: s.audio_seconds,
        ),
        Metric(
            "rtf",
            "lower",
            "real-time factor",
            "",
            "synthesis seconds per audio second, of clips synthesised in this run",
            _rtf,
            None,
            when_missing="not-applicable",
        ),
        Metric(
            "flag_rate",
            "lower",
            "flagged sentences",
            "",
            "share of sentences with any flag",
            lambda s, t: t(s.flagged).mean(axis=-1),
        ),
    ]
    for flag, why in FLAGS.items():
        ms.append(
            Metric(
                flag_metric(flag),
                "lower",
                f"{flag} sentences",
                "sentences",
                f"sentences flagged {flag}: {why}",
                (lambda f: lambda s, t: t(s.flag(f)).sum(axis=-1))(flag),
                (lambda f: lambda s: s.flag(f))(flag),
            )
        )
    return {m.name: m for m in ms}


#: every metric, by name
METRICS: dict[str, Metric] = _build()
#: older names still accepted in gates
ALIASES: dict[str, str] = {"hallucination_rate": "high_wer_rate", "similarity": "similarity_ref"}


def tracked_metrics() -> tuple[str, ...]:
    """Metrics the history and reports show (not the per-flag counts, which stay in the per-sentence flags)."""
    return tuple(n for n, m in METRICS.items() if not n.endswith("_count") and not m.paired)


def higher_is_better(name: str) -> bool:
    """Direction of a metric (``_delta`` names follow their metric); unknown names are lower-is-better."""
    base = name[: -len("_delta")] if name.endswith("_delta") else name
    metric = METRICS.get(ALIASES.get(base, base))
    return bool(metric and metric.higher_is_better)


def plot_groups() -> tuple[tuple[tuple[str, ...], str], ...]:
    """((metric names, axis label), ...) for history charts, in registry order."""
    groups: dict[str, list[str]] = {}
    for name, m in METRICS.items():
        if m.group:
            groups.setdefault(m.group, []).append(name)
    return tuple((tuple(names), group) for group, names in groups.items())
