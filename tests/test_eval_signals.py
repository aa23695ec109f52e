"""Signal flags on real espeak-ng speech damaged with numpy and sox: each damage raises the flag a listener would
name, and clean speech raises none. No ASR here (see test_eval_matrix.py for the whole pipeline)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from eval_helpers import SENTENCE, damage, espeak, read

from xtts_qa.evaluation.metrics import LanguageId, SignalStats, clip_flags, score_text, signal_stats
from xtts_qa.evaluation.normalize import normaliser_for
from xtts_qa.evaluation.registry import FLAGS


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, int]:
    return read(espeak(tmp_path_factory.mktemp("signals") / "clean.wav"))


def flags(y: np.ndarray, rate: int, base: SignalStats | None = None, text: str = SENTENCE, **kw) -> list[str]:
    out = clip_flags(signal_stats(y, rate), text, "en", base=base, **kw)
    assert set(out) <= set(FLAGS), out
    return out


def test_clean_speech_raises_no_flag(clean) -> None:
    y, rate = clean
    stats = signal_stats(y, rate)
    assert flags(y, rate) == [] and flags(y, rate, base=stats) == []
    assert -30 < stats.loudness < -15 and stats.snr_db > 40 and stats.longest_pause_s < 0.6


@pytest.mark.parametrize(
    ("kind", "flag"),
    [
        ("noise:white:pure", "noise"),
        ("noise:pink:pure", "noise"),
        ("noise:brown:pure", "noise"),
        ("noise:white:0", "noise"),
        ("noise:pink:0", "noise"),
        ("noise:white:5", "noise"),
        ("noise:pink:5", "noise"),
        ("gain:-25", "too-quiet"),
        ("gain:12", "clipped"),
        ("pause:2.5", "long-pause"),
        ("truncate:0.4", "truncated"),
        ("silence", "silent"),
        ("loop:3", "too-long"),
    ],
)
def test_each_damage_raises_its_flag(clean, kind: str, flag: str) -> None:
    y, rate = clean
    assert flag in flags(damage(kind, y, rate), rate), kind


@pytest.mark.parametrize(
    "kind", ["noise:white:20", "noise:pink:20", "noise:brown:0", "gain:-6", "pause:0.4", "pitch:300"]
)
def test_mild_changes_a_listener_accepts_raise_no_signal_flag(clean, kind: str) -> None:
    y, rate = clean
    assert flags(damage(kind, y, rate), rate, base=signal_stats(y, rate)) == [], kind


def test_flags_relative_to_the_base(clean) -> None:
    y, rate = clean
    base = signal_stats(y, rate)
    assert "too-quiet" in flags(
        damage("gain:-14", y, rate), rate, base=base
    )  # -35 LUFS: above the floor, far below the base
    assert "too-quiet" not in flags(damage("gain:-14", y, rate), rate)
    assert "too-long" in flags(damage("loop:2", y, rate), rate, base=base)  # twice the base: looping
    assert "too-fast" in flags(
        damage("tempo:1.8", y, rate), rate, base=base
    )  # words intact (no transcript: no deletions)
    cut = damage("truncate:0.6", y, rate)
    heard = score_text(SENTENCE, "the quick brown fox jumps over", normaliser_for("en"))
    assert "truncated" in flags(cut, rate, base=base, score=heard)


def test_text_flags(clean) -> None:
    y, rate = clean
    norm = normaliser_for("en")
    wrong = score_text(SENTENCE, "a tiny boat sailed around the old harbour at noon", norm)
    assert flags(y, rate, score=wrong) == ["garbled"]
    # the base mis-hears the sentence as badly: the ASR's limit, not the model's
    assert flags(y, rate, score=wrong, base_score=wrong) == []
    # noise explains the high WER: named noise, not garbled
    assert flags(damage("noise:white:pure", y, rate), rate, score=wrong) == ["noise"]
    german = LanguageId("de", 0.9, 0.02)
    assert "wrong-language" in flags(y, rate, score=wrong, language_id=german)
    assert "garbled" not in flags(y, rate, score=wrong, language_id=german)
    assert flags(y, rate, language_id=LanguageId("en", 0.95, 0.95)) == []
    # a weak identification (espeak-ng German: de 0.16, en 0.09) counts only when the words do not come through
    weak = LanguageId("de", 0.16, 0.09)
    assert flags(y, rate, score=wrong, language_id=weak) == ["wrong-language"]
    right = score_text(SENTENCE, SENTENCE, norm)
    assert flags(y, rate, score=right, language_id=weak) == []
    assert flags(y, rate, voice_measured=False) == ["no-voice"]


def test_synthetic_faults(clean) -> None:
    y, rate = clean
    with_nan = y.copy()
    with_nan[100:110] = np.nan
    assert "non-finite" in flags(with_nan, rate)
    tail = np.concatenate([y, np.zeros(rate * 3, dtype=np.float32)])
    assert flags(tail, rate) == ["long-pause"]  # 3 s of dead air after the sentence
    capped = np.concatenate([y] * 8)  # about 30 s: XTTS's 602-code cap
    assert "too-long" in flags(capped, rate)
    assert "too-long" in flags(y, rate, cap_hit=True)
    # a one-word input taking 3 s is normal for XTTS, not runaway
    assert flags(y[: int(rate * 3.2)], rate, text="Yes.") == []


def test_stats_round_trip_and_old_cache_entries(clean) -> None:
    y, rate = clean
    stats = signal_stats(y, rate)
    assert SignalStats.from_dict(stats.to_dict()).loudness == pytest.approx(stats.loudness, abs=1e-4)
    with pytest.raises(KeyError):
        SignalStats.from_dict({k: v for k, v in stats.to_dict().items() if k != "loudness"})
    short = signal_stats(y[: rate // 5], rate)
    assert np.isnan(short.loudness)  # BS.1770 needs 400 ms blocks: n/a, not a number made up


def test_wav_files_written_by_the_helpers_are_real_audio(tmp_path: Path) -> None:
    y, rate = read(espeak(tmp_path / "a.wav", "Hello.", "de"))
    assert rate == 22050 and y.size > rate // 4
