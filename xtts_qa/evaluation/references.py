"""Speaker references: a suite's speaker specs -> validated mono clips on disk.

User wav files are validated (:func:`~xtts_qa.evaluation.audio.load_reference`) and, when they are not already
mono 22.05 kHz, a resampled copy is written to the cache. ``espeak`` references are generated with espeak-ng
into the cache (keyed by espeak-ng's version and the voice settings), then validated like any other clip. The
reference text reaches espeak-ng through a file (``-f``), never as a command-line argument.
"""

from __future__ import annotations

import functools
import logging
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from xtts_qa.errors import UsageError
from xtts_qa.evaluation.artifact_cache import EvalCache, file_digest, key_of
from xtts_qa.evaluation.audio import Clip, ReferenceLimits, load_reference, write_wav
from xtts_qa.evaluation.suite import SpeakerSpec

log = logging.getLogger("xtts_qa")

__all__ = ["REFERENCE_RATE", "Reference", "prepare_reference", "espeak_version"]

#: the rate XTTS loads references at (``get_conditioning_latents(load_sr=22050)``)
REFERENCE_RATE = 22050


@dataclass(frozen=True)
class Reference:
    """A validated speaker reference.

    Attributes:
        name: the speaker's name in the suite.
        path: a mono 22.05 kHz wav (the user's file when it already is one, else a cached copy).
        source: what the user wrote (a wav path or ``espeak:VOICE``).
        digest: content hash of ``path`` (part of every audio cache key).
        clip: the samples.
    """

    name: str
    path: Path
    source: str
    digest: str
    clip: Clip


@functools.cache
def espeak_version(executable: str = "espeak-ng") -> str:
    """``espeak-ng --version``'s first line.

    Raises:
        UsageError: espeak-ng is not installed.
    """
    exe = shutil.which(executable)
    if exe is None:
        raise UsageError(
            f"{executable} is not installed but the suite generates its references with it; "
            "install it (apt-get install espeak-ng) or give wav paths under speakers:."
        )
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    return (out.stdout.strip().splitlines() or ["unknown"])[0]


def _espeak(spec: SpeakerSpec, cache: EvalCache) -> Path:
    version = espeak_version()
    key = key_of("espeak-reference", version, spec.espeak_voice, spec.espeak_text, spec.espeak_speed, spec.espeak_pitch)
    target = cache.root / "references" / f"{key}.wav"
    if target.is_file():
        return target
    cmd = ["espeak-ng", "-v", spec.espeak_voice]
    if spec.espeak_speed:
        cmd += ["-s", str(spec.espeak_speed)]
    if spec.espeak_pitch is not None:
        cmd += ["-p", str(spec.espeak_pitch)]
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        raw = Path(tmp) / "ref.wav"
        # the text goes through a file (-f), never as an argument espeak-ng could parse as an option, and stdin is
        # empty so nothing can make espeak-ng wait for input
        textfile = Path(tmp) / "ref.txt"
        textfile.write_text(spec.espeak_text + "\n", encoding="utf-8")
        try:
            done = subprocess.run(
                cmd + ["-w", str(raw), "-f", str(textfile)],
                capture_output=True,
                text=True,
                timeout=120,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise UsageError(f"espeak-ng timed out generating the reference of speaker {spec.name!r}.") from None
        if done.returncode != 0 or not raw.is_file():
            raise UsageError(
                f"espeak-ng could not generate the reference of speaker {spec.name!r} "
                f"(voice {spec.espeak_voice!r}): {done.stderr.strip()[:200] or 'no output'}"
            )
        raw.replace(target)
    return target


def prepare_reference(spec: SpeakerSpec, cache: EvalCache, limits: ReferenceLimits | None = None) -> Reference:
    """Resolve, validate and (when needed) resample one speaker's reference.

    Raises:
        InputError: the reference clip is missing, unreadable, stereo, too low a rate, too short or silent.
        UsageError: espeak-ng is needed but missing, or failed.
    """
    if spec.path is not None:
        source, path = str(spec.path), spec.path
    else:
        source, path = f"espeak:{spec.espeak_voice}", _espeak(spec, cache)
    clip = load_reference(path, limits)
    if clip.sample_rate != REFERENCE_RATE:
        digest = file_digest(path)
        path = cache.root / "references" / f"{digest}-{REFERENCE_RATE}.wav"
        if not path.is_file():
            write_wav(path, clip.at(REFERENCE_RATE), REFERENCE_RATE)
        clip = Clip(clip.at(REFERENCE_RATE), REFERENCE_RATE, path)
    if clip.seconds > 30:
        log.warning("%s: %.1f s long; XTTS uses only the first 30 s (3-8 s references work best)", source, clip.seconds)
    return Reference(spec.name, Path(path), source, file_digest(path), clip)
