"""Would coqui-tts load this checkpoint? The engine's verdict, and the key accounting the key rules share.

``Xtts.load_checkpoint(strict=True)`` (coqui-tts) reads ``model.pth`` in two attempts: first a plain
``torch.load(weights_only=True)``; when that raises ``UnpicklingError`` (the file pickles config objects), again
inside ``TTS.tts.models.xtts._legacy_safe_globals()``, which allows a few config classes under the module paths the
released XTTS-v2 used. A pickled global outside that list makes coqui raise ``UnpicklingError: Unsupported global``.
The list is read from the installed coqui-tts itself (:func:`coqui_allowed_globals`), never kept by hand. Then the
state dict is stripped of trainer prefixes and loaded strictly: missing, unexpected or mis-shaped keys, tensors
that carry no loadable data, and non-tensor entries all make it fail.
"""

from __future__ import annotations

import json
import logging
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from xtts_qa.cache import atomic_write_bytes, cache_dir

if TYPE_CHECKING:
    from xtts_qa.rules.base import Context

log = logging.getLogger("xtts_qa")

__all__ = [
    "expected_keys",
    "missing_keys",
    "unexpected_keys",
    "shape_mismatches",
    "uses_v1_layout",
    "coqui_allowed_globals",
    "pickled_globals",
    "refused_globals",
    "load_verdict",
]


def _extras_present(ctx: Context) -> set[str]:
    arch = ctx.arch
    assert arch is not None
    return {k for k in ctx.tensors if k in arch.inference_extra}


def uses_v1_layout(ctx: Context) -> bool:
    """The checkpoint carries the complete set of gpt_inference keys (how XTTS v1 was saved)."""
    arch = ctx.arch
    assert arch is not None
    return bool(arch.inference_extra) and _extras_present(ctx) == set(arch.inference_extra)


def extras_present(ctx: Context) -> set[str]:
    """The gpt_inference keys the checkpoint stores."""
    return _extras_present(ctx)


def expected_keys(ctx: Context) -> dict[str, tuple[tuple[int, ...], str]]:
    """Key -> (shape, dtype) that ``Xtts.load_state_dict(strict=True)`` will demand."""
    arch = ctx.arch
    assert arch is not None
    return {**arch.model, **arch.inference_extra} if uses_v1_layout(ctx) else dict(arch.model)


def _refused(ctx: Context) -> dict[str, str]:
    """Tensors the loader kept out of the scan (meta, sparse, absurd metadata): XQ604 reports them, not XQ101."""
    ckpt = ctx.candidate.checkpoint
    return dict(getattr(ckpt, "tensor_problems", None) or {})


def missing_keys(ctx: Context) -> list[str]:
    refused = _refused(ctx)
    return [k for k in expected_keys(ctx) if k not in ctx.tensors and k not in refused]


def unexpected_keys(ctx: Context) -> list[str]:
    expected = expected_keys(ctx)
    return [k for k in ctx.tensors if k not in expected]


def shape_mismatches(ctx: Context) -> list[tuple[str, tuple[int, ...], tuple[int, ...]]]:
    expected = expected_keys(ctx)
    return [
        (k, tuple(v.shape), expected[k][0])
        for k, v in ctx.tensors.items()
        if k in expected and tuple(v.shape) != expected[k][0]
    ]


def _coqui_version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("coqui-tts")
    except importlib.metadata.PackageNotFoundError:
        return "absent"


