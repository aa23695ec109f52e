"""Per-session state, kept in ``config.stash``: settings, targets, the device, and bundles opened once.

Each pytest process (each xdist worker) opens a checkpoint at most once, however many items read it; the base is
opened once for all checkpoints.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import pytest

from xtts_qa.checkpoint import Bundle, open_bundle
from xtts_qa.errors import XttsQaError
from xtts_qa.plugin.keys import get_settings
from xtts_qa.plugin.options import PluginSettings, Target, expand_targets, resolve_device
from xtts_qa.results import RuleResult
from xtts_qa.rules import CheckOptions, Context, Rule, select_rules

log = logging.getLogger("xtts_qa")

__all__ = ["STATE", "SessionState", "get_state", "get_settings", "rule_payload"]


@dataclass
class SessionState:
    """What one pytest process knows about the checkpoints under test.

    Attributes:
        settings: the merged options.
        targets: the checkpoints, labelled.
        rules: the rules selected for health items.
        options: the check options the rules run with.
        device: this process's device.
        worker: the xdist worker id, or None in the controller / a plain run.
    """

    settings: PluginSettings
    targets: list[Target]
    rules: list[type[Rule]]
    options: CheckOptions
    device: str
    worker: str | None
    _contexts: dict[str, Context] = field(default_factory=dict)
    _base: Bundle | None = None
    _meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    _evals: dict[tuple[str, str], Any] = field(default_factory=dict)
    _baseline: Any = None

    @classmethod
    def from_config(cls, config: pytest.Config) -> SessionState:
        """Resolve settings, targets, rule selection and device.

        Raises:
            pytest.UsageError: an option is wrong (unknown rule, missing checkpoint or base, bad intent).
        """
        settings = get_settings(config)
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        try:
            targets = expand_targets(settings.checkpoints) if settings.checkpoints else []
            options = CheckOptions(intent=settings.intent, select=settings.select, ignore=settings.ignore)
            rules = select_rules(options.select, options.ignore) if settings.checkpoints else []
        except XttsQaError as err:
            raise pytest.UsageError(f"xtts_qa: {err}") from None
        if settings.checkpoints and settings.base is not None and not settings.base.exists():
            raise pytest.UsageError(f"xtts_qa: --xtts-base {settings.base} does not exist")
        device = resolve_device(settings.device, worker, _cuda_devices() if settings.suites else 0)
        state = cls(settings, targets, rules, options, device, worker)
        if settings.baseline is not None and settings.checkpoints:
            from xtts_qa.baseline import Baseline

            try:
                state._baseline = Baseline.load(settings.baseline)
            except XttsQaError as err:
                raise pytest.UsageError(f"xtts_qa: --xtts-baseline: {err}") from None
        return state

    def accepted(self, digest: str | None, label: str) -> set[str]:
        """Rule codes the baseline accepts on this checkpoint (by content digest, else by label)."""
        if self._baseline is None:
            return set()
        return {e.code for e in self._baseline.accepted if e.matches(digest, label, e.code)}

    def target(self, label: str) -> Target:
        return next(t for t in self.targets if t.label == label)

    @property
    def base(self) -> Bundle | None:
        """The base model, opened on first use."""
        if self._base is None and self.settings.base is not None:
            self._base = open_bundle(self.settings.base)
        return self._base

    def context(self, label: str) -> Context:
        """The rule context of one checkpoint: its bundle is opened on first use, then shared by every item."""
        if label not in self._contexts:
            log.debug("opening %s", self.target(label).path)
            self._contexts[label] = Context(open_bundle(self.target(label).path), self.base, self.options)
        return self._contexts[label]

    def check_meta(self, label: str) -> dict[str, Any]:
        """What a CheckReport says about the checkpoint besides rule results (layout, files, load, provenance)."""
        if label not in self._meta:
            from xtts_qa.engine import report_meta

            self._meta[label] = report_meta(self.context(label))
        return self._meta[label]

    def evaluation(self, label: str, suite: str, compute: Any) -> Any:
        """One checkpoint x suite evaluation, computed on first use (``compute()``) and shared by its items."""
        key = (label, suite)
        if key not in self._evals:
            try:
                self._evals[key] = compute()
            except Exception as exc:  # every item of the suite reports the same failure, computed once
                self._evals[key] = exc
        return self._evals[key]


def _cannot_run(bundle: Bundle) -> bool:
    """Exit-code-2 condition of a CheckReport: an unreadable file, or no model file at all."""
    return any(p.kind != "missing" or p.role == "model" for p in bundle.problems)


def _cuda_devices() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:
        return 0


STATE = pytest.StashKey[SessionState]()


def get_state(config: pytest.Config) -> SessionState:
    """The session state (created on first use: opens nothing, but imports the rules and with them torch)."""
    state = config.stash.get(STATE, None)
    if state is None:
        state = SessionState.from_config(config)
        config.stash[STATE] = state
    return state


def rule_payload(label: str, result: RuleResult, meta: dict[str, Any]) -> dict[str, Any]:
    """The plain-data record of one health item, sent from the worker to the process that writes reports."""
    return {"kind": "health", "checkpoint": label, "rule": result.to_dict(), "meta": meta}
