"""``[tool.xtts_qa]`` in pyproject.toml: the settings shared by the ``xtts-qa`` commands and the pytest plugin.

The command line always wins: read the file with :func:`load_settings`, then overlay what the user typed with
:meth:`Settings.merged`. Relative paths in the file resolve against the folder of the pyproject.toml that holds them,
so a setting means the same file whichever folder a command runs from.

Example::

    [tool.xtts_qa]
    base = "models/base"
    intent = "finetune"
    fail_on = "warning"
    baseline = "qa/accepted.json"
    history = "qa/history.sqlite"
    report_dir = "qa/reports"
    engine = "ray"
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from xtts_qa.errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

__all__ = ["FAIL_ON", "ENGINES", "INTENTS", "Settings", "find_pyproject", "load_settings"]

#: the values ``fail_on`` accepts: the least severe finding that fails a run (as :mod:`xtts_qa.verdict` reads them)
FAIL_ON = ("error", "warning", "info")
#: the execution engines (``xtts-qa sweep --engine``)
ENGINES = ("local", "ray")
#: what a user means to do with a checkpoint (``check --intent``)
INTENTS = ("inference", "finetune", "restore")


def _default_ray_address() -> str | None:
    return os.environ.get("RAY_ADDRESS") or None


@dataclass(frozen=True)
class Settings:
    """The shared settings of xtts_qa, from ``[tool.xtts_qa]`` and then the command line.

    Attributes:
        base: base model folder (the model the checkpoints were fine-tuned from).
        intent: "inference", "finetune" or "restore"; None means the command's default ("inference").
        select: rules to run (codes, prefixes, groups or names); empty means all.
        ignore: rules to skip.
        fail_on: the least severe finding that fails a run: "error" (default), "warning" or "info".
        baseline: file of accepted findings (by checkpoint digest and code).
        history: the run-history file (SQLite) that ``gate``, ``compare`` and ``dashboard`` read.
        report_dir: where run records (summary.json, sentences.jsonl, report.html) are written.
        format: output format of ``check`` ("text", "json", "junit", "sarif", "github").
        engine: "local" (default) or "ray".
        ray_address: Ray cluster address; defaults to the ``RAY_ADDRESS`` environment variable.
        suites: evaluation suite files or names.
        gates: gate expressions (``wer.delta <= 0.02``).
        checkpoints: checkpoint files, folders or globs.
        device: torch device for evaluation ("cpu", "cuda"); None means automatic.
        strict: treat a skipped rule or an unmeasured figure as a failure.
        source: the pyproject.toml these settings were read from, or None.
    """

    base: Path | None = None
    intent: str | None = None
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    fail_on: str = "error"
    baseline: Path | None = None
    history: Path | None = None
    report_dir: Path | None = None
    format: str | None = None
    engine: str = "local"
    ray_address: str | None = field(default_factory=_default_ray_address)
    suites: tuple[str, ...] = ()
    gates: tuple[str, ...] = ()
    checkpoints: tuple[str, ...] = ()
    device: str | None = None
    strict: bool = False
    source: Path | None = None

    def merged(self, **cli_values: Any) -> Settings:
        """A copy where every command-line value that is not None wins over the file's.

        Empty tuples/lists from an ``append`` option that was not given are treated as "not given" too, so
        ``--select`` on the command line replaces the file's list only when the user typed it.
        """
        known = {f.name for f in fields(self)} - {"source"}
        unknown = sorted(set(cli_values) - known)
        if unknown:
            raise TypeError(f"Settings.merged: unknown setting(s) {', '.join(unknown)}")
        changes: dict[str, Any] = {}
        for name, value in cli_values.items():
            if value is None:
                continue
            if isinstance(value, (list, tuple)):
                if not value:
                    continue
                value = tuple(str(v) for v in value)
            elif name in _PATH_KEYS:
                value = Path(value)
            changes[name] = value
        _check_choices(changes, self.source)
        return replace(self, **changes)


_PATH_KEYS = {"base", "baseline", "history", "report_dir"}
_LIST_KEYS = {"select", "ignore", "suites", "gates", "checkpoints"}
_STR_KEYS = {"intent", "fail_on", "format", "engine", "ray_address", "device"}
_BOOL_KEYS = {"strict"}
_CHOICES = {
    "intent": INTENTS,
    "fail_on": FAIL_ON,
    "engine": ENGINES,
    "format": ("text", "json", "junit", "sarif", "github"),
}
#: accepted spellings of each key (TOML users write kebab-case as often as snake_case)
_ALIASES = {k.replace("_", "-"): k for k in _PATH_KEYS | _LIST_KEYS | _STR_KEYS | _BOOL_KEYS if "_" in k}


def _check_choices(values: Mapping[str, Any], source: Path | None) -> None:
    for key, choices in _CHOICES.items():
        value = values.get(key)
        if value is not None and value not in choices:
            where = source if source is not None else Path("<command line>")
            raise InputError(
                where,
                f"[tool.xtts_qa] {key} = {value!r} is not one of {', '.join(choices)}.",
                f"set {key} to one of: {', '.join(choices)}.",
            )


def find_pyproject(start: Path | None = None) -> Path | None:
    """The nearest ``pyproject.toml`` in ``start`` (default: the current folder) or one of its parents."""
    here = Path(start if start is not None else Path.cwd()).resolve()
    if here.is_file():
        here = here.parent
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_settings(start: Path | None = None) -> Settings:
    """Read ``[tool.xtts_qa]`` from the nearest pyproject.toml walking up from ``start`` (default: cwd).

    No pyproject.toml, or one without the table, gives the defaults. An unknown key, a value of the wrong type or an
    invalid choice raises :class:`InputError` naming the file and the key.
    """
    pyproject = find_pyproject(start)
    if pyproject is None:
        return Settings()
    try:
        with open(pyproject, "rb") as handle:
            document = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(pyproject, f"is not valid TOML ({exc}).", "fix the TOML syntax (see the line named).") from exc
    tool = document.get("tool", {})
    table = tool.get("xtts_qa", tool.get("xtts-qa")) if isinstance(tool, dict) else None
    if table is None:
        return Settings(source=pyproject)
    if not isinstance(table, dict):
        raise InputError(pyproject, "[tool.xtts_qa] is not a table.", "write it as a [tool.xtts_qa] section.")
    return _from_table(table, pyproject)


def _from_table(table: Mapping[str, Any], pyproject: Path) -> Settings:
    folder = pyproject.parent
    values: dict[str, Any] = {}
    valid = sorted(_PATH_KEYS | _LIST_KEYS | _STR_KEYS | _BOOL_KEYS)
    for raw_key, value in table.items():
        key = _ALIASES.get(raw_key, raw_key)
        if key in _PATH_KEYS:
            _expect(isinstance(value, str) and value != "", pyproject, raw_key, "a non-empty path string")
            path = Path(os.path.expanduser(value))
            values[key] = path if path.is_absolute() else (folder / path).resolve()
        elif key in _LIST_KEYS:
            if isinstance(value, str):
                value = [value]
            _expect(
                isinstance(value, list) and all(isinstance(v, str) for v in value),
                pyproject,
                raw_key,
                "a list of strings",
            )
            if key == "checkpoints":
                value = [v if os.path.isabs(os.path.expanduser(v)) else str(folder / v) for v in value]
            values[key] = tuple(value)
        elif key in _STR_KEYS:
            _expect(isinstance(value, str), pyproject, raw_key, "a string")
            values[key] = value
        elif key in _BOOL_KEYS:
            _expect(isinstance(value, bool), pyproject, raw_key, "true or false")
            values[key] = value
        else:
            raise InputError(
                pyproject,
                f"[tool.xtts_qa] has an unknown key {raw_key!r}.",
                f"remove it or use one of: {', '.join(valid)}.",
            )
    _check_choices(values, pyproject)
    return Settings(source=pyproject, **values)


def _expect(ok: bool, pyproject: Path, key: str, kind: str) -> None:
    if not ok:
        raise InputError(pyproject, f"[tool.xtts_qa] {key} must be {kind}.", f"write {key} as {kind}.")
