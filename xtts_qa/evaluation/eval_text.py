"""Terminal summary of an :class:`~xtts_qa.evaluation.results.EvalReport` (plain text; colour only on a TTY).

The first line says in one sentence what is wrong; every flag that appears is explained in one line; gates show
their outcome (pass, FAIL, inconclusive, n/a) and the exit-code policy.
"""

from __future__ import annotations

import textwrap

from xtts_qa.evaluation.registry import FLAGS, METRICS, tracked_metrics
from xtts_qa.evaluation.results import EvalReport

__all__ = ["render_eval"]

_OUTCOME = {
    "pass": ("ok    ", "32"),
    "fail": ("FAIL  ", "31"),
    "inconclusive": ("UNSURE", "33"),
    "not-applicable": ("n/a   ", "2"),
}


def _paint(text: str, code: str, colour: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if colour else text


def _fmt(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "n/a"
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def _short(text: str, width: int) -> str:
    return textwrap.shorten(text, width=width, placeholder="...") if text else "(nothing)"


def render_eval(report: EvalReport, *, colour: bool = False, verbose: bool = False) -> str:
    """Headline, per-sentence table with flags, flag legend, metrics side by side, gates, verdict."""
    p = report.provenance
    ok = report.passed
    lines = [
        _paint(report.headline, "32" if ok else "31", colour),
        "",
        f"xtts-qa eval {report.candidate}" + (f"  (base: {report.base})" if report.base else "  (no base)"),
        f"  suite {report.suite}: {len(report.sentences)} sentences   asr: {p.get('asr_model')}   speaker: "
        f"{p.get('speaker_model')}"
        f"   device: {p.get('device')}",
        f"  normalisers: {'; '.join(f'{k}: {v}' for k, v in (p.get('normalisers') or {}).items())}",
        "",
    ]
    lines.append(
        f"  {'sentence':16} {'verdict':7} {'WER':>6} {'base':>6} {'sim_ref':>7} {'sim_base':>8} {'dur_s':>6} "
        f"{'LUFS':>6} {'rtf':>6}  flags"
    )
    for s in report.sentences:
        verdict = _paint(s.verdict, "32" if s.verdict == "pass" else "31", colour)
        pad = " " * (7 - len(s.verdict))
        rtf = "cached" if s.rtf is None else f"{s.rtf:.3f}"
        loud = "n/a" if s.loudness is None else f"{s.loudness:.1f}"
        lines.append(
            f"  {s.id[:16]:16} {verdict}{pad} {_fmt(s.wer):>6} "
            f"{_fmt(s.base_wer) if s.base_wer is not None else '-':>6} "
            f"{_fmt(s.similarity_ref):>7} {_fmt(s.similarity_base) if report.base else '-':>8} "
            f"{s.duration_s:6.2f} {loud:>6} "
            f"{rtf:>6}  {','.join(s.flags) or '-'}"
        )
        if verbose or s.verdict == "fail":
            lines.append(f"      text:  {_short(s.text, 90)}")
            lines.append(
                f"      heard: {_short(s.transcript, 90)}"
                + (f"   (language heard: {s.detected_language})" if "wrong-language" in s.flags else "")
            )
            if s.base_transcript is not None and (verbose or s.base_transcript != s.transcript):
                lines.append(f"      base:  {_short(s.base_transcript, 90)}")
    seen = [f for f in FLAGS if any(f in s.flags for s in report.sentences)]
    if seen:
        lines += ["", "  flags:"] + [f"    {f:15} {FLAGS[f]}" for f in seen]
    lines += ["", f"  {'metric':24} {'candidate':>10} {'base':>10} {'delta':>10}"]
    cand, base = report.metrics.to_dict(), report.base_metrics.to_dict() if report.base_metrics else None
    for name in tracked_metrics():
        c = cand.get(name)
        b = base.get(name) if base else None
        delta = c - b if c is not None and b is not None else None
        unit = METRICS[name].unit
        lines.append(
            f"  {name:24} {_fmt(c):>10} {_fmt(b) if base else '-':>10} {_fmt(delta, True) if base else '-':>10}  {unit}"
        )
    lines += ["", "  gates:"]
    for g in report.gates:
        word, code = _OUTCOME.get(g.outcome, ("?", "0"))
        if g.outcome == "inconclusive" and report.strict:
            word, code = "UNSURE", "31"
        lines.append(f"    {_paint(word, code, colour)} {g.expr:28} {g.message}")
    lines.append(
        "    (exit code: 1 when a gate fails; inconclusive gates fail only with --strict; n/a gates never fail)"
    )
    if report.out_dir:
        lines += ["", f"  audio and reports: {report.out_dir}"]
    t = p.get("timings", {})
    cache = p.get("cache", {})
    lines.append(
        f"  {report.seconds:.1f}s (synthesis {t.get('synthesis_s', 0):.1f}s, asr {t.get('asr_s', 0):.1f}s, "
        f"speaker {t.get('similarity_s', 0):.1f}s; cache: {cache.get('audio_hits', 0)} audio and "
        f"{cache.get('transcript_hits', 0)} transcript hits; rtf {p.get('rtf_source', '')})"
    )
    verdict = "PASSED" if ok else "FAILED: " + ", ".join(g.expr for g in report.gates if not g.passed)
    lines += ["", _paint(verdict, "32" if ok else "31", colour) + f"  (exit {report.exit_code})"]
    return "\n".join(lines)
