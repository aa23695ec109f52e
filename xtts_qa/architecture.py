"""What a checkpoint *should* contain, according to its config.json and vocab.json.

The expected key set, shapes and dtypes are never hard-coded: they come from building coqui-tts's own ``Xtts``
(and the ``DiscreteVAE`` and ``TorchMelSpectrogram`` that ``GPTTrainer`` builds) with parameters on the meta
device, which costs no memory. The result is cached as JSON per (model_args, text vocabulary size, coqui-tts
version), so a second check of the same kind of model does not import coqui-tts at all.

Before anything is built, the sizes in model_args are checked against :data:`xtts_qa.limits.MODEL_ARG_RANGES`
(a config.json asking for 100000 GPT layers is refused with the value and the allowed range, not built). Cache
entries verify themselves (format version, the key they were stored under, a checksum of the payload); a bad
entry is rebuilt and reported once. A cache folder that cannot be used (read-only, a file where a folder
should be, disk full) is an environment problem: the architecture is built in memory instead, with one warning.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.metadata
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

from xtts_qa.cache import atomic_write_bytes, cache_dir
from xtts_qa.errors import EnvironmentProblem
from xtts_qa.limits import MAX_NESTING, MODEL_ARG_RANGES, SAMPLE_RATE_RANGE, model_args_problems, nesting_depth

log = logging.getLogger("xtts_qa")

__all__ = ["Spec", "ExpectedArchitecture", "ConfigOutOfRange", "expected_architecture", "DVAE_ARGS"]

#: (shape, dtype) of one state-dict entry
Spec = tuple[tuple[int, ...], str]

#: DiscreteVAE arguments used by GPTTrainer (TTS/tts/layers/xtts/trainer/gpt_trainer.py), except num_tokens,
#: which is gpt_num_audio_tokens - 2.
DVAE_ARGS: dict[str, Any] = {
    "channels": 80,
    "normalization": None,
    "positional_dims": 1,
    "codebook_dim": 512,
    "hidden_dim": 512,
    "num_resnet_blocks": 3,
    "kernel_size": 3,
    "num_layers": 2,
    "use_transposed_convs": False,
}
_FORMAT = 3
_warned: set[str] = set()


class ConfigOutOfRange(ValueError):
    """model_args (or the text vocabulary / sample rate) ask for a model outside the resource contract."""


@dataclass(frozen=True)
class ExpectedArchitecture:
    """Expected state dicts for one config.

    Attributes:
        model: inference-namespace key -> (shape, dtype) of ``Xtts.state_dict()``.
        inference_extra: keys that ``gpt.init_gpt_for_inference()`` adds (present in XTTS v1 checkpoints).
        dvae: key -> (shape, dtype) of GPTTrainer's ``DiscreteVAE``.
        trainer_extra: GPTTrainer's ``torch_mel_spectrogram_*`` keys.
        text_tokens: text vocabulary size the model was built with.
        coqui_version: the coqui-tts version that built it.
    """

    model: dict[str, Spec]
    inference_extra: dict[str, Spec]
    dvae: dict[str, Spec]
    trainer_extra: dict[str, Spec]
    text_tokens: int
    coqui_version: str

    @property
    def trainer_key_count(self) -> int:
        """Number of keys in a GPTTrainer state dict (1023 for XTTS-v2)."""
        return len(self.model) + len(self.dvae) + len(self.trainer_extra)


@contextlib.contextmanager
def _parameters_on_meta() -> Iterator[None]:
    """Create every nn.Parameter on the meta device; buffers (mel filterbanks) stay real and small."""
    from torch import nn
    from torch.nn.modules.module import register_module_parameter_registration_hook

    def to_meta(module: nn.Module, name: str, param: nn.Parameter) -> nn.Parameter | None:
        if param.device.type == "meta":
            return None
        return nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)

    # the documented hook contract is "returns None or a new parameter"; torch's annotation says None only
    handle = register_module_parameter_registration_hook(cast("Callable[..., None]", to_meta))
    try:
        yield
    finally:
        handle.remove()


def _specs(state: dict[str, Any]) -> dict[str, Spec]:
    return {k: (tuple(int(d) for d in v.shape), str(v.dtype).replace("torch.", "")) for k, v in state.items()}


def _coqui_version() -> str:
    try:
        return importlib.metadata.version("coqui-tts")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _build(model_args: dict[str, Any], text_tokens: int | None, sample_rate: int) -> ExpectedArchitecture:
    import torch
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.layers.tortoise.arch_utils import TorchMelSpectrogram
    from TTS.tts.layers.xtts.dvae import DiscreteVAE
    from TTS.tts.models.xtts import Xtts, XttsArgs

    known = {f.name for f in dataclasses.fields(XttsArgs)}
    args = XttsArgs(**{k: v for k, v in model_args.items() if k in known})
    if text_tokens:
        args.gpt_number_text_tokens = text_tokens
    config = XttsConfig(model_args=args)
    with _parameters_on_meta(), torch.no_grad():
        model = Xtts(config)
        base = _specs(model.state_dict())
        model.gpt.init_gpt_for_inference(kv_cache=True)
        extra = {k: v for k, v in _specs(model.state_dict()).items() if k not in base}
        dvae = DiscreteVAE(num_tokens=args.gpt_num_audio_tokens - 2, **DVAE_ARGS)
        mels = {
            "torch_mel_spectrogram_style_encoder": TorchMelSpectrogram(
                filter_length=2048 if args.gpt_use_perceiver_resampler else 4096,
                hop_length=256 if args.gpt_use_perceiver_resampler else 1024,
                win_length=1024 if args.gpt_use_perceiver_resampler else 4096,
                normalize=False,
                sampling_rate=sample_rate,
                mel_fmin=0,
                mel_fmax=8000,
                n_mel_channels=80,
                mel_norm_file=None,
            ),
            "torch_mel_spectrogram_dvae": TorchMelSpectrogram(mel_norm_file=None, sampling_rate=sample_rate),
        }
    trainer_extra = {f"{name}.{k}": v for name, m in mels.items() for k, v in _specs(m.state_dict()).items()}
    return ExpectedArchitecture(
        model=base,
        inference_extra=extra,
        dvae=_specs(dvae.state_dict()),
        trainer_extra=trainer_extra,
        text_tokens=int(args.gpt_number_text_tokens),
        coqui_version=_coqui_version(),
    )


def _payload(arch: ExpectedArchitecture) -> dict[str, Any]:
    return dataclasses.asdict(arch)


def _checksum(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _from_payload(data: dict[str, Any]) -> ExpectedArchitecture:
    def specs(d: dict[str, Any]) -> dict[str, Spec]:
        return {str(k): (tuple(int(x) for x in v[0]), str(v[1])) for k, v in d.items()}

    return ExpectedArchitecture(
        model=specs(data["model"]),
        inference_extra=specs(data["inference_extra"]),
        dvae=specs(data["dvae"]),
        trainer_extra=specs(data["trainer_extra"]),
        text_tokens=int(data["text_tokens"]),
        coqui_version=str(data["coqui_version"]),
    )


def _read_entry(path: Any, key: str) -> ExpectedArchitecture | None:
    """A verified cache entry, or None (absent). A bad entry is reported once and None returned (rebuilt)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        _warn_once(f"read:{path}", "cannot read architecture cache entry %s (%s); rebuilding it", path, exc.strerror)
        return None
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or nesting_depth(data) > MAX_NESTING:
            raise ValueError("not a cache entry")
        if data.get("format") != _FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {_FORMAT}")
        if data.get("key") != key:
            raise ValueError("stored under another key")
        payload = data.get("payload")
        if not isinstance(payload, dict) or data.get("sha256") != _checksum(payload):
            raise ValueError("checksum mismatch")
        return _from_payload(payload)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as exc:
        _warn_once(f"bad:{path}", "architecture cache entry %s is invalid (%s); rebuilding it", path, str(exc)[:100])
        return None


