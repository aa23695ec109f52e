"""Run the selected rules over a candidate (and optional base) and gather a :class:`CheckReport`."""

from __future__ import annotations

import logging
import time
import traceback
from pathlib import Path
from typing import Any

from xtts_qa.cache import file_digest
from xtts_qa.checkpoint import Bundle, open_bundle
from xtts_qa.loadability import load_verdict
from xtts_qa.results import CheckReport, RuleResult, Status
from xtts_qa.rules import CheckOptions, Context, Rule, select_rules
from xtts_qa.versions import package_versions

log = logging.getLogger("xtts_qa")

__all__ = ["build_report", "check", "report_for", "report_meta", "run_rule", "run_rules", "versions"]


def versions() -> dict[str, str]:
    """Versions the verdicts depend on: :func:`xtts_qa.versions.package_versions` (kept for older callers)."""
    return package_versions()


def run_rule(rule: type[Rule], ctx: Context) -> RuleResult:
    """One rule's verdict for the context's intent.

    A rule that does not apply to the intent, or lacks an input, is skipped with the reason. A rule that crashes
    is an ``error`` result carrying the traceback: the rest of the report still runs, and the check then exits 2
    (it cannot vouch for the checkpoint), never a silent skip.
    """
    intent = ctx.options.intent
    if rule.severity_for(intent) is None:
        return RuleResult(rule.code, rule.name, Status.SKIPPED, skip_reason=f"does not apply to --intent {intent}")
    inst = rule(intent)
    started = time.perf_counter()
    missing = inst.missing_inputs(ctx)
    if missing:
        return RuleResult(rule.code, rule.name, Status.SKIPPED, skip_reason=f"needs {', '.join(missing)}")
    try:
        findings = tuple(inst.check(ctx))
    except Exception as exc:  # a defect in a rule must not take the whole report down, nor pass silently
        log.error("rule %s crashed: %s: %s", rule.code, type(exc).__name__, exc)
        return RuleResult(
            rule.code,
            rule.name,
            Status.ERROR,
            seconds=time.perf_counter() - started,
            error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}",
        )
    status = Status.FAILED if findings else Status.PASSED
    return RuleResult(rule.code, rule.name, status, findings, seconds=time.perf_counter() - started)


def run_rules(
    candidate: Bundle, base: Bundle | None, options: CheckOptions, started: float | None = None
) -> CheckReport:
    """Run the rules ``options`` select over already-opened bundles."""
    return report_for(Context(candidate, base, options), started)


def report_for(ctx: Context, started: float | None = None) -> CheckReport:
    """Run the selected rules on an existing context (its tensor scan is reused, not repeated)."""
    started = time.perf_counter() if started is None else started
    results = tuple(run_rule(rule, ctx) for rule in select_rules(ctx.options.select, ctx.options.ignore))
    return build_report(report_meta(ctx), results, time.perf_counter() - started)


def report_meta(ctx: Context) -> dict[str, Any]:
    """What a :class:`CheckReport` says besides rule results: target, base, layout, files, the load verdict,
    whether an input was unreadable, provenance. Shared by the CLI and the pytest plugin."""
    candidate, base, options = ctx.candidate, ctx.base, ctx.options
    verdict, reasons = load_verdict(ctx)
    files = {role: str(p) for role, p in candidate.paths.items() if p.is_file()}
    sizes: dict[str, int] = {}
    for role, p in files.items():
        try:
            sizes[role] = Path(p).stat().st_size
        except OSError:
            continue
    return {
        "target": str(candidate.target),
        "base": str(base.target) if base else None,
        "layout": candidate.checkpoint.layout if candidate.checkpoint else "unreadable",
        "files": files,
        "loads_in_coqui": verdict,
        "unreadable": _cannot_run(candidate) or (base is not None and _cannot_run(base)),
        "provenance": {
            "versions": package_versions(),
            "intent": options.intent,
            "file_sizes": sizes,
            "load_verdict_reasons": reasons,
            "config_source": candidate.config_source,
            "vocab_digest": candidate.vocab_digest(),
            "checkpoint_digest": _checkpoint_digest(candidate),
        },
    }


def _checkpoint_digest(bundle: Bundle) -> str | None:
    """Content digest of the checked checkpoint file (memoised by file identity), or None when it cannot be read.

    Runs of the same weights share it wherever the file lives, so a ``--baseline`` run can be matched by content.
    """
    model = bundle.paths.get("model")
    if model is None:
        return None
    try:
        return file_digest(model) if model.is_file() else None
    except OSError as exc:
        log.warning("cannot hash %s for provenance: %s", model, exc)
        return None


def build_report(meta: dict[str, Any], results: tuple[RuleResult, ...], seconds: float) -> CheckReport:
    """The one place a :class:`CheckReport` is assembled (the CLI, the engine and the plugin's collector)."""
    return CheckReport(
        target=meta["target"],
        base=meta["base"],
        layout=meta["layout"],
        files=dict(meta["files"]),
        results=tuple(sorted(results, key=lambda r: r.code)),
        loads_in_coqui=meta["loads_in_coqui"],
        unreadable=bool(meta["unreadable"]),
        seconds=seconds,
        provenance=dict(meta["provenance"]),
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
