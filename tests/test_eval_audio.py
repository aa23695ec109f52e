"""Reference clips that cannot be used, and what the speaker encoder hears.

The speech is real (espeak-ng) and the similarity comes from the real resemblyzer encoder. Damaged speech and the
flags it raises: test_eval_signals.py (signals) and test_eval_matrix.py (the whole pipeline).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from eval_helpers import coloured_noise, encoder, espeak, read, write

from xtts_qa.errors import InputError
from xtts_qa.evaluation.artifact_cache import EvalCache
from xtts_qa.evaluation.audio import load_reference
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


@pytest.mark.parametrize(
    ("kind", "problem", "fix"),
    [
        ("missing", "not found", "path"),
        ("silence", "silent", "recording"),
        ("low-rate", "8000 Hz", "22.05 kHz"),
        ("stereo", "2 channels", "-c 1"),
        ("too-short", "0.50 s long", "longer clip"),
        ("not-audio", "not a readable audio file", "WAV"),
        ("empty", "empty", "again"),
    ],
)
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
    spec = SpeakerSpec(
        "narrator", espeak_voice="en-us", espeak_text="This is a reference of a few seconds for the voice."
    )
    first = prepare_reference(spec, EvalCache(tmp_path))
    mtime = first.path.stat().st_mtime_ns
    again = prepare_reference(spec, EvalCache(tmp_path))
    assert again.path == first.path and again.digest == first.digest and first.path.stat().st_mtime_ns == mtime
    assert first.clip.seconds > 2


# -- damaged speech ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_similarity_sees_the_voice_not_the_words(speech) -> None:
    clean, rate, folder = speech
    other_text, _ = read(espeak(folder / "other.wav", "Every morning the baker opens his shop before sunrise."))
    other_voice, _ = read(espeak(folder / "voice.wav", voice="en-us+f3"))
    enc = encoder()
    e_clean, e_text, e_voice = enc.embed(clean, rate), enc.embed(other_text, rate), enc.embed(other_voice, rate)
    e_noise = enc.embed(coloured_noise(len(clean), "white") * 0.3 * float(np.max(np.abs(clean))), rate)
    assert cosine(e_clean, e_text) > 0.85
    assert cosine(e_clean, e_text) > cosine(e_clean, e_voice)
    assert cosine(e_clean, e_noise) < cosine(e_clean, e_voice)
    assert enc.embed(np.zeros(rate * 2, dtype=np.float32), rate) is None
    assert cosine(None, e_clean) is None  # unmeasurable: n/a, never 0