def _warn_once(tag: str, message: str, *args: Any) -> None:
    if tag not in _warned:
        _warned.add(tag)
        log.warning(message, *args)


def _cache_path(key: str) -> Any:
    """Where the entry lives, or None when the cache folder cannot be used (warned once)."""
    try:
        return cache_dir("arch") / f"{key}.json"
    except OSError as exc:
        problem = EnvironmentProblem(
            exc.filename or "cache",
            f"the xtts_qa cache folder cannot be used ({exc.strerror or exc}).",
            "set XTTS_QA_CACHE to a writable folder.",
        )
        _warn_once("cache-dir", "%s; building the architecture in memory", problem)
        return None


def _check_bounds(model_args: dict[str, Any], text_tokens: int | None, sample_rate: int) -> None:
    problems = model_args_problems(model_args)
    lo, hi = MODEL_ARG_RANGES["gpt_number_text_tokens"]
    if text_tokens is not None and not lo <= text_tokens <= hi:
        problems.append(f"the text vocabulary has {text_tokens} tokens, outside the allowed range {lo}-{hi}")
    lo, hi = SAMPLE_RATE_RANGE
    if not lo <= sample_rate <= hi:
        problems.append(f"audio.sample_rate = {sample_rate} is outside the allowed range {lo}-{hi}")
    if problems:
        raise ConfigOutOfRange("; ".join(problems[:4]) + " (resource limits: see README)")


def expected_architecture(
    model_args: dict[str, Any], text_tokens: int | None, sample_rate: int = 22050
) -> ExpectedArchitecture:
    """The architecture coqui-tts builds for these model_args and this text vocabulary size (cached).

    Raises:
        ConfigOutOfRange: a size in model_args is outside :data:`xtts_qa.limits.MODEL_ARG_RANGES` (nothing is built).
        Exception: whatever coqui-tts raises on a config it cannot build.
    """
    _check_bounds(model_args, text_tokens, sample_rate)
    key_src = json.dumps(
        {"args": model_args, "text_tokens": text_tokens, "sr": sample_rate, "coqui": _coqui_version(), "f": _FORMAT},
        sort_keys=True,
        default=str,
    )
    key = hashlib.sha256(key_src.encode()).hexdigest()[:24]
    path = _cache_path(key)
    if path is not None:
        cached = _read_entry(path, key)
        if cached is not None:
            return cached
    log.info("building expected architecture with coqui-tts%s", f" (cached in {path})" if path else "")
    arch = _build(model_args, text_tokens, sample_rate)
    if path is not None:
        payload = _payload(arch)
        entry = {"format": _FORMAT, "key": key, "sha256": _checksum(payload), "payload": payload}
        try:
            atomic_write_bytes(path, json.dumps(entry).encode())  # concurrent checks never read half a file
        except OSError as exc:
            _warn_once(
                "cache-write",
                "%s",
                EnvironmentProblem(
                    path.parent,
                    f"cannot write the architecture cache ({exc.strerror or exc}); built in memory this time.",
                    "free disk space or set XTTS_QA_CACHE to a writable folder.",
                ),
            )
    return arch
