"""Read checkpoint files without ever executing a pickle.

Every ``.pth`` is read with ``torch.load(weights_only=True)`` and memory-mapped where the format allows it.
The only non-tensor classes allowed are coqui-tts's config classes, and even those are not imported: each
is mapped to a :class:`PickledConfig` stand-in that just keeps the pickled fields, so reading a checkpoint
never needs (or runs) coqui-tts code. A file that needs any other global is refused, naming those globals.
"""

from __future__ import annotations

import logging
import pickle
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from xtts_qa.errors import InputError
from xtts_qa.inputs import describe_os_error, read_json, reading, require_regular_file
from xtts_qa.limits import MAX_NESTING, nesting_depth

log = logging.getLogger("xtts_qa")

__all__ = ["ALLOWED_CONFIG_CLASSES", "PickledConfig", "load_torch", "load_json", "plain"]

#: Fully qualified names of the coqui-tts classes a checkpoint may pickle (released XTTS-v2 files pickle
#: XttsConfig and friends under their old module paths; GPTTrainer may pickle its own configs).
ALLOWED_CONFIG_CLASSES: tuple[str, ...] = (
    "TTS.tts.configs.xtts_config.XttsConfig",
    "TTS.tts.configs.xtts_config.XttsArgs",
    "TTS.tts.configs.xtts_config.XttsAudioConfig",
    "TTS.tts.models.xtts.XttsArgs",
    "TTS.tts.models.xtts.XttsAudioConfig",
    "TTS.config.shared_configs.BaseDatasetConfig",
    "TTS.config.shared_configs.BaseAudioConfig",
    "TTS.tts.configs.shared_configs.CharactersConfig",
    "TTS.tts.layers.xtts.trainer.gpt_trainer.GPTArgs",
    "TTS.tts.layers.xtts.trainer.gpt_trainer.GPTTrainerConfig",
    "TTS.tts.layers.xtts.trainer.gpt_trainer.XttsAudioConfig",
)


class PickledConfig:
    """Inert stand-in for a pickled coqui config object: it only stores the pickled fields."""

    qualified_name = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.fields: dict[str, Any] = dict(kwargs)

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
            state = {**(state[0] or {}), **(state[1] or {})}
        self.fields = dict(state) if isinstance(state, dict) else {"state": state}

    def __repr__(self) -> str:
        return f"PickledConfig({self.qualified_name})"


_STAND_INS: list[Callable[..., Any] | tuple[Callable[..., Any], str]] = [
    (type(name.rsplit(".", 1)[1], (PickledConfig,), {"qualified_name": name}), name) for name in ALLOWED_CONFIG_CLASSES
]


def plain(obj: Any) -> Any:
    """Turn stand-ins (and containers holding them) into plain dicts and lists.

    Raises:
        ValueError: ``obj`` nests deeper than :data:`xtts_qa.limits.MAX_NESTING` levels or contains itself.
    """
    if nesting_depth(obj) > MAX_NESTING:
        raise ValueError(f"holds an object nested more than {MAX_NESTING} levels deep (or one that contains itself)")
    return _plain(obj)


def _plain(obj: Any) -> Any:
    if isinstance(obj, PickledConfig):
        return {k: _plain(v) for k, v in obj.fields.items()}
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _require_file(path: Path) -> None:
    require_regular_file(path)


def load_torch(path: str | Path, *, mmap: bool = True) -> Any:
    """Load a ``.pth`` file safely (weights only, coqui config stand-ins, memory-mapped when possible).

    Raises:
        InputError: the file is missing, empty, truncated, not a PyTorch file, or needs globals we refuse.
    """
    path = Path(path)
    _require_file(path)
    with reading(path):
        with open(path, "rb") as fh:
            magic = fh.read(4)
    is_zip = magic[:2] == b"PK"
    if is_zip and not _zip_readable(path):
        raise InputError(
            path,
            "truncated or corrupt zip archive (no central directory): the save or download was cut short.",
            "copy or export the file again and compare its size with the original.",
        )
    try:
        with torch.serialization.safe_globals(_STAND_INS):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and is_zip)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Unsupported global" in text or "not an allowed global" in text or "GLOBAL" in text:
            raise InputError(
                path,
                f"refused: unpickling it would need globals that are not plain tensors or coqui configs "
                f"({', '.join(_unsafe_globals(path, text)) or 'unknown'}); loading them could run arbitrary code.",
                "re-save the checkpoint as a plain state dict (torch.save({'model': model.state_dict()}, ...)) "
                "from code you trust.",
            ) from None
        raise InputError(
            path, f"cannot be read as a PyTorch checkpoint ({_first_line(text)}).", "check that this is the right file."
        ) from None
    except OSError as exc:
        problem, fix = describe_os_error(exc)
        raise InputError(path, problem, fix) from None
    except RecursionError:
        raise InputError(
            path, f"nests too deeply to read (more than {MAX_NESTING} levels).", "re-save it as a plain state dict."
        ) from None
    except MemoryError:
        raise InputError(
            path,
            "needs more memory to read than this check may use (see README: Resource limits).",
            "check that this is the right file.",
        ) from None
    except Exception as exc:
        text = _first_line(str(exc))
        if "NestedTensorImpl" in text:
            problem = "holds a nested tensor, which no state dict can load."
        elif "central directory" in text or "zip archive" in text or "PytorchStreamReader" in text:
            problem = f"corrupt checkpoint archive ({text}): the save or download was cut short."
        elif isinstance(exc, EOFError) or "Ran out of input" in text:
            problem = "ends too early (truncated file)."
        else:
            problem = f"cannot be read as a PyTorch checkpoint ({text})."
        raise InputError(path, problem, "copy or export the file again.") from None


def _zip_readable(path: Path) -> bool:
    try:
        return zipfile.is_zipfile(path)
    except Exception:
        return False


_GLOBAL_IN_MESSAGE = re.compile(r"GLOBAL ([A-Za-z_][\w.]*)")


def _unsafe_globals(path: Path, message: str = "") -> list[str]:
    """The refused globals: from the archive's pickle when torch can list them, else from torch's message
    (legacy-format files, and numpy arrays, which the archive scan does not name)."""
    allowed = set(ALLOWED_CONFIG_CLASSES)
    try:
        found = [g for g in torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) if g not in allowed]
    except Exception:
        found = []
    for name in _GLOBAL_IN_MESSAGE.findall(message):
        if name not in found and name not in allowed:
            found.append(name)
    return found[:10]


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "no details"
    return line[:200]


def load_json(path: str | Path) -> Any:
    """Read a JSON file (size and nesting bounded); every failure becomes an :class:`InputError` naming the file."""
    return read_json(path)
