"""The plugin's options: one ``xtts_qa`` group, each setting on the command line and in the ini file (the command
line wins), resolved once into a frozen :class:`PluginSettings`.

The rule options (base, intent, select, ignore) are the ``xtts-qa check`` definitions from
:func:`xtts_qa.cli.add_rule_options`, registered here with an ``--xtts-`` prefix so both stay in step.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from xtts_qa.cli import add_rule_options, split_list
from xtts_qa.labels import checkpoint_labels
from xtts_qa.reporting.history import DEFAULT_HISTORY

__all__ = ["PluginSettings", "Target", "add_options", "read_settings", "expand_targets", "resolve_device"]

PREFIX = "xtts-"
_OFF = ("", "none", "off", "false", "no")


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
        "--xtts-checkpoint",
        action="append",
        default=[],
        dest="xtts_checkpoint",
        metavar="PATH|GLOB",
        help="checkpoint to test (model folder or .pth file; globs such as 'runs/*/checkpoint_*.pth'); repeatable",
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
        "--xtts-sentences",
        dest="xtts_sentences",
        default=None,
        choices=("fail", "warn"),
        help="a sentence with a failing verdict fails its item (fail, default) or only warns (warn: the suite's gates decide)",
    )
    group.addoption(
        "--xtts-label", dest="xtts_label", default=None, help="a label stored with the run (CI job, branch)"
    )

    parser.addini(
        "xtts_checkpoints", "checkpoints (folders, files or globs) to test, one per line", type="linelist", default=[]
    )
    parser.addini("xtts_base", "the base model folder checkpoints are compared with", default="")
    parser.addini("xtts_suites", "evaluation suites (files or names), one per line", type="linelist", default=[])
    parser.addini("xtts_device", "device for synthesis (auto, cpu, cuda, cuda:N)", default="auto")
    parser.addini("xtts_select", "rules to run (codes, prefixes, groups or names)", type="args", default=[])
    parser.addini("xtts_ignore", "rules to leave out", type="args", default=[])
    parser.addini("xtts_intent", "what the checkpoints are for: inference, finetune or restore", default="inference")
    parser.addini("xtts_report_dir", "report folder ('off' to disable)", default="reports")
    parser.addini(
        "xtts_history", "SQLite run history ('off' to disable); default <report dir>/history.sqlite", default=""
    )
    parser.addini("xtts_sentences", "fail or warn on a sentence with a failing verdict", default="fail")
    parser.addini("xtts_gates", "threshold overrides, one expression per line", type="linelist", default=[])


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
    """The plugin's settings after merging command line and ini.

    Attributes:
        checkpoints: checkpoint patterns as given (absolute).
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

    @property
    def active(self) -> bool:
        """Whether any checkpoint was configured (the plugin stays silent otherwise)."""
        return bool(self.checkpoints)


def _anchor(value: str, root: Path) -> str:
    expanded = os.path.expanduser(value)
    return expanded if os.path.isabs(expanded) else str(root / expanded)


def read_settings(config: pytest.Config) -> PluginSettings:
    """Merge command line (relative to the invocation folder) and ini (relative to the ini file's folder)."""
    opt = config.option
    cwd = Path(config.invocation_params.dir)
    ini_root = config.inipath.parent if config.inipath else config.rootpath

    def pick(cli_value: Any, ini_name: str) -> tuple[Any, Path]:
        return (cli_value, cwd) if cli_value not in (None, []) else (config.getini(ini_name), ini_root)

    checkpoints, root = pick(opt.xtts_checkpoint, "xtts_checkpoints")
    checkpoints = tuple(_anchor(c, root) for c in checkpoints if str(c).strip())
    base, root = pick(opt.xtts_base, "xtts_base")
    base_path = Path(_anchor(base, root)) if base else None
    suites, root = pick(opt.xtts_suite, "xtts_suites")
    suites = tuple(
        _anchor(s, root) if (root / s).exists() or os.sep in s or s.endswith((".yaml", ".yml", ".json")) else s
        for s in suites
        if str(s).strip()
    )
    report, root = pick(opt.xtts_report_dir, "xtts_report_dir")
    report_dir = None if str(report).strip().lower() in _OFF else Path(_anchor(str(report), root))
    history, root = pick(opt.xtts_history, "xtts_history")
    if history is None or str(history).strip() == "":
        history_path = report_dir / "history.sqlite" if report_dir else None
    else:
        history_path = None if str(history).strip().lower() in _OFF else Path(_anchor(str(history), root))
    return PluginSettings(
        checkpoints=checkpoints,
        base=base_path,
        suites=suites,
        device=str(pick(opt.xtts_device, "xtts_device")[0] or "auto"),
        select=split_list(pick(opt.xtts_select, "xtts_select")[0]),
        ignore=split_list(pick(opt.xtts_ignore, "xtts_ignore")[0]),
        intent=str(pick(opt.xtts_intent, "xtts_intent")[0] or "inference"),
        report_dir=report_dir,
        history=history_path,
        gates=tuple(pick(opt.xtts_gate, "xtts_gates")[0]),
        sentences=str(pick(opt.xtts_sentences, "xtts_sentences")[0] or "fail"),
        label=str(opt.xtts_label or ""),
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
    return [Target(label, path) for label, path in zip(checkpoint_labels(paths), paths)]


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
