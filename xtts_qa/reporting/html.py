"""The self-contained HTML report of one run: findings, gates, metrics, plots and side-by-side audio players.

The page is a Jinja2 template (``templates/report.html.j2``, extending ``base.html.j2``) rendered with autoescape:
this module turns a :class:`RunRecord` into plain text values (transcripts, file names and labels are untrusted and
are escaped by the template); only the SVG charts are passed as :class:`~markupsafe.Markup`, escaped in
:mod:`xtts_qa.reporting.svg`. Audio sources are relative links to files the writer copied next to the report, so the
page opens from disk with no server and no network.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from xtts_qa import __version__
from xtts_qa.progress import plural
from xtts_qa.reporting.record import EVAL_METRICS, HIGHER_IS_BETTER, CheckEntry, EvalEntry, RunRecord
from xtts_qa.reporting.svg import bar_chart
from xtts_qa.verdict import checkpoint_verdict, coverage_line, decide

__all__ = ["fmt", "render_report", "template_env"]

_SEVERITY_BADGE = {"error": "fail", "warning": "warn", "info": "info"}
#: badge colour of a gate's or a run's outcome
_OUTCOME_BADGE = {"pass": "pass", "fail": "fail", "inconclusive": "warn", "not-applicable": "info"}
_AUDIO_ROLES = (("audio", "candidate"), ("base_audio", "base"), ("reference_audio", "reference"))


def fmt(value: Any, digits: int = 3) -> str:
    """A value for a table cell as text: ``-`` when absent, yes/no for booleans, floats to ``digits`` places."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


@functools.cache
def template_env() -> Environment:
    """The Jinja2 environment of xtts_qa's pages (report and dashboard): package templates, autoescape, strict."""
    env = Environment(
        loader=PackageLoader("xtts_qa.reporting", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "j2"), default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = fmt
    env.filters["plural"] = plural
    return env


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _check(entry: CheckEntry, exit_code: int) -> dict[str, Any]:
    """One checkpoint's structural section; ``exit_code`` is its verdict under the run's policy."""
    report, summary = entry.report, entry.summary
    findings = [
        {
            "severity": _text(f.get("severity")),
            "kind": _SEVERITY_BADGE.get(str(f.get("severity")), "info"),
            "code": _text(f.get("code")),
            "name": _text(f.get("name")),
            "message": _text(f.get("message")),
            "file": _text(f.get("file")),
            "why": _text(f.get("why")),
            "fix": _text(f.get("fix")),
        }
        for result in report.get("results", [])
        for f in result.get("findings", [])
    ]
    skipped = [
        {"code": _text(r.get("code")), "name": _text(r.get("name")), "reason": _text(r.get("skip_reason"))}
        for r in report.get("results", [])
        if r.get("status") == "skipped"
    ]
    return {
        "target": _text(report.get("target")),
        "exit_code": exit_code,
        "layout": report.get("layout"),
        "loads": report.get("loads_in_coqui"),
        "errors": summary.get("error", 0),
        "warnings": summary.get("warning", 0),
        "notes": summary.get("info", 0),
        "findings": findings,
        "skipped": skipped,
    }


def _ci(ci: object) -> str:
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(v, (int, float)) for v in ci):
        return f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"
    return "-"


def _gates(entry: EvalEntry) -> list[dict[str, Any]]:
    rows = []
    for g in entry.report.get("gates") or []:
        outcome = str(g.get("outcome") or ("pass" if g.get("passed") else "fail"))
        kind = _OUTCOME_BADGE.get(outcome, "fail") if g.get("passed") or outcome == "fail" else "fail"
        rows.append(
            {
                "outcome": outcome,
                "kind": kind,
                "expr": _text(g.get("expr")),
                "value": g.get("value"),
                "ci": _ci(g.get("ci")),
                "mde": g.get("mde"),
                "message": _text(g.get("message")),
            }
        )
    return rows


def _metrics(entry: EvalEntry) -> list[dict[str, Any]]:
    cand, base = entry.metrics("candidate"), entry.metrics("base")
    rows = []
    for metric in EVAL_METRICS:
        if metric not in cand and metric not in base:
            continue
        c, b = cand.get(metric), base.get(metric)
        delta = c - b if c is not None and b is not None else None
        arrow, trend = "", ""
        if delta:  # neither unmeasured nor unchanged
            better = delta > 0 if metric in HIGHER_IS_BETTER else delta < 0
            arrow, trend = (" ▲" if delta > 0 else " ▼"), ("better" if better else "worse")
        rows.append({"metric": metric, "candidate": c, "base": b, "delta": delta, "arrow": arrow, "trend": trend})
    return rows


def _plots(entry: EvalEntry) -> list[Markup]:
    sentences = entry.sentences
    if not sentences:
        return []
    ids = [str(s.get("id")) for s in sentences]
    wer = {"candidate": [s.get("wer") for s in sentences]}
    if any(s.get("base_wer") is not None for s in sentences):
        wer["base"] = [s.get("base_wer") for s in sentences]
    sim = {}
    if any(s.get("similarity_ref") is not None for s in sentences):
        sim["vs reference"] = [s.get("similarity_ref") for s in sentences]
    if any(s.get("similarity_base") is not None for s in sentences):
        sim["vs base"] = [s.get("similarity_base") for s in sentences]
    # Markup from svg.py: every text inside (sentence ids, series names) was escaped there
    charts = [bar_chart(ids, wer, title="WER per sentence (candidate vs base)", y_label="WER")]
    if sim:  # similarity that could not be measured is n/a: no chart of empty bars
        charts.append(bar_chart(ids, sim, title="Speaker similarity per sentence", y_label="cosine"))
    return charts


