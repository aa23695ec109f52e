"""Reference clips that cannot be used, and damaged speech caught by the metric one would expect.

The speech is real (espeak-ng), the transcripts come from the real faster-whisper tiny.en and the similarity
from the real resemblyzer encoder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from eval_helpers import SENTENCE, damaged, encoder, espeak, read, transcriber, write

from xtts_qa.errors import InputError
from xtts_qa.evaluation.audio import load_reference
from xtts_qa.evaluation.cache import EvalCache
from xtts_qa.evaluation.metrics import HALLUCINATION_WER, score_text, signal_flags, signal_stats
from xtts_qa.evaluation.normalize import normaliser_for
from xtts_qa.evaluation.references import REFERENCE_RATE, prepare_reference
from xtts_qa.evaluation.similarity import cosine
from xtts_qa.evaluation.suite import SpeakerSpec


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, int, Path]:
    folder = tmp_path_factory.mktemp("speech")
    path = espeak(folder / "clean.wav")
    samples, rate = read(path)
    return samples, rate, folder


# -- broken references -----------------------------------------------------------------------------------

def _broken(kind: str, folder: Path, clean: np.ndarray, rate: int) -> Path:
    path = folder / f"ref-{kind}.wav"
    if kind == "missing":
        return path
    if kind == "silence":
        return write(path, np.zeros(rate * 4, dtype=np.float32), rate)
    if kind == "low-rate":
        return espeak(path, rate=8000)
    if kind == "stereo":
        return write(path, np.stack([clean, clean], axis=1), rate)
    if kind == "too-short":
        return write(path, clean[: rate // 2], rate)
    if kind == "not-audio":
        path.write_text("this is not a wav file")
        return path
    if kind == "empty":
        path.write_bytes(b"")
        return path
    raise AssertionError(kind)


@pytest.mark.parametrize(("kind", "problem", "fix"), [
    ("missing", "not found", "path"),
    ("silence", "silent", "recording"),
    ("low-rate", "8000 Hz", "22.05 kHz"),
    ("stereo", "2 channels", "-c 1"),
    ("too-short", "0.50 s long", "longer clip"),
    ("not-audio", "not a readable audio file", "WAV"),
    ("empty", "empty", "again"),
])
def test_unusable_reference_names_the_file_and_the_fix(speech, kind: str, problem: str, fix: str) -> None:
    clean, rate, folder = speech
    path = _broken(kind, folder, clean, rate)
    with pytest.raises(InputError) as info:
        load_reference(path)
    assert info.value.path == path
    assert problem in info.value.problem and fix in info.value.fix
    assert str(path) in str(info.value)


def test_other_sample_rates_are_resampled(speech, tmp_path: Path) -> None:
    clean, _, folder = speech
    path = espeak(folder / "ref-44k.wav", rate=44100)
    ref = prepare_reference(SpeakerSpec("me", path=path), EvalCache(tmp_path))
    assert ref.clip.sample_rate == REFERENCE_RATE and ref.path != path
    assert read(ref.path)[1] == REFERENCE_RATE
    assert abs(ref.clip.seconds - len(clean) / 22050) < 0.05


def test_espeak_reference_is_generated_once(tmp_path: Path) -> None:
    spec = SpeakerSpec("narrator", espeak_voice="en-us", espeak_text="This is a reference of a few seconds for the voice.")
    first = prepare_reference(spec, EvalCache(tmp_path))
    mtime = first.path.stat().st_mtime_ns
    again = prepare_reference(spec, EvalCache(tmp_path))
    assert again.path == first.path and again.digest == first.digest and first.path.stat().st_mtime_ns == mtime
    assert first.clip.seconds > 2


# -- damaged speech ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def verdicts(speech) -> dict[str, tuple[list[str], float, str]]:
    """flags, WER and transcript of the clean clip and of each damaged version."""
    clean, rate, folder = speech
    clips = {"clean": clean, **damaged(clean, rate)}
    paths = [(write(folder / f"d-{name}.wav", y, rate), "en") for name, y in clips.items()]
    texts = transcriber().transcribe_many(paths)
    out = {}
    for (name, y), text in zip(clips.items(), texts):
        flags = signal_flags(signal_stats(y, rate), SENTENCE, "en")
        out[name] = (flags, score_text(SENTENCE, text, normaliser_for("en")).wer, text)
    return out


@pytest.mark.slow
@pytest.mark.parametrize(("damage", "flag", "min_wer"), [
    ("noise", "noise-like", 0.9),      # no words survive, and the spectrum is flat
    ("reversed", None, HALLUCINATION_WER),  # sounds like speech, so only the transcript gives it away
    ("truncated", "truncated", 0.5),   # deletions
    ("looped", "runaway", 2.0),        # insertions: the sentence said four times
    ("silence", "silent", 0.99),
])
def test_damage_is_flagged_by_the_expected_metric(verdicts, damage: str, flag: str | None, min_wer: float) -> None:
    clean_flags, clean_wer, _ = verdicts["clean"]
    flags, wer, text = verdicts[damage]
    assert clean_flags == [] and clean_wer < 0.3
    if flag is not None:
        assert flag in flags, (flags, text)
    assert wer > min_wer, text


@pytest.mark.slow
def test_similarity_sees_the_voice_not_the_words(speech) -> None:
    clean, rate, folder = speech
    other_text, _ = read(espeak(folder / "other.wav", "Every morning the baker opens his shop before sunrise."))
    other_voice, _ = read(espeak(folder / "voice.wav", voice="en-us+f3"))
    enc = encoder()
    e_clean, e_text, e_voice = enc.embed(clean, rate), enc.embed(other_text, rate), enc.embed(other_voice, rate)
    e_noise = enc.embed(damaged(clean, rate)["noise"], rate)
    assert cosine(e_clean, e_text) > 0.85
    assert cosine(e_clean, e_text) > cosine(e_clean, e_voice)
    assert cosine(e_clean, e_noise) < cosine(e_clean, e_voice)
    assert enc.embed(np.zeros(rate * 2, dtype=np.float32), rate) is None
    assert cosine(None, e_clean) == 0.0


def test_signal_checks_on_synthetic_faults(speech) -> None:
    clean, rate, _ = speech
    with_nan = clean.copy()
    with_nan[100:110] = np.nan
    assert "non-finite" in signal_flags(signal_stats(with_nan, rate), SENTENCE, "en")
    assert "clipping" in signal_flags(signal_stats(np.clip(clean * 8, -1, 1), rate), SENTENCE, "en")
    tail = np.concatenate([clean, np.zeros(rate * 3, dtype=np.float32)])
    head = np.concatenate([np.zeros(rate * 3, dtype=np.float32), clean])
    assert signal_flags(signal_stats(tail, rate), SENTENCE, "en") == ["trailing-silence"]
    assert signal_flags(signal_stats(head, rate), SENTENCE, "en") == ["leading-silence"]
    capped = np.concatenate([clean] * 8)  # about 30 s: XTTS's 602-code cap
    assert "cap-hit" in signal_flags(signal_stats(capped, rate), SENTENCE, "en")
    assert "cap-hit" in signal_flags(signal_stats(clean, rate), SENTENCE, "en", cap_hit=True)
    # a one-word input taking 3 s is normal for XTTS, not runaway
    assert signal_flags(signal_stats(clean[: int(rate * 3.2)], rate), "Yes.", "en") == []
