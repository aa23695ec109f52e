"""``xtts-qa eval``: synthesise a suite with a candidate (and its base), score it and apply the gates.

Exit codes: 0 no gate failed (inconclusive and not-applicable gates do not fail a run), 1 a gate failed (or, with
``--strict``, was inconclusive), 2 the evaluation cannot run (bad option, unusable input).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

__all__ = ["register", "options_from_args"]


def _add_options(p: argparse.ArgumentParser) -> None:
    from xtts_qa.commands import add_record_options

    p.add_argument(
        "candidate", help="candidate model folder or checkpoint (xtts backend), or the {model} string (command backend)"
    )
    p.add_argument("--base", help="base model to compare with, synthesised with the same suite, seeds and environment")
    p.add_argument(
        "--suite",
        default=None,
        help="suite name (suites/NAME.yaml) or path to a suite YAML (default: the first of suites in "
        "[tool.xtts_qa], else smoke-en)",
    )
    p.add_argument(
        "--backend",
        choices=("xtts", "command"),
        default=None,
        help="xtts: coqui-tts model folders (default); command: a command line that writes a wav "
        "(implied by --command)",
    )
    p.add_argument(
        "--command",
        default=None,
        metavar="TEMPLATE",
        help="command backend template with {text} {out} and optionally {voice} {language} {model} {reference} {seed} "
        "(default: 'espeak-ng -v {voice} -w {out} {text}')",
    )
    p.add_argument(
        "--base-command", default=None, metavar="TEMPLATE", help="template for the base (default: --command)"
    )
    p.add_argument(
        "--device",
        default=None,
        help="auto (CUDA when present, else CPU; the default), cpu or cuda ([tool.xtts_qa] device)",
    )
    p.add_argument(
        "--asr-model",
        default=None,
        help="bundled 'base' (multilingual, the default) or 'tiny.en', a faster-whisper model name (local cache only), "
        "or a CTranslate2 folder",
    )
    p.add_argument(
        "--asr-compute-type", default="default", help="CTranslate2 compute type (default: int8 on CPU, float16 on CUDA)"
    )
    p.add_argument("--asr-beam-size", type=int, default=5, help="beam size of the ASR decoder (default 5)")
    p.add_argument("--asr-workers", type=int, default=2, help="clips transcribed at once")
    p.add_argument(
        "--no-language-id",
        action="store_true",
        help="skip Whisper's language identification (faster; the wrong-language flag is then never raised)",
    )
    p.add_argument(
        "--gate",
        action="append",
        default=[],
        metavar="EXPR",
        help="gate such as 'wer_delta <= 0.05' or 'similarity_ref >= 0.6'; replaces the suite's gate on that metric; "
        "repeatable (default: gates in [tool.xtts_qa])",
    )
    p.add_argument("--temperature", type=float, default=None, help="XTTS sampling temperature (default: the suite's)")
    p.add_argument("--top-k", type=int, default=None, help="XTTS top-k sampling (default: the suite's)")
    p.add_argument("--top-p", type=float, default=None, help="XTTS nucleus sampling (default: the suite's)")
    p.add_argument(
        "--repetition-penalty", type=float, default=None, help="XTTS repetition penalty (default: the suite's)"
    )
    p.add_argument(
        "--max-audio-tokens", type=int, default=None, help="lower XTTS's 602-code generation cap to bound run time"
    )
    p.add_argument("--limit", type=int, default=None, help="only the first N sentences")
    p.add_argument("--no-cache", action="store_true", help="synthesise and transcribe everything again")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--strict",
        action="store_true",
        default=None,
        help="an inconclusive gate (interval straddles the threshold) fails the run ([tool.xtts_qa] strict)",
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="write the audio and the run record (summary.json, sentences.jsonl, report.html) into this folder; "
        "its parent is then the default report folder (default: audio in the xtts_qa cache, the run record in "
        "REPORT_DIR/<run id>)",
    )
    add_record_options(p)
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show text and transcript of every sentence",
    )


def options_from_args(args: argparse.Namespace) -> object:
    """An :class:`~xtts_qa.evaluation.runner.EvalOptions` from parsed arguments."""
    from dataclasses import replace

    from xtts_qa.cache import cache_dir
    from xtts_qa.errors import UsageError
    from xtts_qa.evaluation.asr import AsrOptions
    from xtts_qa.evaluation.runner import EvalOptions
    from xtts_qa.evaluation.synth import DEFAULT_COMMAND, SynthOptions

    backend = args.backend or ("command" if args.command else "xtts")
    if args.command and backend != "command":
        raise UsageError("--command needs --backend command.")
    synth = SynthOptions()
    overrides = {
        k: getattr(args, k)
        for k in ("temperature", "top_k", "top_p", "repetition_penalty", "max_audio_tokens")
        if getattr(args, k) is not None
    }
    synth = replace(synth, **overrides)
    if args.asr_workers < 1 or args.asr_beam_size < 1:
        raise UsageError("--asr-workers and --asr-beam-size must be at least 1.")
    out = Path(args.out) if args.out else cache_dir("eval", "runs") / time.strftime("%Y%m%d-%H%M%S")
    device = args.device or "auto"
    return EvalOptions(
        backend=backend,
        command=args.command or DEFAULT_COMMAND,
        base_command=args.base_command,
        device=device,
        synth=synth,
        asr=AsrOptions(
            model=args.asr_model,
            device=device,
            compute_type=args.asr_compute_type,
            beam_size=args.asr_beam_size,
            workers=args.asr_workers,
            language_id=not args.no_language_id,
        ),
        gates=tuple(args.gate),
        out_dir=out,
        use_cache=not args.no_cache,
        limit=args.limit,
        strict=bool(args.strict),
    )


def _cmd_eval(args: argparse.Namespace) -> int:
    from xtts_qa.commands import record_destination
    from xtts_qa.evaluation.eval_text import render_eval
    from xtts_qa.evaluation.filing import file_eval_run
    from xtts_qa.evaluation.runner import run_eval
    from xtts_qa.reporting.record import utc_now
    from xtts_qa.settings import load_settings
    from xtts_qa.verdict import decide

    started = utc_now()
    settings = (getattr(args, "settings", None) or load_settings()).merged(
        base=args.base, device=args.device, strict=args.strict, gates=list(args.gate) or None
    )
    args.base = str(settings.base) if settings.base else None
    args.device = settings.device
    args.strict = settings.strict
    args.gate = list(settings.gates)
    suite = args.suite or (settings.suites[0] if settings.suites else "smoke-en")
    options = options_from_args(args)
    report = run_eval(args.candidate, args.base, suite, options)  # type: ignore[arg-type]
    if args.out and not args.report_dir and settings.report_dir is None:
        args.report_dir = str(Path(args.out).parent)  # --out names the run's folder: its parent is the report folder
    report_dir, history = record_destination(args, settings)
    policy: dict[str, object] = {"fail_on": settings.fail_on, "baseline": None, "gates": [], "strict": settings.strict}
    record, paths = file_eval_run(
        report,
        Path(args.out) if args.out and report_dir is not None else None,  # --no-record: audio only, no record
        history,
        started_at=started,
        label=args.label,
        report_dir=report_dir,
        policy=policy,
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(render_eval(report, colour=sys.stdout.isatty(), verbose=bool(getattr(args, "verbose", False))))
        if paths is not None and not getattr(args, "quiet", False):
            print(f"run record: {paths.folder}")
    return decide(record).exit_code


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``eval`` sub-command."""
    p = sub.add_parser(
        "eval",
        help="listening evaluation: synthesise a suite, transcribe, score and gate against the base model",
        description="Synthesise a suite of sentences with the candidate (and its base model, same seeds and "
        "environment), transcribe them with Whisper, score WER/CER, speaker similarity and timing, and apply the "
        "suite's gates. Writes a run record and a history row like the pytest plugin; exits 0 (gates passed), "
        "1 (a gate failed) or 2 (the evaluation cannot run). Defaults come from [tool.xtts_qa].",
    )
    _add_options(p)
    p.set_defaults(func=_cmd_eval)
