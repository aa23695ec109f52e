"""``xtts-qa sweep``: structural check of many checkpoints and evaluation of the healthy ones, locally or on Ray.

Exit codes: 0 every checkpoint healthy and every gate passed, 1 a check error or a failed gate, 2 cannot run.
"""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["register", "sweep_options_from_args"]


def _add_options(p: argparse.ArgumentParser) -> None:
    from xtts_qa.cli import add_rule_options
    from xtts_qa.commands import add_record_options

    p.add_argument(
        "checkpoints",
        nargs="*",
        help="model folders or trainer checkpoints, or globs of them (e.g. 'run/checkpoint_*.pth'; default: "
        "checkpoints in [tool.xtts_qa])",
    )
    add_rule_options(p)
    p.add_argument(
        "--suite",
        action="append",
        default=[],
        help="suite name or YAML file; repeatable (default: suites in [tool.xtts_qa], else smoke-en)",
    )
    p.add_argument("--no-eval", action="store_true", help="only the structural check")
    p.add_argument(
        "--engine",
        choices=("local", "ray"),
        default=None,
        help="where the work runs: local (this process, default) or ray (a Ray cluster; pip install 'xtts_qa[ray]'); "
        "default: engine in [tool.xtts_qa], else local",
    )
    p.add_argument(
        "--ray-address",
        default=None,
        help="Ray cluster address (default: ray_address in [tool.xtts_qa], else RAY_ADDRESS, else a local cluster)",
    )
    p.add_argument("--batch-size", type=int, default=4, help="sentences per work unit (default 4)")
    p.add_argument(
        "--synth-actors", type=int, default=0, help="Ray synthesis actors (default: one per GPU, else CPUs - 1)"
    )
    p.add_argument("--asr-actors", type=int, default=0, help="Ray ASR actors (default: one per four synthesis actors)")
    p.add_argument(
        "--max-inflight", type=int, default=0, help="units submitted at once (default: two per synthesis actor)"
    )
    p.add_argument(
        "--max-retries", type=int, default=3, help="times a unit is rerun after losing its worker (default 3)"
    )
    p.add_argument(
        "--threads", type=int, default=0, help="torch threads per worker (default: as many as this process uses)"
    )
    p.add_argument(
        "--device", default=None, help="auto (CUDA when present; the default), cpu or cuda ([tool.xtts_qa] device)"
    )
    p.add_argument(
        "--asr-model", default=None, help="faster-whisper model name (local cache only) or CTranslate2 folder"
    )
    p.add_argument("--asr-workers", type=int, default=1, help="clips one ASR worker transcribes at once")
    p.add_argument(
        "--gate",
        action="append",
        default=[],
        metavar="EXPR",
        help="gate override such as 'wer_delta <= 0.05'; repeatable (default: gates in [tool.xtts_qa])",
    )
    p.add_argument(
        "--max-audio-tokens", type=int, default=None, help="lower XTTS's 602-code generation cap to bound run time"
    )
    p.add_argument("--limit", type=int, default=None, help="only the first N sentences of each suite")
    add_record_options(p)
    p.add_argument("--reports", dest="report_dir", default=None, metavar="DIR", help="the same as --report-dir")
    p.add_argument("--json", action="store_true", help="print one JSON document with a `checkpoints` list")


