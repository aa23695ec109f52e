"""Synthesis backends: XTTS through coqui-tts's own loader and ``inference()``, or any command line that writes a wav.

A backend knows its :meth:`~Backend.identity` without loading anything (content hashes of the checkpoint files,
the settings, the environment), so the runner can serve a whole run from the cache and never load the model.
The XTTS model is loaded once, on the first cache miss.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import string
import subprocess
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from xtts_qa.device import resolve_device
from xtts_qa.errors import InputError, UsageError
from xtts_qa.evaluation.artifact_cache import EvalCache, file_digest
from xtts_qa.evaluation.references import Reference
from xtts_qa.evaluation.suite import Sentence
from xtts_qa.versions import package_versions

log = logging.getLogger("xtts_qa")

__all__ = [
    "SynthOptions",
    "SynthRequest",
    "SynthOutput",
    "Backend",
    "XttsBackend",
    "CommandBackend",
    "DEFAULT_COMMAND",
    "ESPEAK_VOICES",
    "resolve_device",
    "environment_versions",
]

#: the command backend's default template: espeak-ng, one voice per language, the text read from a file (-f) so
#: that no sentence can ever be parsed as an option
DEFAULT_COMMAND = "espeak-ng -v {voice} -w {out} -f {textfile}"

#: XTTS language -> espeak-ng voice (the ``{voice}`` placeholder's default)
ESPEAK_VOICES = {
    "en": "en-us",
    "es": "es",
    "fr": "fr",
    "de": "de",
    "it": "it",
    "pt": "pt",
    "pl": "pl",
    "tr": "tr",
    "ru": "ru",
    "nl": "nl",
    "cs": "cs",
    "ar": "ar",
    "zh-cn": "cmn",
    "hu": "hu",
    "ko": "ko",
    "ja": "ja",
    "hi": "hi",
}
_PLACEHOLDERS = {"text", "textfile", "out", "voice", "language", "model", "reference", "seed"}


@dataclass(frozen=True)
class SynthOptions:
    """XTTS generation settings (coqui-tts ``Xtts.inference`` defaults), part of every audio cache key.

    Attributes:
        temperature, length_penalty, repetition_penalty, top_k, top_p, do_sample, num_beams, speed: passed to
            ``Xtts.inference``.
        enable_text_splitting: let XTTS split long texts into sentences.
        max_audio_tokens: lower the generation cap (602 audio codes, about 27.9 s) to bound run time; None keeps it.
        gpt_cond_len, gpt_cond_chunk_len, max_ref_length: passed to ``get_conditioning_latents``.
    """

    temperature: float = 0.75
    length_penalty: float = 1.0
    repetition_penalty: float = 10.0
    top_k: int = 50
    top_p: float = 0.85
    do_sample: bool = True
    num_beams: int = 1
    speed: float = 1.0
    enable_text_splitting: bool = False
    max_audio_tokens: int | None = None
    gpt_cond_len: int = 6
    gpt_cond_chunk_len: int = 6
    max_ref_length: int = 30

    def generation_kwargs(self) -> dict[str, Any]:
        return {
            k: v
            for k, v in asdict(self).items()
            if k not in ("max_audio_tokens", "gpt_cond_len", "gpt_cond_chunk_len", "max_ref_length")
        }


@dataclass(frozen=True)
class SynthRequest:
    """One sentence to synthesise.

    Attributes:
        sentence: the suite sentence (text, language, voice).
        reference: the speaker reference to clone.
        seed: the seed set before generation.
    """

    sentence: Sentence
    reference: Reference
    seed: int


@dataclass(frozen=True)
class SynthOutput:
    """What a backend produced.

    Attributes:
        samples: mono float32 waveform, exactly as produced (may hold NaN or clip).
        sample_rate: its rate.
        seconds: wall time of the synthesis (model loading excluded).
        codes: XTTS audio codes generated, when known.
        cap_hit: True when generation stopped at the code cap instead of a stop token.
    """

    samples: np.ndarray
    sample_rate: int
    seconds: float
    codes: int | None = None
    cap_hit: bool = False


class Backend(Protocol):
    """What the runner needs from a synthesis backend."""

    name: str
    target: str

    def identity(self) -> dict[str, Any]:
        """Everything that determines the audio, besides the request (hashed into the cache key)."""

    def describe(self) -> dict[str, Any]:
        """Provenance: hashes and settings for the report."""

    def synthesize(self, request: SynthRequest) -> SynthOutput:
        """Synthesise one sentence."""

    def close(self) -> None:
        """Release the model."""


def environment_versions() -> dict[str, str]:
    """:func:`xtts_qa.versions.package_versions` plus the CUDA build torch runs on (synthesis cache keys use it)."""
    import torch

    return {**package_versions(), "cuda": torch.version.cuda or "none"}


class XttsBackend:
    """An XTTS-v2 model folder (or checkpoint file with its support files beside it), loaded once with coqui-tts.

    Attributes:
        target: the model folder or checkpoint file.
        options: generation settings.
        device: ``cpu`` or ``cuda``.
    """

    name = "xtts"

    def __init__(
        self,
        target: str | Path,
        options: SynthOptions | None = None,
        device: str = "auto",
        cache: EvalCache | None = None,
    ) -> None:
        from xtts_qa.checkpoint import locate_files

        self.target = str(target)
        self.options = options or SynthOptions()
        self.device = resolve_device(device)
        self._cache = cache or EvalCache()
        self.folder, paths = locate_files(target)
        self.model_path, self.config_path, self.vocab_path = paths["model"], paths["config"], paths["vocab"]
        for role, path in (("model", self.model_path), ("config", self.config_path), ("vocab", self.vocab_path)):
            if not path.is_file():
                raise InputError(
                    path,
                    f"the {role} file XTTS needs is missing.",
                    "run `xtts-qa check` on the folder and copy the file from the base model.",
                )
        self._digests = {
            "model": file_digest(self.model_path),
            "config": file_digest(self.config_path),
            "vocab": file_digest(self.vocab_path),
        }
        self._model: Any = None
        self._latents: dict[str, Any] = {}
        self.load_seconds = 0.0

    def identity(self) -> dict[str, Any]:
        env = environment_versions()
        return {
            "backend": "xtts",
            "files": self._digests,
            "options": asdict(self.options),
            "device": self.device,
            "env": {k: env[k] for k in ("torch", "coqui-tts", "transformers", "cuda")},
        }

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "xtts",
            "target": self.target,
            "hash": self._digests["model"],
            "files": self._digests,
            "options": asdict(self.options),
            "device": self.device,
        }

    def _checkpoint_for_coqui(self) -> Path:
        """The file coqui-tts may read. Its ``_load_checkpoint`` re-saves a checkpoint that pickles an XttsConfig
        object over the original file; for such a file a sanitised copy (config as a plain dict) is written to the
        cache and loaded instead, so the user's file is never written and coqui-tts never unpickles the object."""
        import torch

        from xtts_qa.safeload import PickledConfig, load_torch, plain

        blob = load_torch(self.model_path)  # refuses unsafe pickles before coqui-tts ever sees the file
        if not (isinstance(blob, dict) and isinstance(blob.get("config"), PickledConfig)):
            return self.model_path
        copy = self._cache.root / "legacy-checkpoints" / f"{self._digests['model']}.pth"
        if not copy.is_file():
            log.warning(
                "%s pickles a config object, which coqui-tts would rewrite in place; loading a sanitised copy (%s)",
                self.model_path,
                copy,
            )
            copy.parent.mkdir(parents=True, exist_ok=True)
            tmp = copy.with_suffix(f".{os.getpid()}.tmp")
            torch.save({**{k: v for k, v in blob.items() if k != "config"}, "config": plain(blob["config"])}, tmp)
            os.replace(tmp, copy)
        return copy

    def load(self) -> None:
        """Load the model once (a no-op when already loaded)."""
        if self._model is not None:
            return
        started = time.perf_counter()
        from TTS.tts.configs.xtts_config import XttsConfig
        from TTS.tts.models.xtts import Xtts

        checkpoint = self._checkpoint_for_coqui()
        config = XttsConfig()
        config.load_json(str(self.config_path))
        with warnings.catch_warnings():  # init_from_config is the documented entry point; its deprecation note is noise
            warnings.simplefilter("ignore")
            model = Xtts.init_from_config(config)
        # speakers_xtts.pth is not needed (voices are cloned from the suite's references) and a broken one would
        # stop the load, so point coqui-tts at a file that does not exist
        no_speakers = Path(tempfile.gettempdir()) / "xtts_qa-no-speakers-file.pth"
        try:
            model.load_checkpoint(
                config,
                checkpoint_dir=str(self.folder),
                checkpoint_path=str(checkpoint),
                vocab_path=str(self.vocab_path),
                eval=True,
                strict=True,
                speaker_file_path=str(no_speakers),
            )
        except Exception as exc:  # coqui-tts and torch raise many types here; all mean "this model does not load"
            raise InputError(
                self.model_path,
                f"coqui-tts cannot load this model ({str(exc).splitlines()[0][:200]}).",
                "run `xtts-qa check` on it to see which file is wrong.",
            ) from None
        model.to(self.device)
        if self.options.max_audio_tokens:
            model.gpt.max_gen_mel_tokens = min(int(self.options.max_audio_tokens), model.gpt.max_gen_mel_tokens)
        self._model = model
        self.load_seconds = time.perf_counter() - started
        log.info("loaded %s on %s in %.1fs", self.target, self.device, self.load_seconds)

    def _conditioning(self, reference: Reference) -> tuple[Any, Any]:
        if reference.digest not in self._latents:
            o = self.options
            self._latents[reference.digest] = self._model.get_conditioning_latents(
                audio_path=[str(reference.path)],
                gpt_cond_len=o.gpt_cond_len,
                gpt_cond_chunk_len=o.gpt_cond_chunk_len,
                max_ref_length=o.max_ref_length,
            )
        return self._latents[reference.digest]

    def synthesize(self, request: SynthRequest) -> SynthOutput:
        import torch

        self.load()
        gpt_latent, speaker_embedding = self._conditioning(request.reference)
        torch.manual_seed(request.seed)
        if self.device.startswith("cuda"):
            torch.cuda.manual_seed_all(request.seed)
        started = time.perf_counter()
        with torch.inference_mode():
            out = self._model.inference(
                request.sentence.text,
                request.sentence.language,
                gpt_latent,
                speaker_embedding,
                **self.options.generation_kwargs(),
            )
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        codes = int(out["gpt_latents"].shape[1])
        cap = int(self._model.gpt.max_gen_mel_tokens)
        samples = np.asarray(out["wav"], dtype=np.float32).reshape(-1)
        return SynthOutput(samples, int(self._model.args.output_sample_rate), seconds, codes, codes >= cap)

    def close(self) -> None:
        self._model = None
        self._latents.clear()


