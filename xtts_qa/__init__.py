"""xtts_qa: health checks and evaluation for Coqui XTTS-v2 checkpoints.

Data flows one way: files -> :mod:`xtts_qa.checkpoint` (a model bundle) -> :mod:`xtts_qa.rules`
-> :mod:`xtts_qa.results` -> reports.

The public API, importable from the package itself::

    from xtts_qa import check, CheckOptions, Severity

    report = check("out/my-finetune", base="models/XTTS-v2", options=CheckOptions(intent="finetune"))
    for finding in report.findings:
        print(finding.code, finding.severity.value, finding.message)

- :func:`check` (structural check of one checkpoint) -> :class:`CheckReport` of :class:`RuleResult` and
  :class:`Finding` (each with a :class:`Severity`); :class:`CheckOptions` selects rules and the intent.
- :func:`evaluate` (listening evaluation: synthesise, transcribe, score, gate; needs ``xtts_qa[eval]``) ->
  :class:`EvalReport`; :class:`EvalOptions`, :func:`load_suite`.
- :class:`RunRecord` (what one run produced) and :func:`decide` -> :class:`Verdict` (the one pass/fail/inconclusive
  verdict and exit code that the CLI, the pytest plugin, ``xtts-qa gate`` and the reports share);
  :class:`Baseline` of accepted findings; :func:`load_settings` reads ``[tool.xtts_qa]`` into :class:`Settings`.
- :func:`merge` / :class:`MergeOptions`; :func:`plan_repair` / :func:`apply_repair`.
- :class:`XttsQaError` is the base of every error xtts_qa raises; :class:`InputError` names a file and its fix.

Names are imported on first use, so ``import xtts_qa`` stays light (no torch, no coqui-tts).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> (module, attribute in it)
_EXPORTS: dict[str, tuple[str, str]] = {
    "check": ("xtts_qa.engine", "check"),
    "CheckOptions": ("xtts_qa.rules", "CheckOptions"),
    "CheckReport": ("xtts_qa.results", "CheckReport"),
    "RuleResult": ("xtts_qa.results", "RuleResult"),
    "Finding": ("xtts_qa.results", "Finding"),
    "Severity": ("xtts_qa.results", "Severity"),
    "Status": ("xtts_qa.results", "Status"),
    "evaluate": ("xtts_qa.evaluation.runner", "run_eval"),
    "EvalOptions": ("xtts_qa.evaluation.runner", "EvalOptions"),
    "EvalReport": ("xtts_qa.evaluation.results", "EvalReport"),
    "load_suite": ("xtts_qa.evaluation.suite", "load_suite"),
    "RunRecord": ("xtts_qa.reporting.record", "RunRecord"),
    "decide": ("xtts_qa.verdict", "decide"),
    "Verdict": ("xtts_qa.verdict", "Verdict"),
    "Baseline": ("xtts_qa.baseline", "Baseline"),
    "Settings": ("xtts_qa.settings", "Settings"),
    "load_settings": ("xtts_qa.settings", "load_settings"),
    "merge": ("xtts_qa.merge", "merge"),
    "MergeOptions": ("xtts_qa.merge", "MergeOptions"),
    "plan_repair": ("xtts_qa.repair.plan", "plan_repair"),
    "apply_repair": ("xtts_qa.repair.apply", "apply_repair"),
    "XttsQaError": ("xtts_qa.errors", "XttsQaError"),
    "InputError": ("xtts_qa.errors", "InputError"),
}

__all__ = [
    "__version__",
    "Baseline",
    "CheckOptions",
    "CheckReport",
    "EvalOptions",
    "EvalReport",
    "Finding",
    "InputError",
    "MergeOptions",
    "RuleResult",
    "RunRecord",
    "Settings",
    "Severity",
    "Status",
    "Verdict",
    "XttsQaError",
    "apply_repair",
    "check",
    "decide",
    "evaluate",
    "load_settings",
    "load_suite",
    "merge",
    "plan_repair",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from xtts_qa.baseline import Baseline
    from xtts_qa.engine import check
    from xtts_qa.errors import InputError, XttsQaError
    from xtts_qa.evaluation.results import EvalReport
    from xtts_qa.evaluation.runner import EvalOptions
    from xtts_qa.evaluation.runner import run_eval as evaluate
    from xtts_qa.evaluation.suite import load_suite
    from xtts_qa.merge import MergeOptions, merge
    from xtts_qa.repair.apply import apply_repair
    from xtts_qa.repair.plan import plan_repair
    from xtts_qa.reporting.record import RunRecord
    from xtts_qa.results import CheckReport, Finding, RuleResult, Severity, Status
    from xtts_qa.rules import CheckOptions
    from xtts_qa.settings import Settings, load_settings
    from xtts_qa.verdict import Verdict, decide


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562)."""
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'xtts_qa' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
