"""Files -> one normalised view of an XTTS checkpoint (a :class:`Bundle`).

Accepts a model folder (model.pth, config.json, vocab.json, dvae.pth, mel_stats.pth, speakers_xtts.pth) or a
single trainer checkpoint file (best_model.pth, checkpoint_N.pth) whose support files sit beside it or are named
in its config. Every file is read once, safely (:mod:`xtts_qa.safeload`); a file that cannot be read becomes a
:class:`LoadProblem` and the rest is still read. Prefixes (``xtts.``) and weight-norm names (``weight_g`` /
``weight_v``) are normalised here, once, so every rule sees the inference namespace.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from xtts_qa.errors import InputError
from xtts_qa.inputs import reading, safe_exists
from xtts_qa.limits import TensorBudget, tensor_problem
from xtts_qa.safeload import PickledConfig, load_json, load_torch, plain

log = logging.getLogger("xtts_qa")

__all__ = [
    "ROLES",
    "LoadProblem",
    "LoadedCheckpoint",
    "Bundle",
    "open_bundle",
    "locate_files",
    "normalise_keys",
    "strip_dvae_prefix",
]

#: role -> default file name in a model folder
ROLES: dict[str, str] = {
    "model": "model.pth",
    "config": "config.json",
    "vocab": "vocab.json",
    "dvae": "dvae.pth",
    "mel_stats": "mel_stats.pth",
    "speakers": "speakers_xtts.pth",
}
#: config.model_args fields that point at support files (GPTTrainer configs)
_CONFIG_POINTERS = {"vocab": "tokenizer_file", "dvae": "dvae_checkpoint", "mel_stats": "mel_norm_file"}
_TRAINER_EXTRA_PREFIXES = ("torch_mel_spectrogram_style_encoder.", "torch_mel_spectrogram_dvae.")
_WEIGHT_NORM = re.compile(r"^(.*)\.weight_([gv])$")


@dataclass(frozen=True)
class LoadProblem:
    """A file that is missing or could not be read.

    Attributes:
        role: which file (model, config, vocab, dvae, mel_stats, speakers).
        path: where it was looked for.
        problem: what went wrong.
        fix: what to do.
        kind: ``missing`` (no such file), ``refused`` (it would need unsafe pickle globals) or ``unreadable``.
    """

    role: str
    path: str
    problem: str
    fix: str
    kind: str = "unreadable"


@dataclass
class LoadedCheckpoint:
    """The model checkpoint file, classified and normalised.

    Attributes:
        layout: ``inference`` (released/inference model.pth), ``trainer`` (GPTTrainer checkpoint with optimizer),
            ``compacted`` (trainer form without optimizer and dvae: AllTalk / xtts-finetune-webui exports),
            ``bare`` (a state dict with no wrapper), ``mixed`` (prefixed and unprefixed keys together).
        tensors: the XTTS state dict in the inference namespace (``gpt.*``, ``hifigan_decoder.*``, ``mel_stats``).
        dvae_tensors: ``dvae.*`` keys embedded by GPTTrainer (prefix stripped).
        trainer_tensors: ``torch_mel_spectrogram_*`` keys embedded by GPTTrainer.
        raw_keys: every key as stored.
        renamed: raw key -> normalised key, for each weight-norm rename.
        collisions: normalised key -> the raw keys that mapped to it (more than one).
        top_level: the wrapper's non-model fields (epoch, step, optimizer, ...), summarised.
        embedded_config: the config dict pickled inside the checkpoint, if any.
        foreign: top-level model entries that are not tensors.
        tensor_problems: normalised key -> why coqui-tts could not load that tensor (meta, sparse, quantized) or
            why the resource contract refuses to read it (a declared size its storage does not hold). These
            tensors are kept out of ``tensors``, ``dvae_tensors`` and ``trainer_tensors``, so no scan touches them.
    """

    layout: str
    tensors: dict[str, torch.Tensor]
    dvae_tensors: dict[str, torch.Tensor]
    trainer_tensors: dict[str, torch.Tensor]
    raw_keys: list[str]
    renamed: dict[str, str]
    collisions: dict[str, list[str]]
    top_level: dict[str, Any]
    embedded_config: dict[str, Any] | None
    foreign: list[str] = field(default_factory=list)
    tensor_problems: dict[str, str] = field(default_factory=dict)

    def lookup(self, raw_key: str) -> torch.Tensor | None:
        """The tensor stored under a raw (un-normalised) key."""
        key = raw_key[len("xtts.") :] if raw_key.startswith("xtts.") else raw_key
        if key.startswith("dvae."):
            return self.dvae_tensors.get(key[len("dvae.") :])
        if key in self.trainer_tensors:
            return self.trainer_tensors[key]
        return self.tensors.get(self.renamed.get(raw_key, key))


@dataclass
class Bundle:
    """Everything read from one model (folder or checkpoint file).

    Attributes:
        target: what the user pointed at.
        paths: role -> path of each file found (read or not).
        problems: files missing or unreadable.
        checkpoint: the model checkpoint, or None when unreadable.
        config: the config dict (config.json, else the checkpoint's embedded config), or None.
        config_source: where ``config`` came from.
        vocab: token -> id (with added tokens), or None.
        dvae: the dvae.pth state dict as stored (keys unchanged), or None.
        dvae_raw_type: the type of the object stored in dvae.pth (should be a dict of tensors).
        mel_stats: the mel_stats.pth tensor, or None.
        speakers: whatever speakers_xtts.pth holds, or None.
    """

    target: Path
    paths: dict[str, Path] = field(default_factory=dict)
    problems: list[LoadProblem] = field(default_factory=list)
    checkpoint: LoadedCheckpoint | None = None
    config: dict[str, Any] | None = None
    config_source: str | None = None
    vocab: dict[str, int] | None = None
    dvae: dict[str, Any] | None = None
    dvae_raw_type: str | None = None
    mel_stats: Any = None
    speakers: Any = None

    @property
    def model_args(self) -> dict[str, Any]:
        """``config["model_args"]`` (empty when there is no config)."""
        args = (self.config or {}).get("model_args")
        return dict(args) if isinstance(args, dict) else {}

    @property
    def text_tokens(self) -> int | None:
        """Text vocabulary size as coqui-tts computes it: max(token id) + 1."""
        return max(self.vocab.values()) + 1 if self.vocab else None

    def vocab_digest(self) -> str | None:
        """A hash of the token -> id mapping (formatting-independent)."""
        if self.vocab is None:
            return None
        canon = json.dumps(sorted(self.vocab.items(), key=lambda kv: (kv[1], kv[0])), ensure_ascii=False)
        return hashlib.sha256(canon.encode()).hexdigest()[:16]

    def problem(self, role: str) -> LoadProblem | None:
        return next((p for p in self.problems if p.role == role), None)

    def describe(self, role: str) -> str:
        """Path of a role's file for messages."""
        return str(self.paths.get(role, self.target / ROLES[role]))


def _pick_model_file(folder: Path) -> Path:
    for name in ("model.pth", "best_model.pth"):
        if (folder / name).is_file():
            return folder / name
    best = sorted(folder.glob("best_model_*.pth"), key=_step_of)
    if best:
        return best[-1]
    steps = sorted(folder.glob("checkpoint_*.pth"), key=_step_of)
    if steps:
        return steps[-1]
    return folder / "model.pth"


def _step_of(path: Path) -> int:
    digits = re.findall(r"\d+", path.stem)
    return int(digits[-1]) if digits else -1


def locate_files(target: str | Path) -> tuple[Path, dict[str, Path]]:
    """Find the role files for a folder or a checkpoint file (existence is not checked for support files).

    Raises:
        InputError: the target does not exist.
    """
    target = Path(target)
    if not target.exists():
        raise InputError(target, "does not exist.", "pass a model folder or a .pth checkpoint file.")
    if target.is_dir():
        folder, model = target, _pick_model_file(target)
    else:
        folder, model = target.parent, target
    paths = {role: folder / name for role, name in ROLES.items()}
    paths["model"] = model
    return folder, paths


def normalise_keys(
    state: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, str], dict[str, list[str]]]:
    """Split a raw state dict into (xtts, dvae, trainer-extra) parts in the inference namespace.

    Strips ``xtts.``, moves ``dvae.*`` and ``torch_mel_spectrogram_*`` aside, and renames legacy weight-norm
    parameters (``X.weight_g`` / ``X.weight_v``) to ``X.parametrizations.weight.original0/1`` as torch's
    load hook does. Returns the three parts, the renames and any collisions.
    """
    xtts: dict[str, Any] = {}
    dvae: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    renamed: dict[str, str] = {}
    sources: dict[str, list[str]] = {}
    stripped = {raw: raw[len("xtts.") :] if raw.startswith("xtts.") else raw for raw in state}
    present = set(stripped.values())
    for raw, value in state.items():
        key = stripped[raw]
        if key.startswith("dvae."):
            dvae[key[len("dvae.") :]] = value
            continue
        if key.startswith(_TRAINER_EXTRA_PREFIXES):
            extra[key] = value
            continue
        match = _WEIGHT_NORM.match(key)
        # like torch's _weight_norm_compat_hook: only a complete weight_g + weight_v pair is renamed
        if match and {f"{match.group(1)}.weight_g", f"{match.group(1)}.weight_v"} <= present:
            new = f"{match.group(1)}.parametrizations.weight.original{0 if match.group(2) == 'g' else 1}"
            renamed[raw] = new
            key = new
        sources.setdefault(key, []).append(raw)
        xtts[key] = value
    collisions = {k: v for k, v in sources.items() if len(v) > 1}
    return xtts, dvae, extra, renamed, collisions


