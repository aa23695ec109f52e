"""``xtts-qa sweep``: structural check of many checkpoints and evaluation of the healthy ones, locally or on Ray.

Exit codes: 0 every checkpoint healthy and every gate passed, 1 a check error or a failed gate, 2 cannot run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["register", "sweep_options_from_args"]


def _add_options(p: argparse.ArgumentParser) -> None:
    from xtts_qa.cli import add_rule_options

    p.add_argument("checkpoints", nargs="+", help="model folders or trainer checkpoints (e.g. run/checkpoint_*.pth)")
    add_rule_options(p)
    p.add_argument(
        "--suite", action="append", default=[], help="suite name or YAML file; repeatable (default: smoke-en)"
    )
    p.add_argument("--no-eval", action="store_true", help="only the structural check")
    p.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="where the work runs: local (this process, default) or ray (a Ray cluster; pip install 'xtts_qa[ray]')",
    )
    p.add_argument(
        "--ray-address", default=None, help="Ray cluster address (default: RAY_ADDRESS, else a local cluster)"
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
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument(
        "--asr-model", default=None, help="faster-whisper model name (local cache only) or CTranslate2 folder"
    )
    p.add_argument("--asr-workers", type=int, default=1, help="clips one ASR worker transcribes at once")
    p.add_argument(
        "--gate",
        action="append",
        default=[],
        metavar="EXPR",
        help="gate override such as 'wer_delta <= 0.05'; repeatable",
    )
    p.add_argument(
        "--max-audio-tokens", type=int, default=None, help="lower XTTS's 602-code generation cap to bound run time"
    )
    p.add_argument("--limit", type=int, default=None, help="only the first N sentences of each suite")
    p.add_argument("--reports", default="reports", metavar="DIR", help="where the run's report goes (default: reports)")
    p.add_argument(
        "--history", default=None, metavar="FILE", help="SQLite history to append to (default: REPORTS/history.sqlite)"
    )
    p.add_argument("--no-record", action="store_true", help="write no report and no history entry")
    p.add_argument("--label", default="", help="a label stored with the run (CI job, branch)")
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
    synth = SynthOptions()
    if args.max_audio_tokens is not None:
        synth = replace(synth, max_audio_tokens=args.max_audio_tokens)
    eval_options = EvalOptions(
        device=args.device,
        synth=synth,
        asr=AsrOptions(model=args.asr_model, device=args.device, workers=args.asr_workers),
        gates=tuple(args.gate),
        progress=False,
        limit=args.limit,
    )
    reports = None if args.no_record else Path(args.reports)
    history = None if reports is None else Path(args.history) if args.history else reports / "history.sqlite"
    return SweepOptions(
        engine=args.engine,
        ray_address=args.ray_address,
        suites=tuple(args.suite) or ("smoke-en",),
        eval_options=eval_options,
        check_options=CheckOptions(intent=args.intent, select=split_list(args.select), ignore=split_list(args.ignore)),
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
    data = report.to_dict()  # type: ignore[attr-defined]
    units = data["units"]
    lines = [
        f"xtts-qa sweep on {data['engine']}: {len(data['checkpoints'])} checkpoints, "
        f"{units['total']} units ({units['cached']} cached, {units['run']} run, {units['retried']} retried)"
    ]
    for c in data["checkpoints"]:
        verdict = {0: "PASS", 1: "FAIL", 2: "ERROR"}.get(c["exit_code"], "?")
        errors = sum(1 for f in c["findings"] if f.get("severity") == "error")
        parts = [f"{verdict:5} {c['label']}", f"check exit {c['check_exit_code']} ({errors} errors)"]
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
    from xtts_qa.execution.driver import run_sweep

    report = run_sweep(args.checkpoints, args.base, sweep_options_from_args(args))  # type: ignore[arg-type]
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(_render(report), file=sys.stdout)
    return report.exit_code


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``sweep`` sub-command."""
    p = sub.add_parser(
        "sweep", help="check many checkpoints and evaluate the healthy ones, locally or on a Ray cluster"
    )
    _add_options(p)
    p.set_defaults(func=_cmd_sweep)