def sweep_options_from_args(args: argparse.Namespace) -> object:
    """A :class:`~xtts_qa.execution.driver.SweepOptions` from parsed arguments."""
    from dataclasses import replace

    from xtts_qa.cli import split_list
    from xtts_qa.errors import UsageError
    from xtts_qa.evaluation.asr import AsrOptions
    from xtts_qa.evaluation.runner import EvalOptions
    from xtts_qa.evaluation.synth import SynthOptions
    from xtts_qa.execution.driver import SweepOptions
    from xtts_qa.rules import CheckOptions

    for name in ("batch_size", "asr_workers"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1.")
    for name in ("synth_actors", "asr_actors", "max_inflight", "max_retries", "threads"):
        if getattr(args, name) < 0:
            raise UsageError(f"--{name.replace('_', '-')} must not be negative.")
    from xtts_qa.commands import record_destination
    from xtts_qa.settings import load_settings

    settings = (getattr(args, "settings", None) or load_settings()).merged(
        base=args.base,
        intent=args.intent,
        select=split_list(args.select),
        ignore=split_list(args.ignore),
        engine=args.engine,
        ray_address=args.ray_address,
        device=args.device,
        suites=list(args.suite) or None,
        gates=list(args.gate) or None,
    )
    device = settings.device or "auto"
    synth = SynthOptions()
    if args.max_audio_tokens is not None:
        synth = replace(synth, max_audio_tokens=args.max_audio_tokens)
    eval_options = EvalOptions(
        device=device,
        synth=synth,
        asr=AsrOptions(model=args.asr_model, device=device, workers=args.asr_workers),
        gates=settings.gates,
        progress=False,
        limit=args.limit,
    )
    reports, history = record_destination(args, settings)
    return SweepOptions(
        engine=settings.engine,
        ray_address=settings.ray_address,
        suites=settings.suites or ("smoke-en",),
        eval_options=eval_options,
        check_options=CheckOptions(
            intent=settings.intent or "inference", select=settings.select, ignore=settings.ignore
        ),
        evaluate=not args.no_eval,
        batch_size=args.batch_size,
        synth_actors=args.synth_actors,
        asr_actors=args.asr_actors,
        max_inflight=args.max_inflight,
        max_retries=args.max_retries,
        threads=args.threads,
        report_dir=reports,
        history=history,
        label=args.label,
    )


def _render(report: object) -> str:
    from xtts_qa.progress import plural

    data = report.to_dict()  # type: ignore[attr-defined]
    units = data["units"]
    lines = [
        f"xtts-qa sweep on {data['engine']}: {plural(len(data['checkpoints']), 'checkpoint')}, "
        f"{plural(units['total'], 'unit')} ({units['cached']} cached, {units['run']} run, {units['retried']} retried)"
    ]
    for c in data["checkpoints"]:
        verdict = {0: "PASS", 1: "FAIL", 2: "ERROR"}.get(c["exit_code"], "?")
        errors = sum(1 for f in c["findings"] if f.get("severity") == "error")
        parts = [f"{verdict:5} {c['label']}", f"check exit {c['check_exit_code']} ({plural(errors, 'error')})"]
        for suite, metrics in c["metrics"].items():
            cand = (metrics or {}).get("candidate") or {}
            failed = [g["expr"] for g in c["gates"][suite] if not g["passed"]]
            parts.append(
                f"{suite}: wer {cand.get('wer', float('nan')):.3f} sim {cand.get('similarity_ref', float('nan')):.3f}"
                + (f" FAILED {', '.join(failed)}" if failed else "")
            )
        lines.append("  ".join(parts))
    if data["report"]:
        lines.append(f"report: {data['report']} (run {data['run_id']})")
    return "\n".join(lines)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from xtts_qa.commands.check import expand_targets
    from xtts_qa.errors import UsageError
    from xtts_qa.execution.driver import run_sweep

    options = sweep_options_from_args(args)
    settings = args.settings if getattr(args, "settings", None) is not None else None
    patterns = list(args.checkpoints) or (list(settings.checkpoints) if settings is not None else [])
    if not patterns:
        raise UsageError("sweep needs at least one checkpoint (or `checkpoints` in [tool.xtts_qa] of pyproject.toml).")
    targets = [str(p) for p in expand_targets(patterns)]
    base = args.base or (str(settings.base) if settings is not None and settings.base else None)
    report = run_sweep(targets, base, options)  # type: ignore[arg-type]
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(_render(report), file=sys.stdout)
    return report.exit_code


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``sweep`` sub-command."""
    p = sub.add_parser(
        "sweep",
        help="check many checkpoints and evaluate the healthy ones, locally or on a Ray cluster",
        description="Structural check of every checkpoint (CPU tasks), then evaluation of those that pass (work "
        "units = checkpoint x suite x sentence batch), on this machine (--engine local) or a Ray cluster "
        "(--engine ray). Results go to the evaluation cache, one run record and the history; an interrupted sweep "
        "started again runs only what is missing. engine, ray_address, suites, gates and checkpoints default from "
        "[tool.xtts_qa].",
    )
    _add_options(p)
    p.set_defaults(func=_cmd_sweep)
