"""The plugin's options: one ``xtts_qa`` group, each setting on the command line, in the ini file and in
``[tool.xtts_qa]`` of pyproject.toml (command line wins, then ini, then ``[tool.xtts_qa]``), resolved once into a frozen
:class:`PluginSettings`.

This module is imported on every pytest run where the package is installed, so it stays light: no torch, numpy,
coqui-tts or :mod:`xtts_qa.engine` (they load only when an xtts item or fixture is used).

The plugin is opt-in: it adds items only when the command line asks for them (``--xtts-checkpoint``, ``--xtts``,
``-m health`` / ``-m eval``, or an xtts item id such as ``finetune::XQ401-dvae-key-set``). Checkpoints named in the ini
file or ``[tool.xtts_qa]`` alone never take over an unrelated ``pytest tests/test_unit.py`` run.

The rule options (base, intent, select, ignore) are the ``xtts-qa check`` definitions from
:func:`xtts_qa.cli.add_rule_options`, registered here with an ``--xtts-`` prefix so both stay in step.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from xtts_qa.cli import add_rule_options, split_list
from xtts_qa.errors import XttsQaError
from xtts_qa.labels import checkpoint_labels

__all__ = [
    "PluginSettings",
    "Target",
    "add_options",
    "read_settings",
    "expand_targets",
    "resolve_device",
    "opt_in_reason",
    "xtts_id_args",
    "unread_config",
]

PREFIX = "xtts-"
_OFF = ("", "none", "off", "false", "no")
#: the default history, relative to the report folder (written out here: reporting.history imports numpy)
DEFAULT_HISTORY = "reports/history.sqlite"
#: files pytest reads its configuration from, in its own order of preference
_CONFIG_FILES = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")


class _PrefixedGroup:
    """Lets argparse-style definitions (``add_argument``) register on a pytest option group under a prefix."""

    def __init__(self, group: Any, parser: pytest.Parser) -> None:
        self.group = group
        self.parser = parser

    def add_argument(self, *flags: str, **attrs: Any) -> None:
        name = flags[0].lstrip("-")
        if attrs.get("action") != "append":
            attrs["default"] = None  # None means "not given", so the ini value can apply
        attrs["dest"] = "xtts_" + name.replace("-", "_")
        self.group.addoption(f"--{PREFIX}{name}", **attrs)


def add_options(parser: pytest.Parser) -> None:
    """Register the ``xtts_qa`` option group and its ini settings."""
    group = parser.getgroup("xtts_qa", "xtts_qa: health checks and evaluation of XTTS-v2 checkpoints")
    group.addoption(
        "--xtts",
        action="store_true",
        default=False,
        dest="xtts",
        help="test the checkpoints named in the ini file or [tool.xtts_qa] (the plugin adds no items unless asked: "
        "--xtts, --xtts-checkpoint, -m health or -m eval)",
    )
    group.addoption(
        "--xtts-checkpoint",
        action="append",
        default=[],
        dest="xtts_checkpoint",
        metavar="PATH|GLOB",
        help="checkpoint to test (model folder or .pth file; globs such as 'runs/*/checkpoint_*.pth'); repeatable. "
        "Prefer --xtts-checkpoint=PATH: with a space, pytest may pick its rootdir from PATH and skip your ini file",
    )
    add_rule_options(_PrefixedGroup(group, parser))  # type: ignore[arg-type]
    group.addoption(
        "--xtts-suite",
        action="append",
        default=[],
        dest="xtts_suite",
        metavar="FILE|NAME",
        help="evaluation suite to run per checkpoint (eval items); repeatable",
    )
    group.addoption(
        "--xtts-device",
        dest="xtts_device",
        default=None,
        help="device for synthesis: auto (default), cpu, cuda or cuda:N; under xdist each worker gets its own GPU",
    )
    group.addoption(
        "--xtts-report-dir",
        dest="xtts_report_dir",
        default=None,
        metavar="DIR",
        help="where each run writes summary.json, sentences.jsonl and report.html (default: reports; 'off' to disable)",
    )
    group.addoption(
        "--xtts-history",
        dest="xtts_history",
        default=None,
        metavar="FILE",
        help=f"SQLite run history to append to (default: {DEFAULT_HISTORY}; 'off' to disable)",
    )
    group.addoption(
        "--xtts-gate",
        action="append",
        default=[],
        dest="xtts_gate",
        metavar="EXPR",
        help="override a suite threshold for this run, e.g. 'wer_delta <= 0.02' or 'health.warning <= 3'; repeatable",
    )
    group.addoption(
        "--xtts-fail-on",
        dest="xtts_fail_on",
        default=None,
        choices=("error", "warning", "info"),
        help="lowest finding severity that fails the run: error (default), warning or info (as xtts-qa check)",
    )
    group.addoption(
        "--xtts-baseline",
        dest="xtts_baseline",
        default=None,
        metavar="FILE",
        help="file of accepted findings (checkpoint digest + code) that do not fail the run",
    )
    group.addoption(
        "--xtts-engine",
        dest="xtts_engine",
        default=None,
        choices=("local", "ray"),
        help="where evaluation items synthesise and score: local (this process, default) or ray (a Ray cluster; "
        "pip install 'xtts_qa[ray]')",
    )
    group.addoption(
        "--xtts-ray-address",
        dest="xtts_ray_address",
        default=None,
        metavar="ADDRESS",
        help="Ray cluster address for --xtts-engine ray (default: RAY_ADDRESS, else a local cluster)",
    )
    group.addoption(
        "--xtts-sentences",
        dest="xtts_sentences",
        default=None,
        choices=("fail", "warn"),
        help="a sentence with a failing verdict fails its item (fail, default) or only warns (warn: the suite's gates "
        "decide)",
    )
    group.addoption(
        "--xtts-label", dest="xtts_label", default=None, help="a label stored with the run (CI job, branch)"
    )

    parser.addini(
        "xtts_checkpoints",
        "checkpoints (folders, files or globs) to test with --xtts or -m health, one per line",
        type="linelist",
        default=[],
    )
    parser.addini("xtts_base", "the base model folder checkpoints are compared with", default="")
    parser.addini("xtts_suites", "evaluation suites (files or names), one per line", type="linelist", default=[])
    parser.addini("xtts_device", "device for synthesis (auto, cpu, cuda, cuda:N); default auto", default="")
    parser.addini("xtts_select", "rules to run (codes, prefixes, groups or names)", type="args", default=[])
    parser.addini("xtts_ignore", "rules to leave out", type="args", default=[])
    parser.addini("xtts_intent", "what the checkpoints are for: inference (default), finetune or restore", default="")
    parser.addini("xtts_report_dir", "report folder ('off' to disable); default reports", default="")
    parser.addini(
        "xtts_history", "SQLite run history ('off' to disable); default <report dir>/history.sqlite", default=""
    )
    parser.addini("xtts_sentences", "fail (default) or warn on a sentence with a failing verdict", default="")
    parser.addini("xtts_gates", "threshold overrides, one expression per line", type="linelist", default=[])
    parser.addini("xtts_fail_on", "lowest severity that fails the run: error (default), warning or info", default="")
    parser.addini("xtts_baseline", "file of accepted findings", default="")
    parser.addini("xtts_engine", "evaluation engine: local (default) or ray", default="")
    parser.addini("xtts_ray_address", "Ray cluster address for the ray engine", default="")


@dataclass(frozen=True)
class Target:
    """One checkpoint under test.

    Attributes:
        label: a short unique name used in test ids (``finetune``), reports and the history.
        path: the model folder or checkpoint file.
    """

    label: str
    path: Path


@dataclass(frozen=True)
class PluginSettings:
    """The plugin's settings after merging command line, ini and ``[tool.xtts_qa]``.

    Attributes:
        checkpoints: checkpoint patterns as given (absolute, normalised).
        base: the base model folder, if any.
        suites: suite files or names.
        device: requested device (auto, cpu, cuda, cuda:N).
        select: rule selection (xtts_qa.rules.select_rules semantics).
        ignore: rules left out.
        intent: inference, finetune or restore.
        report_dir: where runs are written (None: not written).
        history: the SQLite history (None: not appended).
        gates: per-run threshold overrides.
        sentences: ``fail`` (a failing sentence fails its item) or ``warn`` (it warns; the suite's gates decide).
        label: the run's label.
        fail_on: ``error`` or ``warning``: the lowest finding severity that fails the run.
        baseline: a file of accepted findings, if any.
        engine: ``local`` or ``ray`` (where evaluation items run).
        ray_address: the Ray cluster for the ray engine (None: RAY_ADDRESS, else a local cluster).
        opt_in: why the plugin adds items to this run ('' when it was not asked to).
        ids: xtts item ids given as command-line arguments (they select exactly those items).
    """

    checkpoints: tuple[str, ...] = ()
    base: Path | None = None
    suites: tuple[str, ...] = ()
    device: str = "auto"
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    intent: str = "inference"
    report_dir: Path | None = None
    history: Path | None = None
    gates: tuple[str, ...] = ()
    sentences: str = "fail"
    label: str = ""
    fail_on: str = "error"
    baseline: Path | None = None
    engine: str = "local"
    ray_address: str | None = None
    opt_in: str = ""
    ids: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        """Whether this run generates xtts items: asked for on the command line, with checkpoints to test."""
        return bool(self.opt_in) and bool(self.checkpoints)

    @property
    def policy(self) -> dict[str, Any]:
        """The verdict policy stored with the run record."""
        return {
            "fail_on": self.fail_on,
            "baseline": str(self.baseline) if self.baseline else None,
            "gates": list(self.gates),
            "sentences": self.sentences,
            "intent": self.intent,
            "engine": self.engine,
        }


def _anchor(value: str, root: Path) -> str:
    """``value`` as an absolute, normalised path (``~`` expanded, ``../`` resolved against ``root``)."""
    expanded = os.path.expanduser(str(value))
    joined = expanded if os.path.isabs(expanded) else os.path.join(root, expanded)
    return os.path.normpath(joined)


def _given(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != ()


def _project_settings(config: pytest.Config) -> tuple[Any, Path]:
    """``[tool.xtts_qa]`` from the project's pyproject.toml (via :mod:`xtts_qa.settings`), and the folder its
    relative paths are anchored to; ``(None, cwd)`` when there is none."""
    cwd = Path(config.invocation_params.dir)
    start = config.inipath.parent if config.inipath else cwd
    try:
        from xtts_qa.settings import load_settings
    except ImportError:  # the shared settings module is not in this version
        return None, start
    try:
        settings = load_settings(start)
    except XttsQaError as err:
        if opt_in_reason(config):
            raise pytest.UsageError(f"xtts_qa: {err}") from None
        return None, start  # a run that does not use the plugin is not stopped by its settings
    source = getattr(settings, "source", None)
    root = start
    if isinstance(source, (str, Path)) and str(source).endswith(".toml") and Path(source).exists():
        root = Path(source).parent
    return settings, root


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, Path)):
        return (str(value),)
    return tuple(str(v) for v in value)


def opt_in_reason(config: pytest.Config, ids: tuple[str, ...] = ()) -> str:
    """Why this run should generate xtts items ('' when nothing on the command line asks for them)."""
    opt = config.option
    if opt.xtts_checkpoint:
        return "--xtts-checkpoint"
    if getattr(opt, "xtts", False):
        return "--xtts"
    if ids:
        return "item id"
    markexpr = getattr(opt, "markexpr", "") or ""
    if markexpr and (_selects(markexpr, "health") or _selects(markexpr, "eval")):
        return f"-m {markexpr}"
    if (getattr(opt, "lf", False) or getattr(opt, "failedfirst", False)) and _last_failures_are_xtts(config):
        return "--lf (the last failures include xtts items)"
    return ""


def _last_failures_are_xtts(config: pytest.Config) -> bool:
    """Whether pytest's last-failed cache holds xtts items (``label::XQ401-...``), so that ``pytest --lf`` in a
    retry step reruns them instead of passing without them."""
    cache = getattr(config, "cache", None)
    if cache is None:
        return False
    try:
        lastfailed = cache.get("cache/lastfailed", {}) or {}
    except Exception:  # an unreadable cache is pytest's to report
        return False
    root = Path(config.rootpath)
    return any(
        sep and head and not (root / head).exists() for head, sep, _ in (str(k).partition("::") for k in lastfailed)
    )


def _selects(markexpr: str, marker: str) -> bool:
    """Whether ``-m markexpr`` picks items because they carry ``marker``: true for an item with only that marker,
    false for an item with none (so ``-m "not slow"`` does not count, ``-m "health or slow"`` does)."""
    try:
        from _pytest.mark.expression import Expression
    except ImportError:  # pragma: no cover - pytest moved its expression parser
        return marker in markexpr.split()

    def matcher(present: set[str]) -> Callable[..., bool]:
        def match(name: str, /, **kwargs: Any) -> bool:
            return name in present and not kwargs

        return match

    try:
        expression = Expression.compile(markexpr)
        return bool(expression.evaluate(matcher({marker}))) and not expression.evaluate(matcher(set()))
    except Exception:  # a bad expression is pytest's to report
        return False


def xtts_id_args(config: pytest.Config) -> list[str]:
    """Command-line arguments that are xtts item ids (``label::rest``) rather than files: their first part is no
    path that exists."""
    cwd = Path(config.invocation_params.dir)
    out = []
    for arg in config.args:
        head, sep, _ = str(arg).partition("::")
        if sep and head and not (cwd / head).exists() and not Path(head).exists():
            out.append(str(arg))
    return out


def unread_config(config: pytest.Config) -> Path | None:
    """The configuration file pytest would have read from the invocation folder, when it read another one (or none)
    because its rootdir landed elsewhere, e.g. after ``--xtts-checkpoint /elsewhere/model`` written with a space."""
    folder = Path(config.invocation_params.dir).resolve()
    for directory in (folder, *folder.parents):
        for name in _CONFIG_FILES:
            candidate = directory / name
            if not candidate.is_file():
                continue
            try:
                text = candidate.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            if name == "pyproject.toml" and "[tool.pytest" not in text and "[tool.xtts_qa" not in text:
                continue
            if name in ("tox.ini", "setup.cfg") and "[pytest]" not in text and "[tool:pytest]" not in text:
                continue
            inipath = config.inipath.resolve() if config.inipath else None
            return None if inipath == candidate.resolve() else candidate
    return None


def read_settings(config: pytest.Config, ids: tuple[str, ...] = ()) -> PluginSettings:
    """Merge command line (relative to the invocation folder), ini (relative to the ini file's folder) and
    ``[tool.xtts_qa]`` (relative to its pyproject.toml), in that order of precedence.

    Raises:
        pytest.UsageError: ``[tool.xtts_qa]`` is invalid.
    """
    opt = config.option
    cwd = Path(config.invocation_params.dir)
    ini_root = config.inipath.parent if config.inipath else config.rootpath
    project, project_root = _project_settings(config)

    def pick(cli_value: Any, ini_name: str, key: str) -> tuple[Any, Path]:
        if _given(cli_value):
            return cli_value, cwd
        ini_value = config.getini(ini_name)
        if _given(ini_value):
            return ini_value, ini_root
        value = getattr(project, key, None) if project is not None else None
        if _given(value):
            return value, project_root
        return None, cwd

    checkpoints, root = pick(opt.xtts_checkpoint, "xtts_checkpoints", "checkpoints")
    checkpoints = tuple(_anchor(c, root) for c in _as_tuple(checkpoints) if str(c).strip())
    base, root = pick(opt.xtts_base, "xtts_base", "base")
    base_path = Path(_anchor(str(base), root)) if base else None
    suites, root = pick(opt.xtts_suite, "xtts_suites", "suites")
    suites = tuple(
        _anchor(s, root) if (root / s).exists() or os.sep in s or s.endswith((".yaml", ".yml", ".json")) else s
        for s in _as_tuple(suites)
        if str(s).strip()
    )
    report, root = pick(opt.xtts_report_dir, "xtts_report_dir", "report_dir")
    report = "reports" if report is None else str(report)
    report_dir = None if report.strip().lower() in _OFF else Path(_anchor(report, root))
    history, root = pick(opt.xtts_history, "xtts_history", "history")
    if history is None or str(history).strip() == "":
        history_path = report_dir / "history.sqlite" if report_dir else None
    else:
        history_path = None if str(history).strip().lower() in _OFF else Path(_anchor(str(history), root))
    baseline, root = pick(opt.xtts_baseline, "xtts_baseline", "baseline")
    baseline_path = None if baseline is None or str(baseline).lower() in _OFF else Path(_anchor(str(baseline), root))
    fail_on = str(pick(opt.xtts_fail_on, "xtts_fail_on", "fail_on")[0] or "error").strip().lower()
    engine = str(pick(opt.xtts_engine, "xtts_engine", "engine")[0] or "local").strip().lower()
    for name, value, allowed in (
        ("fail_on", fail_on, ("error", "warning", "info")),
        ("engine", engine, ("local", "ray")),
    ):
        if value not in allowed:
            raise pytest.UsageError(f"xtts_qa: {name} = {value!r} is not one of {', '.join(allowed)}")
    ray_address = pick(opt.xtts_ray_address, "xtts_ray_address", "ray_address")[0]
    return PluginSettings(
        checkpoints=checkpoints,
        base=base_path,
        suites=suites,
        device=str(pick(opt.xtts_device, "xtts_device", "device")[0] or "auto"),
        select=split_list(_as_tuple(pick(opt.xtts_select, "xtts_select", "select")[0])),
        ignore=split_list(_as_tuple(pick(opt.xtts_ignore, "xtts_ignore", "ignore")[0])),
        intent=str(pick(opt.xtts_intent, "xtts_intent", "intent")[0] or "inference"),
        report_dir=report_dir,
        history=history_path,
        gates=_as_tuple(pick(opt.xtts_gate, "xtts_gates", "gates")[0]),
        sentences=str(pick(opt.xtts_sentences, "xtts_sentences", "")[0] or "fail"),
        label=str(opt.xtts_label or ""),
        fail_on=fail_on,
        baseline=baseline_path,
        engine=engine,
        ray_address=str(ray_address) if ray_address else None,
        opt_in=opt_in_reason(config, ids),
        ids=ids,
    )


def expand_targets(patterns: tuple[str, ...]) -> list[Target]:
    """Expand folders, files and globs into labelled targets (in the order given, globs sorted).

    Raises:
        pytest.UsageError: a pattern that matches nothing (a typo must not silently test nothing).
    """
    paths: list[Path] = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
        else:
            matches = [Path(pattern)] if Path(pattern).exists() else []
        if not matches:
            raise pytest.UsageError(f"--xtts-checkpoint {pattern}: no such model folder or checkpoint file")
        paths.extend(m for m in matches if m.resolve() not in {p.resolve() for p in paths})
    return [Target(label, path) for label, path in zip(checkpoint_labels(paths), paths, strict=True)]


def resolve_device(requested: str, worker_id: str | None, cuda_devices: int) -> str:
    """The device one pytest process should use.

    ``auto`` means CUDA when there is a GPU, else CPU. Under pytest-xdist (``worker_id`` ``gw0``, ``gw1``, ...) with
    several GPUs, worker N gets ``cuda:N mod count``, so workers do not pile onto one GPU.
    """
    requested = (requested or "auto").strip().lower()
    if requested == "auto":
        requested = "cuda" if cuda_devices else "cpu"
    if requested != "cuda":
        return requested
    if cuda_devices <= 1 or not worker_id or not worker_id.startswith("gw"):
        return "cuda:0" if cuda_devices else "cuda"
    index = int(worker_id[2:] or 0) % cuda_devices
    return f"cuda:{index}"