@lru_cache(maxsize=1)
def coqui_allowed_globals() -> frozenset[str] | None:
    """Qualified names of the pickled classes the installed coqui-tts accepts in a model.pth.

    Read from coqui-tts's own ``_legacy_safe_globals()`` context (the names its classes carry inside it), cached
    on disk per coqui-tts and torch version so a later check does not import coqui-tts. None when coqui-tts cannot
    be imported (the verdict then does not judge pickled configs).
    """
    import torch

    version = f"{_coqui_version()}-torch{torch.__version__}"
    memo = cache_dir("coqui") / f"allowed-globals-{version}.json"
    try:
        data = json.loads(memo.read_text())
        if isinstance(data, dict) and data.get("version") == version and isinstance(data.get("names"), list):
            return frozenset(str(n) for n in data["names"])
    except (OSError, ValueError):
        pass
    try:
        from TTS.tts.models import xtts as coqui_xtts

        with coqui_xtts._legacy_safe_globals():
            names = sorted(
                str(o[1]) if isinstance(o, tuple) else f"{o.__module__}.{o.__qualname__}"
                for o in torch.serialization.get_safe_globals()
            )
    except Exception as exc:
        log.warning("cannot read coqui-tts's allowed pickle globals (%s: %s)", type(exc).__name__, exc)
        return None
    try:
        atomic_write_bytes(memo, json.dumps({"version": version, "names": names}).encode())
    except OSError as exc:
        log.debug("cannot cache coqui's allowed globals: %s", exc)
    return frozenset(names)


def pickled_globals(path: Path) -> list[str]:
    """The non-torch globals a zip checkpoint's pickle references (classes of pickled config objects)."""
    import torch

    if not zipfile.is_zipfile(path):
        return []
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception:
        return []


def refused_globals(path: Path) -> list[str] | None:
    """Pickled globals of ``path`` that the installed coqui-tts would refuse (``UnpicklingError``); None when the
    file pickles such globals but coqui-tts's allowlist could not be read (nobody can tell)."""
    found = pickled_globals(path)
    if not found:
        return []
    allowed = coqui_allowed_globals()
    if allowed is None:
        return None
    return [g for g in found if g not in allowed]


def load_verdict(ctx: Context) -> tuple[bool | None, list[str]]:
    """Would ``Xtts.load_checkpoint(strict=True)`` succeed on the candidate? Returns (verdict, reasons); the verdict
    is None when it cannot be told (pickled classes, but coqui-tts's allowlist is unreadable here)."""
    c = ctx.candidate
    reasons = [f"{p.role} file: {p.problem}" for p in c.problems if p.role in ("model", "config", "vocab")]
    speakers = c.problem("speakers")
    if speakers and speakers.kind != "missing":
        reasons.append(f"speakers file: {speakers.problem}")
    model_path = c.paths.get("model")
    unknown = False
    if not reasons and model_path is not None and model_path.is_file():
        refused = refused_globals(model_path)
        if refused is None:
            unknown = True
        elif refused:
            reasons.append(
                f"coqui-tts {_coqui_version()} refuses to unpickle {', '.join(refused[:3])} "
                "(UnpicklingError: Unsupported global): the config was pickled as an object under a module path "
                "coqui does not allow"
            )
    ckpt = c.checkpoint
    if not reasons and ckpt is not None and ckpt.foreign:
        reasons.append(f"{len(ckpt.foreign)} non-tensor state-dict entries")
    problems = _refused(ctx)
    if not reasons and problems:
        first = next(iter(problems.items()))
        reasons.append(f"{len(problems)} tensors coqui cannot load (e.g. {first[0]}: {first[1]})")
    if not reasons and ctx.arch is None and ctx.arch_error:
        reasons.append(f"config.json does not build a model ({ctx.arch_error})")
    if not reasons and ctx.arch is not None:
        if missing_keys(ctx):
            reasons.append(f"{len(missing_keys(ctx))} missing keys")
        if unexpected_keys(ctx):
            reasons.append(f"{len(unexpected_keys(ctx))} unexpected keys")
        if shape_mismatches(ctx):
            reasons.append(f"{len(shape_mismatches(ctx))} shape mismatches")
    if unknown and not reasons:
        return None, ["model.pth pickles config classes and coqui-tts's allowlist could not be read: cannot tell"]
    return not reasons, reasons
