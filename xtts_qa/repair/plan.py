"""Plan a repair from the check's findings: each rule names its safe action (``Rule.repair``) next to the rule.

A finding (at any severity: a note such as "mel_stats.pth differs from the base" is still worth fixing when the fix
is exact) whose rule has an action is fixed by it; an error whose rule has none (NaN
in trained weights, a vocabulary that does not match the embeddings, another base, a scaled merge ...), or whose
action refuses, makes the whole repair refuse with the reasons: nothing is written. Other findings stay as they are.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xtts_qa.checkpoint import Bundle, open_bundle
from xtts_qa.engine import report_for
from xtts_qa.errors import InputError
from xtts_qa.repair.actions import ACTIONS, SUPPORT_ROLES, Composition, Refusal, RepairJob, Step
from xtts_qa.results import CheckReport, Finding, Severity
from xtts_qa.rules import CheckOptions, Context
from xtts_qa.rules.base import registry

log = logging.getLogger("xtts_qa")

__all__ = ["RepairPlan", "plan_repair"]


@dataclass
class RepairPlan:
    """What a repair will do, and what it cannot do.

    Attributes:
        job: target and base bundles, intent, expected architecture.
        composition: where every tensor and support file of the output comes from.
        steps: the plan, in order (what, from where, why).
        refusals: reasons the target cannot be repaired safely (a non-empty list means nothing is written).
        left: findings that stay as they are (warnings without a safe action).
        before: the check report of the target.
    """

    job: RepairJob
    composition: Composition
    steps: list[Step] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    left: list[Finding] = field(default_factory=list)
    before: CheckReport | None = None

    @property
    def target(self) -> Path:
        return self.job.target.target

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": str(self.target),
            "base": str(self.job.base.target),
            "intent": self.job.intent,
            "output_layout": self.composition.layout,
            "steps": [s.to_dict() for s in self.steps],
            "refusals": list(self.refusals),
            "left_as_is": [f"{f.code} {f.name}: {f.message}" for f in self.left],
        }


def _output_layout(target: Bundle, intent: str) -> str:
    layout = target.checkpoint.layout if target.checkpoint else "inference"
    return "trainer" if intent == "restore" and layout == "trainer" else "inference"


def _arch(ctx: Context, base: Bundle) -> Any:
    if ctx.arch is not None:
        return ctx.arch
    if ctx.candidate.config is None and base.config is not None:
        return Context(base, None, CheckOptions()).arch  # config.json missing: it will come from the base
    return None


def _export_steps(job: RepairJob, comp: Composition, base_arch: Any) -> list[Step]:
    """A trainer or compacted checkpoint turned into a clean inference export (support files from the base)."""
    layout = job.target.checkpoint.layout if job.target.checkpoint else "inference"
    if comp.layout != "inference" or layout == "inference":
        return []
    comp.changed = True
    why = f"a {layout} checkpoint, wanted for --intent {job.intent}"
    steps = [
        Step(
            "export-inference",
            "model.pth written as {'model': state_dict} in the inference namespace: no optimizer, "
            "no dvae.* or mel-spectrogram keys",
            "the target",
            why,
        )
    ]
    if layout in ("trainer", "compacted"):
        roles = ["dvae", "mel_stats", "speakers"]
        if base_arch is not None and base_arch.model == job.arch.model:
            roles.insert(0, "config")  # a trainer config.json describes the run; the base's describes this model
        for role in roles:
            path = job.base.paths.get(role)
            if path is not None and path.is_file() and job.base.problem(role) is None and comp.files.get(role) != path:
                comp.files[role] = path
                steps.append(Step("export-inference", f"{path.name}: the base's copy", str(path), why))
        if comp.files.get("vocab") is None and job.base.problem("vocab") is None:
            comp.files["vocab"] = job.base.paths["vocab"]
            steps.append(Step("export-inference", "vocab.json: the base's copy", str(job.base.paths["vocab"]), why))
    return steps


def plan_repair(target: str | Path, base: str | Path, intent: str = "inference") -> RepairPlan:
    """Check ``target`` against ``base`` and plan its repair (nothing is written).

    Raises:
        InputError: ``target`` or ``base`` does not exist, or the base's model is unreadable.
        UsageError: an unknown intent.
    """
    options = CheckOptions(intent=intent)
    candidate = open_bundle(target)
    base_bundle = open_bundle(base)
    if base_bundle.checkpoint is None:
        p = base_bundle.problem("model")
        raise InputError(
            base,
            f"the base model cannot be read ({p.problem if p else 'no model file'}).",
            "pass the released XTTS-v2 folder (or the model you fine-tuned from) as --base.",
        )
    ctx = Context(candidate, base_bundle, options)
    before = report_for(ctx)
    arch = _arch(ctx, base_bundle)
    files: dict[str, Path | None] = {
        r: candidate.paths[r] for r in SUPPORT_ROLES if candidate.paths[r].is_file() and candidate.problem(r) is None
    }
    tensors = {k: ("target", v) for k, v in (candidate.checkpoint.tensors if candidate.checkpoint else {}).items()}
    comp = Composition(layout=_output_layout(candidate, intent), tensors=tensors, files=files)
    plan = RepairPlan(job=RepairJob(candidate, base_bundle, intent, arch), composition=comp, before=before)
    if candidate.checkpoint is None or arch is None:
        plan.refusals += [f"{f.code} {f.name}: {f.message}" for f in before.findings if f.severity is Severity.ERROR]
        if not plan.refusals:
            plan.refusals.append("the model cannot be read or its config.json does not build a model")
        return plan
    plan.steps += _export_steps(plan.job, comp, Context(base_bundle, None, CheckOptions()).arch)
    rules = registry()
    for finding in sorted(before.findings, key=lambda f: f.code):
        rule = rules.get(finding.code)
        action = ACTIONS.get(rule.repair or "") if rule is not None else None
        if action is None:
            if finding.severity is Severity.ERROR:
                plan.refusals.append(
                    f"{finding.code} {finding.name}: {finding.message} No safe automatic repair: {finding.fix}"
                )
            elif finding.severity is Severity.WARNING:
                plan.left.append(finding)
            continue
        try:
            plan.steps += action(plan.job, comp, finding)
        except Refusal as why:
            if finding.severity is Severity.ERROR:
                plan.refusals.append(f"{finding.code} {finding.name}: {why}.")
            elif finding.severity is Severity.WARNING:
                plan.left.append(finding)
    return plan