def _sentence(s: Mapping[str, Any], audio: Mapping[str, str]) -> dict[str, Any]:
    verdict = _text(s.get("verdict"))
    kind = "pass" if verdict in ("pass", "passed", "ok") else ("warn" if verdict in ("warn", "warning") else "fail")
    why = s.get("explanations") or {}
    return {
        "id": _text(s.get("id")),
        "language": _text(s.get("language")),
        "text": _text(s.get("text")),
        "transcript": _text(s.get("transcript")),
        "base_transcript": _text(s.get("base_transcript")),
        **{k: s.get(k) for k in ("wer", "base_wer", "cer", "similarity_ref", "similarity_base", "duration_s")},
        "flags": [(_text(f), _text(why.get(f))) for f in s.get("flags") or []],
        "verdict": verdict or "?",
        "kind": kind,
        "players": [(caption, audio.get(str(s[key])) if s.get(key) else None) for key, caption in _AUDIO_ROLES],
    }


def _eval(entry: EvalEntry, audio: Mapping[str, str]) -> dict[str, Any]:
    prov = entry.report.get("provenance") or {}
    return {
        "suite": entry.suite,
        "exit_code": entry.exit_code,
        "headline": _text(entry.report.get("headline")),
        "meta": [f"{k}: {prov[k]}" for k in ("asr_model", "speaker_model", "normaliser", "device") if prov.get(k)],
        "gates": _gates(entry),
        "metrics": _metrics(entry),
        "plots": _plots(entry),
        "flags": [(_text(f), _text(why)) for f, why in (entry.report.get("flags") or {}).items()],
        "sentences": [_sentence(s, audio) for s in entry.sentences],
    }


def _provenance(record: RunRecord) -> list[dict[str, Any]]:
    """Rows of the provenance table: a key, lines of text, then lines in a monospace font."""
    prov = record.provenance
    env = prov.get("environment") or {}

    def row(key: str, text: list[str] | None = None, mono: list[str] | None = None) -> dict[str, Any]:
        return {"key": key, "text": text or [], "mono": mono or []}

    rows = [
        row("run", mono=[record.run_id]),
        row("started", [fmt(record.started_at)]),
        row("finished", [fmt(record.finished_at)]),
        row("source", [fmt(record.source)]),
    ]
    if record.label:
        rows.append(row("label", [record.label]))
    for key in ("python", "torch", "cuda", "device", "platform"):
        if key in env or key in prov:
            rows.append(row(key, [fmt(prov.get(key, env.get(key)))]))
    versions = env.get("versions") or {}
    if versions:
        rows.append(row("packages", [f"{k} {v}" for k, v in versions.items()]))
    for label, info in (prov.get("checkpoints") or {}).items():
        rows.append(row(f"checkpoint {label}", [_text(info.get("target"))], [fmt(info.get("hash"))]))
    base = prov.get("base") or {}
    if base:
        rows.append(row("base", [_text(base.get("target"))], [fmt(base.get("hash"))]))
    return rows


def _run_verdict(record: RunRecord) -> dict[str, Any]:
    """The run's one verdict (:func:`xtts_qa.verdict.decide` under its stored policy): outcome, reasons, notes."""
    verdict = decide(record)
    return {
        "label": verdict.outcome.upper(),
        "kind": _OUTCOME_BADGE.get(verdict.outcome, "fail"),
        "reasons": list(verdict.reasons),
        "notes": list(verdict.notes),
        "coverage": coverage_line(record.coverage) if record.partial else "",
    }


def render_report(record: RunRecord, audio: Mapping[str, str] | None = None) -> str:
    """The HTML report of ``record``; ``audio`` maps each audio path named in the evals to its link (relative)."""
    audio = audio or {}
    sections = [
        {
            "label": label,
            "checks": [
                _check(c, checkpoint_verdict(record, label).exit_code) for c in record.checks if c.checkpoint == label
            ],
            "evals": [_eval(e, audio) for e in record.evals if e.checkpoint == label],
        }
        for label in record.checkpoints
    ]
    run_gates = [
        {
            "passed": bool(g.get("passed")),
            "expr": _text(g.get("expr")),
            "checkpoint": _text(g.get("checkpoint")),
            "suite": _text(g.get("suite")),
            "value": g.get("value"),
            "message": _text(g.get("message")),
        }
        for g in record.gates
    ]
    return (
        template_env()
        .get_template("report.html.j2")
        .render(
            title=f"xtts-qa run {record.run_id}" + (f" ({record.label})" if record.label else ""),
            version=__version__,
            record=record,
            run_verdict=_run_verdict(record),
            headlines=[
                f"{e.checkpoint} · {e.suite}: {e.report.get('headline')}"
                for e in record.evals
                if e.report.get("headline")
            ],
            run_gates=run_gates,
            sections=sections,
            provenance=_provenance(record),
        )
    )
