"""Helpers for the evaluation tests: real espeak-ng speech, ways to damage it, and models loaded once per process.

Run as a script it is a synthesiser for the command backend that speaks with espeak-ng and then damages the
speech the way a broken TTS model would (``python tests/eval_helpers.py DAMAGE VOICE OUT TEXT``), so the
degraded-speech matrix goes through the whole ``xtts-qa eval`` pipeline. DAMAGE is ``clean`` or
``kind[:arg]``: ``noise:white:5`` (colour white/pink/brown, SNR in dB, or ``pure``), ``gain:-25`` (dB),
``pause:2.5`` (seconds of silence inserted mid-sentence), ``tempo:1.6``, ``pitch:600`` (cents), ``truncate:0.4``
(keep that share), ``loop:2``, ``reverse``, ``voice:en-us+f3``, ``language:de``, ``garble:Word`` (sentences starting
with Word are replaced by unrelated words in the same voice), ``silence``, or ``@FILE``: a JSON file mapping
each sentence's text to its damage (one suite run covers a whole matrix).
"""

from __future__ import annotations

import functools
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."
HELPERS = Path(__file__).resolve()
#: the matrix's synthesiser, as a command-backend template ({model} is the damage)
DAMAGE_COMMAND = f"{sys.executable} {HELPERS} {{model}} {{voice}} {{out}} {{text}}"
_GARBLE = "Seven purple engines whistled across the frozen library of maps."
_GERMAN = "Der Zug fährt morgen früh um acht Uhr vom Hauptbahnhof ab."


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


def coloured_noise(n: int, colour: str, seed: int = 0) -> np.ndarray:
    """Unit-RMS noise with a 1/f^alpha power spectrum: white (0), pink (1), brown (2)."""
    alpha = {"white": 0.0, "pink": 1.0, "brown": 2.0}[colour]
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    k = np.arange(len(spectrum), dtype=float)
    k[0] = 1.0
    y = np.fft.irfft(spectrum / k ** (alpha / 2), n)
    return (y / np.std(y)).astype(np.float32)


def _sox(samples: np.ndarray, rate: int, *effect: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
        write(src, samples, rate)
        subprocess.run(["sox", str(src), str(dst), *effect], check=True, capture_output=True)
        return read(dst)[0]


def damage(kind: str, clean: np.ndarray, rate: int) -> np.ndarray:
    """``clean`` damaged as ``kind`` says (see the module doc); the text-level damages are done in :func:`main`."""
    name, _, arg = kind.partition(":")
    rms = float(np.sqrt(np.mean(clean**2)))
    if name.startswith("clean") or name in ("voice", "language", "garble"):
        return clean
    if name == "noise":
        colour, _, snr = arg.partition(":")
        noise = coloured_noise(len(clean), colour) * rms
        return noise if snr == "pure" else clean + noise * 10 ** (-float(snr) / 20)
    if name == "gain":
        return clean * 10 ** (float(arg) / 20)
    if name == "pause":
        words = np.flatnonzero(np.abs(clean) > 0.05)
        cut = int(words[len(words) // 2])  # inside the sentence, between two loud samples
        return np.concatenate([clean[:cut], np.zeros(int(float(arg) * rate), dtype=np.float32), clean[cut:]])
    if name == "tempo":
        return _sox(clean, rate, "tempo", "-s", arg)
    if name == "pitch":
        return _sox(clean, rate, "pitch", arg)
    if name == "truncate":
        return clean[: int(len(clean) * float(arg))]
    if name == "loop":
        return np.concatenate([clean] * int(arg))
    if name == "reverse":
        return clean[::-1].copy()
    if name == "silence":
        return np.zeros_like(clean)
    raise SystemExit(f"unknown damage {kind!r}")


def main(argv: list[str]) -> int:
    kind, voice, out, text = argv
    if kind.startswith("@"):
        import json

        kind = json.loads(Path(kind[1:]).read_text()).get(text, "clean")
    name, _, arg = kind.partition(":")
    if name == "voice":
        voice = arg
    elif name == "language":
        voice, text = arg, _GERMAN
    elif name == "garble" and text.split()[0].strip(",.") == arg:
        text = _GARBLE
    with tempfile.TemporaryDirectory() as tmp:
        clean, rate = read(espeak(Path(tmp) / "clean.wav", text, voice))
    y = damage(kind, clean, rate)
    sf.write(out, y, rate, subtype="FLOAT")  # float: a gain beyond full scale reaches the evaluator unclipped
    return 0


@functools.cache
def transcriber():
    """The default ASR (bundled multilingual Whisper base), loaded once per test process."""
    from xtts_qa.evaluation.asr import AsrOptions, Transcriber

    return Transcriber(AsrOptions(workers=1))


@functools.cache
def encoder():
    from xtts_qa.evaluation.similarity import SpeakerEncoder

    return SpeakerEncoder("cpu")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
