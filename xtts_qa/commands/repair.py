"""``xtts-qa repair`` and ``xtts-qa merge``.

Exit codes: 0 the result passes the check, 1 the result was written but still has errors, 2 nothing was written
(bad usage, unreadable input, a target that cannot be repaired safely, a merge that is refused).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap

__all__ = ["register"]


_LOADS: dict[bool | None, str] = {True: "yes", False: "no", None: "?"}


def _wrap(text: str, indent: str = "  ") -> str:
    return textwrap.fill(text, width=110, initial_indent=indent, subsequent_indent=indent + "    ")


def _before_after(before: object, after: object) -> list[str]:
    from xtts_qa.results import CheckReport, Severity

    assert isinstance(before, CheckReport) and isinstance(after, CheckReport)

    def line(name: str, r: CheckReport) -> str:
        errors = sorted({f.code for f in r.findings if f.severity is Severity.ERROR})
        warnings = sorted({f.code for f in r.findings if f.severity is Severity.WARNING})
        verdict = {0: "HEALTHY", 1: "UNHEALTHY", 2: "CANNOT CHECK"}[r.exit_code]
        return (
            f"  {name:7} {verdict:12} errors: {', '.join(errors) or '-'}   warnings: {', '.join(warnings) or '-'}"
            f"   loads in coqui-tts (strict): {_LOADS[r.loads_in_coqui]}"
        )

    return [line("before", before), line("after", after)]


def _cmd_repair(args: argparse.Namespace) -> int:
    from xtts_qa.check_text import render_check
    from xtts_qa.errors import UsageError
    from xtts_qa.repair.apply import apply_repair, finetune_args
    from xtts_qa.repair.plan import plan_repair

    if not args.dry_run and not args.out:
        raise UsageError("xtts-qa repair needs --out NEW (a new folder; TARGET is never written) or --dry-run.")
    plan = plan_repair(args.target, args.base, args.intent)
    if args.json and args.dry_run:
        print(json.dumps(plan.to_dict(), indent=2))
        return 2 if plan.refusals else 0
    print(
        f"xtts-qa repair {plan.target}  (base: {plan.job.base.target}, intent: {plan.job.intent}, "
        f"output layout: {plan.composition.layout})"
    )
    if plan.steps or not plan.refusals:
        print("Plan:" if plan.steps else "Plan: nothing to change (every file is copied as it is)")
    for i, step in enumerate(plan.steps, 1):
        print(_wrap(f"{i}. [{step.action}] {step.what}", "  "))
        print(_wrap(f"from: {step.source}", "       "))
        print(_wrap(f"why: {step.why}", "       "))
    for f in plan.left:
        print(_wrap(f"left as is: {f.code} {f.name}: {f.message}", "  "))
    if plan.refusals:
        print("Cannot be repaired safely (nothing written):")
        for r in plan.refusals:
            print(_wrap(f"- {r}", "  "))
        return 2
    if args.dry_run:
        return 0
    result = apply_repair(plan, args.out, force=args.force)
    print(f"\nWrote {result.out}")
    assert plan.before is not None
    print("\n".join(_before_after(plan.before, result.after)))
    if plan.job.intent == "finetune":
        print("To start a NEW fine-tune from it (GPTTrainer model_args; never restore_path):")
        for k, v in finetune_args(result.out.resolve()).items():
            print(f"  {k} = {v!r}")
    if plan.job.intent == "restore":
        print(f"To resume training: Trainer restore_path = {result.out / 'model.pth'}")
    if result.after.exit_code:
        print()
        print(render_check(result.after, colour=sys.stdout.isatty()))
    return result.after.exit_code


def _cmd_merge(args: argparse.Namespace) -> int:
    from xtts_qa.check_text import render_check
    from xtts_qa.cli import split_list
    from xtts_qa.merge import MergeOptions, merge

    options = MergeOptions(method=args.method, normalise=args.normalise, force=args.force)
    weights = [w for w in split_list([args.weights])] if args.weights else []
    result = merge(args.inputs, args.base, weights, args.out, options)
    print(f"xtts-qa merge ({result.method}) -> {result.out}")
    for path, w in zip(result.inputs, result.weights, strict=True):
        print(f"  {w:.6g} x {path}")
    from xtts_qa.progress import plural

    print(
        f"  averaged {plural(result.merged, 'gpt.* tensor')}; copied {result.copied} frozen tensors and buffers and "
        f"{plural(len(result.support), 'support file')} from the base bit-identically; "
        f"provenance in {result.provenance}"
    )
    print(render_check(result.after, colour=sys.stdout.isatty()))
    return result.after.exit_code


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``repair`` and ``merge`` to the ``xtts-qa`` command line."""
    p = sub.add_parser(
        "repair",
        help="fix what the check finds, safely, into a NEW folder (TARGET and BASE are never written)",
        description="Plan and apply the safe repairs of what `xtts-qa check` finds (copy dvae.pth, mel_stats or the "
        "frozen decoder tensors back from the base, fix the vocab/config pairing, ...) into a NEW folder; the target "
        "and the base are never written. The repaired model is checked again and the before/after verdicts printed.",
    )
    p.add_argument("target", help="model folder or trainer checkpoint file to repair")
    p.add_argument(
        "--base", required=True, help="the base model folder it was fine-tuned from (source of every restored part)"
    )
    p.add_argument("--out", help="new folder to write (refused when it exists and is not empty, unless --force)")
    p.add_argument(
        "--intent",
        choices=("inference", "finetune", "restore"),
        default="inference",
        help="what the result is for: speak (inference), start a new fine-tune from it, or resume training (restore)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan (what, from where, why) and write nothing")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing non-empty --out folder (after the new one is complete)",
    )
    p.add_argument("--json", action="store_true", help="with --dry-run: print the plan as JSON")
    p.set_defaults(func=_cmd_repair)

    p = sub.add_parser(
        "merge",
        help="merge fine-tunes of one base: average only gpt.*, everything else bit-identical to the base",
        description="Merge fine-tunes of one base model by a weighted average of their gpt.* tensors only; every "
        "frozen tensor, buffer and support file is copied bit-identically from the base, and the result is checked.",
    )
    p.add_argument("inputs", nargs="+", help="two or more fine-tunes of BASE (model folders or checkpoint files)")
    p.add_argument("--base", required=True, help="the base model folder every input was fine-tuned from")
    p.add_argument("--weights", help="comma-separated weights, one per input, summing to 1 (default: equal weights)")
    p.add_argument("--out", required=True, help="new folder to write")
    p.add_argument(
        "--method",
        choices=("average", "task-vector"),
        default="average",
        help="average: sum w_i ft_i; task-vector: base + sum w_i (ft_i - base)",
    )
    p.add_argument("--normalise", action="store_true", help="scale the weights to sum to 1 instead of refusing")
    p.add_argument("--force", action="store_true", help="replace an existing non-empty --out folder")
    p.set_defaults(func=_cmd_merge)