def strip_dvae_prefix(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """DVAE tensors with a one-level ``dvae.`` / ``xtts.`` prefix removed, so a prefixed copy is compared by content."""
    return {
        (k.split(".", 1)[1] if k.startswith(("dvae.", "xtts.")) else k): v
        for k, v in state.items()
        if isinstance(v, torch.Tensor)
    }


def _normalised_name(raw: str) -> str:
    return raw[len("xtts.") :] if raw.startswith("xtts.") else raw


def _admit_tensors(candidates: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Split tensors into those safe to scan and (raw key -> reason) for those coqui-tts could not load or the
    resource contract refuses. Only metadata is read."""
    budget = TensorBudget()
    ok: dict[str, torch.Tensor] = {}
    problems: dict[str, str] = {}
    for key, t in candidates.items():
        reason = tensor_problem(t) or budget.admit(t)
        if reason:
            problems[key] = reason
        else:
            ok[key] = t
    return ok, problems


def _classify(obj: Any) -> LoadedCheckpoint:
    if not isinstance(obj, dict):
        raise ValueError(f"holds a {type(obj).__name__}, not a dict with a state dict")
    wrapped = isinstance(obj.get("model"), dict)
    state = obj["model"] if wrapped else obj
    stored = {k: v for k, v in state.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    foreign = [str(k)[:200] for k in state if not (isinstance(k, str) and isinstance(state[k], torch.Tensor))]
    if not stored:
        raise ValueError("holds no tensors" + (" under 'model'" if wrapped else ""))
    tensors, refused = _admit_tensors(stored)
    xtts, dvae, extra, renamed, collisions = normalise_keys(tensors)
    raw_keys = list(stored)
    tensor_problems = {_normalised_name(k): reason for k, reason in refused.items()}
    prefixed = sum(1 for k in stored if k.startswith("xtts."))
    unprefixed = sum(1 for k in stored if k.startswith(("gpt.", "hifigan_decoder.")) or k == "mel_stats")
    top = {k: v for k, v in obj.items() if k != "model"} if wrapped else {}
    if prefixed and unprefixed:
        layout = "mixed"
    elif prefixed:
        layout = "trainer" if (top.get("optimizer") is not None or dvae) else "compacted"
    elif not wrapped:
        layout = "bare"
    else:
        layout = "inference"
    config = top.get("config")
    embedded = plain(config) if isinstance(config, (dict, PickledConfig)) else None
    summary = {str(k)[:200]: _summarise(v) for k, v in top.items() if k != "config"}
    return LoadedCheckpoint(
        layout=layout,
        tensors=xtts,
        dvae_tensors=dvae,
        trainer_tensors=extra,
        raw_keys=raw_keys,
        renamed=renamed,
        collisions=collisions,
        top_level=summary,
        embedded_config=embedded,
        foreign=foreign,
        tensor_problems=tensor_problems,
    )


def _summarise(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, str, bool)):
        return value
    if isinstance(value, torch.Tensor):
        return f"tensor{tuple(value.shape)}"
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__}[{len(value)}]"
    if isinstance(value, dict):
        return f"dict[{len(value)}]"
    return type(value).__name__


def _read_vocab(path: Path) -> dict[str, int]:
    data = load_json(path)
    from tokenizers import Tokenizer  # the parser coqui-tts's VoiceBpeTokenizer uses

    try:
        tokenizer = Tokenizer.from_str(json.dumps(data))
    except Exception as exc:  # tokenizers raises a bare Exception subtype
        raise InputError(
            path,
            f"is JSON but not a tokenizers BPE file ({str(exc)[:160]}).",
            "copy vocab.json from the base model folder.",
        ) from None
    return dict(tokenizer.get_vocab(with_added_tokens=True))


def _resolve_pointer(bundle: Bundle, role: str, folder: Path) -> None:
    """Use a support file named in config.model_args when it is not beside the checkpoint (trainer runs)."""
    if safe_exists(bundle.paths[role]) or not bundle.config:
        return
    pointer = bundle.model_args.get(_CONFIG_POINTERS.get(role, ""), "")
    if isinstance(pointer, str) and pointer and "://" not in pointer and "\0" not in pointer:
        candidate = Path(pointer)
        candidate = candidate if candidate.is_absolute() else folder / candidate
        if safe_exists(candidate):
            bundle.paths[role] = candidate  # reading it (a folder, a FIFO, a too-long name) reports any problem


#: top-level config.json fields whose type XttsConfig (coqpit) enforces when it loads the file
_CONFIG_TYPES: dict[str, tuple[type, ...]] = {"model_args": (dict,), "audio": (dict,), "languages": (list,)}


def _config_shape_problem(config: Any) -> str | None:
    """Why coqui-tts's XttsConfig could not load this JSON value, checked on its shape only."""
    if not isinstance(config, dict):
        return f"holds a JSON {_json_type(config)}, not an object (coqui-tts's XttsConfig cannot load it)."
    for name, types in _CONFIG_TYPES.items():
        value = config.get(name)
        if value is not None and not isinstance(value, types):
            return f"{name} is a JSON {_json_type(value)}, not {'an object' if types == (dict,) else 'a list'}."
    languages = config.get("languages")
    if isinstance(languages, list) and not all(isinstance(x, str) for x in languages):
        return "languages must list language codes (strings)."
    return None


def _json_type(value: Any) -> str:
    return {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


#: what each support file must hold, as (check, description)
_PAYLOADS: dict[str, tuple[Any, str]] = {
    "dvae": (lambda v: isinstance(v, dict), "a DiscreteVAE state dict"),
    "mel_stats": (lambda v: isinstance(v, torch.Tensor), "a float tensor of shape (80,)"),
    "speakers": (lambda v: isinstance(v, dict), "a dict of speakers"),
}


def _support_tensor_problem(value: Any) -> str | None:
    """The first tensor inside a support file's payload that coqui-tts could not use or the contract refuses."""
    budget = TensorBudget()
    stack, seen = [value], 0
    while stack and seen < 100_000:
        item = stack.pop()
        seen += 1
        if isinstance(item, torch.Tensor):
            reason = tensor_problem(item) or budget.admit(item)
            if reason:
                return reason
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return None


def open_bundle(target: str | Path) -> Bundle:
    """Read every file of a model. Missing or unreadable files become :class:`LoadProblem` entries.

    Every read goes through :func:`xtts_qa.inputs.reading`, so no input can raise anything but ``InputError``.
    A support file (dvae.pth, mel_stats.pth, speakers_xtts.pth) that holds None or the wrong type of object is
    recorded like a missing file (kind ``missing``), since every consumer treats it as one.

    Raises:
        InputError: only when ``target`` itself does not exist or cannot be examined.
    """
    with reading(target, "pass a model folder or a .pth checkpoint file."):
        folder, paths = locate_files(target)
    bundle = Bundle(target=Path(target), paths=paths)

    def attempt(role: str, reader: Any) -> Any:
        path = bundle.paths[role]
        try:
            with reading(path):
                try:
                    return reader(path)
                except ValueError as err:  # our own readers' "holds no tensors", "nested too deep", ...
                    raise InputError(path, f"{err}.", "check that this is the right file.") from None
        except InputError as err:
            kind = (
                "missing" if not safe_exists(path) else "refused" if err.problem.startswith("refused") else "unreadable"
            )
            bundle.problems.append(LoadProblem(role, str(path), err.problem, err.fix, kind=kind))
        return None

    bundle.checkpoint = attempt("model", lambda p: _classify(load_torch(p)))
    config = attempt("config", load_json)
    if config is not None or (safe_exists(paths["config"]) and not bundle.problem("config")):
        problem = _config_shape_problem(config)
        if problem:
            bundle.problems.append(
                LoadProblem("config", str(paths["config"]), problem, "restore config.json from the base model folder.")
            )
            config = None
    bundle.config = config
    bundle.config_source = str(paths["config"]) if bundle.config is not None else None
    if bundle.config is None and bundle.checkpoint and bundle.checkpoint.embedded_config:
        embedded = bundle.checkpoint.embedded_config
        if _config_shape_problem(embedded) is None:
            bundle.config = embedded
            bundle.config_source = f"{paths['model']} (embedded config)"  # config.json stays reported missing
    for role in ("vocab", "dvae", "mel_stats"):
        _resolve_pointer(bundle, role, folder)
    bundle.vocab = attempt("vocab", _read_vocab)
    dvae = _support(bundle, "dvae", attempt)
    if dvae is not None:
        bundle.dvae_raw_type = type(dvae).__name__
        bundle.dvae = dvae if isinstance(dvae, dict) else None
    bundle.mel_stats = _support(bundle, "mel_stats", attempt)
    bundle.speakers = _support(bundle, "speakers", attempt)
    return bundle


def _support(bundle: Bundle, role: str, attempt: Any) -> Any:
    """Read a support file; None or a wrong-type payload is recorded like a missing file, a tensor coqui-tts could
    not use (or the contract refuses) makes the file unreadable."""
    path = bundle.paths[role]
    value = attempt(role, load_torch)
    if bundle.problem(role) is not None:
        return None
    accepts, wanted = _PAYLOADS[role]
    if not accepts(value):
        bundle.problems.append(
            LoadProblem(
                role,
                str(path),
                (
                    f"holds {'None' if value is None else 'a ' + type(value).__name__}, not {wanted}: as good as a "
                    "missing file."
                ),
                "copy it from the base model folder.",
                kind="missing",
            )
        )
        return None if value is None else value
    reason = _support_tensor_problem(value)
    if reason:
        bundle.problems.append(
            LoadProblem(
                role, str(path), f"a tensor in it cannot be used: {reason}.", "copy it from the base model folder."
            )
        )
        return None
    return value
