"""Deterministic model families for the demo, the tests and the benchmarks (real coqui-tts models, random weights)."""

from __future__ import annotations

import argparse
from pathlib import Path


def evaluation_demo(root: Path, args: argparse.Namespace) -> int:
    """The short listening evaluation the demo runs after the structural checks (see the evaluation issue).

    Two evaluations on the first sentences of the ``smoke-en`` suite: espeak-ng (command backend) against itself,
    which must pass, and a tiny XTTS model against its base, which must fail the absolute floors because random
    weights speak gibberish. Returns 0 when both behave so, else 1.
    """
    from dataclasses import replace

    from xtts_qa.evaluation.runner import EvalOptions, run_eval
    from xtts_qa.evaluation.synth import SynthOptions

    print("\n" + "-" * 100)
    print("Listening evaluation (suite smoke-en, faster-whisper tiny.en, resemblyzer)\n")
    quick = EvalOptions(progress=False, limit=3)
    runs = [("espeak-ng vs itself (command backend)", "espeak-ng", "espeak-ng", replace(quick, backend="command"), True)]
    if args.size == "tiny":
        candidate = root / "sequential-broken-dvae"
        candidate = candidate if (candidate / "model.pth").is_file() else root / "base"
        xtts = replace(quick, limit=2, synth=SynthOptions(max_audio_tokens=40))
        runs.append((f"tiny XTTS {candidate.name} vs base (random weights)", str(candidate), str(root / "base"), xtts, False))
    else:
        print("(the XTTS part runs only with --size tiny: full-size models take minutes per sentence on a CPU)")
    as_expected = True
    for title, cand, base, options, should_pass in runs:
        report = run_eval(cand, base, "smoke-en", replace(options, out_dir=root / "eval" / ("espeak" if should_pass else "xtts")))
        m = report.metrics
        failed = ", ".join(g.expr for g in report.failed_gates) or "none"
        ok = report.passed == should_pass
        as_expected &= ok
        print(f"{title}: {'PASSED' if report.passed else 'FAILED'} ({'as expected' if ok else 'NOT as expected'})")
        print(f"    wer {m.wer:.2f}  hallucinations {m.hallucination_rate:.0%}  similarity to reference "
              f"{m.similarity_ref or 0:.2f}  rtf {m.rtf:.2f}  gates failed: {failed}")
        worst = max(report.sentences, key=lambda s: s.wer)
        print(f"    worst sentence: {worst.text!r} heard as {worst.transcript or '(nothing)'!r} [{', '.join(worst.flags) or 'no flags'}]")
    print(f"\naudio and reports under {root / 'eval'}")
    return 0 if as_expected else 1
