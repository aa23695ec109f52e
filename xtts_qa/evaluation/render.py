"""Terminal summary of an :class:`~xtts_qa.evaluation.results.EvalReport` (plain text; colour only on a TTY)."""

from __future__ import annotations

import textwrap

from xtts_qa.evaluation.results import EvalReport

__all__ = ["render_eval"]

_METRIC_ROWS = ("wer", "cer", "mean_wer", "hallucination_rate", "similarity_ref", "similarity_base", "rtf", "flag_rate")


def _paint(text: str, code: str, colour: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if colour else text


def _fmt(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "-"
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def _short(text: str, width: int) -> str:
    return textwrap.shorten(text, width=width, placeholder="...") if text else "(nothing)"


def render_eval(report: EvalReport, *, colour: bool = False, verbose: bool = False) -> str:
    """Per-sentence table (text, transcript, WER, similarity, duration, verdict), metrics side by side, gates, verdict."""
    p = report.provenance
    lines = [f"xtts-qa eval {report.candidate}" + (f"  (base: {report.base})" if report.base else ""),
             f"  suite {report.suite}: {len(report.sentences)} sentences   asr: {p.get('asr_model')}   speaker: {p.get('speaker_model')}"
             f"   device: {p.get('device')}   normaliser: {p.get('normaliser')}",
             ""]
    lines.append(f"  {'sentence':16} {'verdict':7} {'WER':>6} {'base':>6} {'sim_ref':>7} {'sim_base':>8} {'dur_s':>6} {'rtf':>6}  flags")
    for s in report.sentences:
        verdict = _paint(s.verdict, "32" if s.verdict == "pass" else "31", colour)
        pad = " " * (7 - len(s.verdict))
        lines.append(f"  {s.id[:16]:16} {verdict}{pad} {_fmt(s.wer):>6} {_fmt(s.base_wer):>6} {_fmt(s.similarity_ref):>7} "
                     f"{_fmt(s.similarity_base):>8} {s.duration_s:6.2f} {s.rtf:6.3f}  {','.join(s.flags) or '-'}")
        if verbose or s.verdict == "fail":
            lines.append(f"      text:  {_short(s.text, 90)}")
            lines.append(f"      heard: {_short(s.transcript, 90)}")
            if s.base_transcript is not None and (verbose or s.base_transcript != s.transcript):
                lines.append(f"      base:  {_short(s.base_transcript, 90)}")
    lines += ["", f"  {'metric':20} {'candidate':>10} {'base':>10} {'delta':>10}"]
    cand, base = report.metrics.to_dict(), report.base_metrics.to_dict() if report.base_metrics else None
    for name in _METRIC_ROWS:
        c = cand.get(name)
        b = base.get(name) if base else None
        delta = c - b if c is not None and b is not None else None
        lines.append(f"  {name:20} {_fmt(c):>10} {_fmt(b):>10} {_fmt(delta, True):>10}")
    lines += ["", "  gates:"]
    for g in report.gates:
        mark = _paint("ok    ", "32", colour) if g.passed else _paint("FAILED", "31", colour)
        lines.append(f"    {mark} {g.expr:28} {g.message}")
    if report.out_dir:
        lines += ["", f"  audio and report.json: {report.out_dir}"]
    t = p.get("timings", {})
    cache = p.get("cache", {})
    lines.append(f"  {report.seconds:.1f}s (synthesis {t.get('synthesis_s', 0):.1f}s, asr {t.get('asr_s', 0):.1f}s, "
                 f"speaker {t.get('similarity_s', 0):.1f}s; cache: {cache.get('audio_hits', 0)} audio and "
                 f"{cache.get('transcript_hits', 0)} transcript hits)")
    verdict = "PASSED" if report.passed else f"FAILED: {', '.join(g.expr for g in report.failed_gates)}"
    lines += ["", _paint(verdict, "32" if report.passed else "31", colour) + f"  (exit {report.exit_code})"]
    return "\n".join(lines)