class CommandBackend:
    """Any command line that writes a wav, e.g. ``espeak-ng -v {voice} -w {out} -f {textfile}``.

    The template is split like a shell would (``shlex``) but never run through a shell; each argument is then
    filled in: ``{text}`` or ``{textfile}`` (one is required), ``{out}`` (required), ``{voice}`` (the sentence's
    voice, else the language's espeak-ng voice), ``{language}``, ``{model}`` (the CANDIDATE / BASE argument),
    ``{reference}`` (the speaker clip) and ``{seed}``. The command's stdin is empty (/dev/null).

    Which fields are safe where: ``{textfile}`` (a UTF-8 file holding the sentence) is safe anywhere. ``{text}``
    is the sentence itself: safe after a ``--`` argument, or inside an argument that starts with fixed text
    (``--text={text}``); as a bare argument before ``--`` a sentence that starts with ``-`` would be parsed as an
    option (``-f/etc/hostname`` makes espeak-ng read that file), so such a sentence is refused there.
    ``{out}``, ``{reference}`` and ``{seed}`` are values xtts_qa makes; ``{voice}``, ``{language}`` and ``{model}``
    come from the suite or the command line and are safe as the value of an option (``-v {voice}``).

    Attributes:
        target: the model string (``{model}``).
        template: the command template.
        timeout: seconds allowed per sentence.
    """

    name = "command"

    def __init__(self, target: str, template: str = DEFAULT_COMMAND, timeout: float = 120.0) -> None:
        self.target = str(target)
        self.template = template
        self.timeout = timeout
        try:
            self._argv = shlex.split(template)
        except ValueError as exc:
            raise UsageError(f"--command {template!r} cannot be split into arguments: {exc}.") from None
        if not self._argv:
            raise UsageError("--command is empty.")
        try:
            used = {f for arg in self._argv for _, f, _, _ in string.Formatter().parse(arg) if f is not None}
        except ValueError as exc:
            raise UsageError(
                f"--command {template[:200]!r} is not a valid template ({exc}); write literal braces as {{{{ }}}}."
            ) from None
        unknown = used - _PLACEHOLDERS
        if unknown:
            raise UsageError(f"--command uses unknown placeholders {sorted(unknown)}; known: {sorted(_PLACEHOLDERS)}.")
        if "out" not in used or not used & {"text", "textfile"}:
            raise UsageError(
                "--command must contain {out} and {text} or {textfile} "
                "(the backend reads the wav the command writes to {out})."
            )
        end = self._argv.index("--") if "--" in self._argv else len(self._argv)
        #: argument positions where a sentence starting with "-" would be read as an option
        self._option_slots = {i for i, arg in enumerate(self._argv) if i < end and arg.startswith("{text}")}
        exe = shutil.which(self._argv[0])
        if exe is None:
            raise UsageError(f"--command: {self._argv[0]!r} is not an executable on PATH.")
        self._exe_digest = file_digest(exe)

    def identity(self) -> dict[str, Any]:
        return {"backend": "command", "template": self.template, "model": self.target, "executable": self._exe_digest}

    def describe(self) -> dict[str, Any]:
        return {"backend": "command", "target": self.target, "hash": self._exe_digest, "template": self.template}

    def synthesize(self, request: SynthRequest) -> SynthOutput:
        import soundfile as sf

        s = request.sentence
        if "\0" in s.text:
            raise UsageError(f"sentence {s.id!r} contains a NUL character, which no command line can carry.")
        if self._option_slots and s.text.lstrip().startswith("-"):
            raise UsageError(
                f"sentence {s.id!r} starts with '-', which {self._argv[0]} would parse as an option where "
                "--command puts {text}; put {text} after `--`, or use {textfile}."
            )
        with tempfile.TemporaryDirectory(prefix="xtts_qa-cmd-") as tmp:
            out = Path(tmp) / "out.wav"
            textfile = Path(tmp) / "text.txt"
            textfile.write_text(s.text + "\n", encoding="utf-8")
            values = {
                "text": s.text,
                "textfile": str(textfile),
                "out": str(out),
                "voice": s.voice or ESPEAK_VOICES.get(s.language, s.language),
                "language": s.language,
                "model": self.target,
                "reference": str(request.reference.path),
                "seed": request.seed,
            }
            argv = [arg.format(**values) for arg in self._argv]
            started = time.perf_counter()
            try:
                done = subprocess.run(
                    argv, capture_output=True, text=True, timeout=self.timeout, stdin=subprocess.DEVNULL
                )
            except subprocess.TimeoutExpired:
                raise UsageError(f"--command timed out after {self.timeout:.0f} s on sentence {s.id!r}.") from None
            except (OSError, ValueError) as exc:  # E2BIG for a huge sentence, ENOEXEC, ...
                raise UsageError(
                    f"--command could not be started for sentence {s.id!r} "
                    f"({exc.__class__.__name__}: {str(exc)[:120]}); pass long text with {{textfile}}."
                ) from None
            seconds = time.perf_counter() - started
            if done.returncode != 0 or not out.is_file():
                detail = (done.stderr or done.stdout).strip()[:200] or "it wrote no wav file where {out} pointed"
                raise UsageError(f"--command failed on sentence {s.id!r} (exit {done.returncode}): {detail}")
            data, rate = sf.read(str(out), dtype="float32", always_2d=True)
        return SynthOutput(data.mean(axis=1).astype(np.float32), int(rate), seconds)

    def close(self) -> None:
        pass
