"""Run the selected rules over a candidate (and optional base) and gather a :class:`CheckReport`."""

from __future__ import annotations

import importlib.metadata
import logging
import time
from pathlib import Path
from typing import Any

from xtts_qa import __version__
from xtts_qa.checkpoint import Bundle, open_bundle
from xtts_qa.results import CheckReport, RuleResult, Status
from xtts_qa.rules import CheckOptions, Context, Rule, select_rules
from xtts_qa.rules.keys import load_verdict

log = logging.getLogger("xtts_qa")

__all__ = ["check", "report_for", "run_rules", "versions"]


def versions() -> dict[str, str]:
    """Versions of the packages whose behaviour the verdicts depend on."""
    out = {"xtts_qa": __version__}
    for dist in ("torch", "coqui-tts", "transformers", "tokenizers"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "absent"
    return out


def run_rule(rule: type[Rule], ctx: Context) -> RuleResult:
    """One rule's verdict. A rule that crashes is reported as skipped with the error, never raised."""
    inst = rule()
    started = time.perf_counter()
    missing = inst.missing_inputs(ctx)
    if missing:
        return RuleResult(rule.code, rule.name, Status.SKIPPED, skip_reason=f"needs {', '.join(missing)}")
    try:
        findings = tuple(inst.check(ctx))
    except Exception as exc:  # a defect in a rule must not take the whole report down
        log.exception("rule %s crashed", rule.code)
        return RuleResult(rule.code, rule.name, Status.SKIPPED, skip_reason=f"internal error: {type(exc).__name__}: {exc}",
                          seconds=time.perf_counter() - started)
    status = Status.FAILED if findings else Status.PASSED
    return RuleResult(rule.code, rule.name, status, findings, seconds=time.perf_counter() - started)


def run_rules(candidate: Bundle, base: Bundle | None, options: CheckOptions, started: float | None = None) -> CheckReport:
    """Run the rules ``options`` select over already-opened bundles."""
    return report_for(Context(candidate, base, options), started)


def report_for(ctx: Context, started: float | None = None) -> CheckReport:
    """Run the selected rules on an existing context (its tensor scan is reused, not repeated)."""
    started = time.perf_counter() if started is None else started
    candidate, base, options = ctx.candidate, ctx.base, ctx.options
    results = tuple(run_rule(rule, ctx) for rule in select_rules(options.select, options.ignore))
    verdict, reasons = load_verdict(ctx)
    files = {role: str(p) for role, p in candidate.paths.items() if p.exists()}
    provenance: dict[str, Any] = {
        "versions": versions(),
        "intent": options.intent,
        "file_sizes": {role: Path(p).stat().st_size for role, p in files.items()},
        "load_verdict_reasons": reasons,
        "config_source": candidate.config_source,
        "vocab_digest": candidate.vocab_digest(),
    }
    return CheckReport(
        target=str(candidate.target),
        base=str(base.target) if base else None,
        layout=candidate.checkpoint.layout if candidate.checkpoint else "unreadable",
        files=files,
        results=results,
        loads_in_coqui=verdict,
        unreadable=_cannot_run(candidate) or (base is not None and _cannot_run(base)),
        seconds=time.perf_counter() - started,
        provenance=provenance,
    )


def _cannot_run(bundle: Bundle) -> bool:
    """A file exists but cannot be read, or there is no model file at all (exit code 2)."""
    return any(p.kind != "missing" or p.role == "model" for p in bundle.problems)


def check(target: str | Path, base: str | Path | None = None, options: CheckOptions | None = None) -> CheckReport:
    """Check a model folder or checkpoint file, optionally against a base model folder.

    Raises:
        InputError: ``target`` or ``base`` does not exist.
    """
    started = time.perf_counter()
    candidate = open_bundle(target)
    base_bundle = open_bundle(base) if base is not None else None
    return run_rules(candidate, base_bundle, options or CheckOptions(), started)
