"""The self-contained HTML report of one run: findings, gates, metrics, plots and side-by-side audio players.

Audio sources are relative links to files the writer copied next to the report, so the page opens from disk
with no server and no network.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from xtts_qa import __version__
from xtts_qa.reporting.page import badge, fmt, page, table
from xtts_qa.reporting.record import EVAL_METRICS, HIGHER_IS_BETTER, CheckEntry, EvalEntry, RunRecord
from xtts_qa.reporting.svg import bar_chart

__all__ = ["render_report"]

_SEVERITY_BADGE = {"error": "fail", "warning": "warn", "info": "info"}
_AUDIO_ROLES = (("audio", "candidate"), ("base_audio", "base"), ("reference_audio", "reference"))


def _verdict(code: int) -> str:
    return badge({0: "PASS", 1: "FAIL", 2: "CANNOT RUN"}.get(code, "FAIL"), "pass" if code == 0 else "fail")


def _provenance(record: RunRecord) -> str:
    prov = record.provenance
    env = prov.get("environment") or {}
    rows = [
        ["run", f'<span class="mono">{escape(record.run_id)}</span>'],
        ["started", fmt(record.started_at)],
        ["finished", fmt(record.finished_at)],
        ["source", fmt(record.source)],
    ]
    if record.label:
        rows.append(["label", fmt(record.label)])
    for key in ("python", "torch", "cuda", "device", "platform"):
        if key in env or key in prov:
            rows.append([key, fmt(prov.get(key, env.get(key)))])
    versions = env.get("versions") or {}
    if versions:
        rows.append(["packages", "<br>".join(f"{escape(k)} {escape(str(v))}" for k, v in versions.items())])
    for label, info in (prov.get("checkpoints") or {}).items():
        rows.append(
            [
                f"checkpoint {label}",
                f'{escape(str(info.get("target")))}<br><span class="mono">{fmt(info.get("hash"))}</span>',
            ]
        )
    base = prov.get("base") or {}
    if base:
        rows.append(["base", f'{escape(str(base.get("target")))}<br><span class="mono">{fmt(base.get("hash"))}</span>'])
    return '<section class="card"><h2>Provenance</h2>' + table(["", ""], rows) + "</section>"


def _check(entry: CheckEntry) -> str:
    report = entry.report
    summary = entry.summary
    head = (
        f'<h3>Structural health {_verdict(entry.exit_code)}</h3><p class="muted">layout {fmt(report.get("layout"))} · '
        f"loads in coqui-tts (strict): {fmt(report.get('loads_in_coqui'))} · {summary.get('error', 0)} errors, "
        f"{summary.get('warning', 0)} warnings, {summary.get('info', 0)} notes</p>"
    )
    rows = []
    for result in report.get("results", []):
        for f in result.get("findings", []):
            rows.append(
                [
                    badge(f["severity"], _SEVERITY_BADGE.get(f["severity"], "info")),
                    f'<span class="mono">{escape(f["code"])}</span> {escape(f["name"])}',
                    escape(f["message"]),
                    escape(f.get("why", "")),
                    escape(f.get("fix", "")),
                ]
            )
    body = (
        table(["severity", "rule", "what is wrong", "why it matters", "how to fix"], rows)
        if rows
        else "<p>No findings.</p>"
    )
    skipped = [r for r in report.get("results", []) if r.get("status") == "skipped"]
    if skipped:
        items = "".join(
            f'<li><span class="mono">{escape(r["code"])}</span> {escape(r["name"])}: {escape(r.get("skip_reason", ""))}</li>'
            for r in skipped
        )
        body += f"<details><summary>{len(skipped)} rules skipped</summary><ul>{items}</ul></details>"
    return head + body


def _player(src: str | None, caption: str) -> str:
    if not src:
        return f'<figure><figcaption>{escape(caption)}</figcaption><span class="muted">no audio</span></figure>'
    return (
        f"<figure><figcaption>{escape(caption)}</figcaption>"
        f'<audio controls preload="metadata" src="{escape(src)}" data-role="{escape(caption)}"></audio></figure>'
    )


def _metrics_table(entry: EvalEntry) -> str:
    cand, base = entry.metrics("candidate"), entry.metrics("base")
    rows = []
    for metric in EVAL_METRICS:
        if metric not in cand and metric not in base:
            continue
        c, b = cand.get(metric), base.get(metric)
        delta = c - b if c is not None and b is not None else None

        better = delta is not None and (delta > 0 if metric in HIGHER_IS_BETTER else delta < 0)
        arrow = "" if delta in (None, 0) else (" ▲" if delta > 0 else " ▼")
        cls = "" if delta in (None, 0) else (' style="color:#2e8540"' if better else ' style="color:#c0392b"')
        rows.append(
            [
                escape(metric),
                f'<td class="num">{fmt(c)}</td>',
                f'<td class="num">{fmt(b)}</td>',
                f'<td class="num"{cls}>{fmt(delta)}{arrow}</td>',
            ]
        )
    return table(["metric", "candidate", "base", "candidate − base"], rows)


def _ci(ci: object) -> str:
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(v, (int, float)) for v in ci):
        return f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"
    return "-"


_OUTCOME_BADGE = {"pass": "pass", "fail": "fail", "inconclusive": "warn", "not-applicable": "info"}


def _gates(entry: EvalEntry) -> str:
    gates = entry.report.get("gates") or []
    if not gates:
        return ""
    rows = []
    for g in gates:
        outcome = str(g.get("outcome") or ("pass" if g.get("passed") else "fail"))
        kind = _OUTCOME_BADGE.get(outcome, "fail") if g.get("passed") or outcome == "fail" else "fail"
        rows.append(
            [
                badge(outcome, kind),
                f'<span class="mono">{escape(str(g.get("expr", "")))}</span>',
                f'<td class="num">{fmt(g.get("value"))}</td>',
                _ci(g.get("ci")),
                f'<td class="num">{fmt(g.get("mde"))}</td>',
                escape(str(g.get("message", ""))),
            ]
        )
    return (
        table(["outcome", "expression", "value", "95% CI", "smallest detectable change", "message"], rows)
        + '<p class="muted">A gate fails the run on <b>fail</b>; <b>inconclusive</b> (the interval straddles the threshold) '
        "fails it only under --strict; <b>not-applicable</b> (no base, nothing measured) never does.</p>"
    )


def _legend(entry: EvalEntry) -> str:
    """What each flag raised in this evaluation means, in a listener's words."""
    flags = entry.report.get("flags") or {}
    if not flags:
        return ""
    items = "".join(f'<dt class="mono">{escape(str(f))}</dt><dd>{escape(str(why))}</dd>' for f, why in flags.items())
    return f'<section class="legend"><h4>Flags</h4><dl>{items}</dl></section>'


def _plots(entry: EvalEntry) -> str:
    sentences = entry.sentences
    if not sentences:
        return ""
    ids = [str(s.get("id")) for s in sentences]
    wer = {"candidate": [s.get("wer") for s in sentences]}
    if any(s.get("base_wer") is not None for s in sentences):
        wer["base"] = [s.get("base_wer") for s in sentences]
    sim = {}
    if any(s.get("similarity_ref") is not None for s in sentences):
        sim["vs reference"] = [s.get("similarity_ref") for s in sentences]
    if any(s.get("similarity_base") is not None for s in sentences):
        sim["vs base"] = [s.get("similarity_base") for s in sentences]
    # similarity that could not be measured is n/a: no chart of empty bars
    sim_chart = bar_chart(ids, sim, title="Speaker similarity per sentence", y_label="cosine") if sim else ""
    return (
        '<div class="plots">'
        + bar_chart(ids, wer, title="WER per sentence (candidate vs base)", y_label="WER")
        + sim_chart
        + "</div>"
    )


def _sentences(entry: EvalEntry, audio: Mapping[str, str]) -> str:
    rows = []
    for s in entry.sentences:
        verdict = str(s.get("verdict", ""))
        kind = "pass" if verdict in ("pass", "passed", "ok") else ("warn" if verdict in ("warn", "warning") else "fail")
        players = "".join(
            _player(audio.get(str(s.get(key))) if s.get(key) else None, caption) for key, caption in _AUDIO_ROLES
        )
        why = s.get("explanations") or {}
        flags = (
            ", ".join(
                f'<abbr title="{escape(str(why.get(f, "")))}">{escape(str(f))}</abbr>' for f in s.get("flags") or []
            )
            or "-"
        )
        rows.append(
            [
                f'<span class="mono">{escape(str(s.get("id")))}</span><br>{escape(str(s.get("language", "")))}',
                f'{escape(str(s.get("text", "")))}<br><span class="muted">heard: {escape(str(s.get("transcript", "")))}</span>'
                + (
                    f'<br><span class="muted">base heard: {escape(str(s.get("base_transcript")))}</span>'
                    if s.get("base_transcript")
                    else ""
                ),
                f'<td class="num">{fmt(s.get("wer"))}</td>',
                f'<td class="num">{fmt(s.get("base_wer"))}</td>',
                f'<td class="num">{fmt(s.get("cer"))}</td>',
                f'<td class="num">{fmt(s.get("similarity_ref"))}</td>',
                f'<td class="num">{fmt(s.get("similarity_base"))}</td>',
                f'<td class="num">{fmt(s.get("duration_s"), 2)}</td>',
                flags,
                badge(verdict or "?", kind),
                f'<div class="players">{players}</div>',
            ]
        )
    return table(
        [
            "id",
            "text / transcript",
            "WER",
            "base WER",
            "CER",
            "sim ref",
            "sim base",
            "dur s",
            "flags",
            "verdict",
            "listen",
        ],
        rows,
        cls="sentences",
    )


def _eval(entry: EvalEntry, audio: Mapping[str, str]) -> str:
    prov = entry.report.get("provenance") or {}
    meta = " · ".join(
        f"{k}: {escape(str(prov[k]))}" for k in ("asr_model", "speaker_model", "normaliser", "device") if prov.get(k)
    )
    headline = entry.report.get("headline")
    top = f'<p class="headline"><b>{escape(str(headline))}</b></p>' if headline else ""
    return (
        f'<h3>Suite {escape(entry.suite)} {_verdict(entry.exit_code)}</h3>{top}<p class="muted">{meta}</p>'
        + _gates(entry)
        + _metrics_table(entry)
        + _plots(entry)
        + _legend(entry)
        + _sentences(entry, audio)
    )


def render_report(record: RunRecord, audio: Mapping[str, str] | None = None) -> str:
    """The HTML report of ``record``; ``audio`` maps each audio path named in the evals to its link (relative)."""
    audio = audio or {}
    headlines = [
        f"{e.checkpoint} · {e.suite}: {e.report.get('headline')}" for e in record.evals if e.report.get("headline")
    ]
    parts = [f"<h1>xtts-qa run {_verdict(record.exit_code)}</h1>"]
    parts += [f'<p class="headline"><b>{escape(h)}</b></p>' for h in headlines]
    parts += [
        f'<p class="muted">{escape(record.run_id)} · {len(record.checkpoints)} checkpoints · '
        f"{len(record.checks)} health checks · {len(record.evals)} evaluations</p>"
    ]
    if record.gates:
        rows = [
            [
                badge("pass" if g.get("passed") else "fail", "pass" if g.get("passed") else "fail"),
                f'<span class="mono">{escape(str(g.get("expr")))}</span>',
                escape(str(g.get("checkpoint", ""))),
                escape(str(g.get("suite", ""))),
                f'<td class="num">{fmt(g.get("value"))}</td>',
                escape(str(g.get("message", ""))),
            ]
            for g in record.gates
        ]
        parts.append(
            '<section class="card"><h2>Run gates</h2>'
            + table(["", "gate", "checkpoint", "suite", "value", "message"], rows)
            + "</section>"
        )
    for label in record.checkpoints:
        section = [f"<h2>Checkpoint {escape(label)}</h2>"]
        for check in (c for c in record.checks if c.checkpoint == label):
            section.append(f'<p class="mono">{escape(str(check.report.get("target")))}</p>' + _check(check))
        for entry in (e for e in record.evals if e.checkpoint == label):
            section.append(_eval(entry, audio))
        parts.append('<section class="card">' + "".join(section) + "</section>")
    parts.append(_provenance(record))
    parts.append(f'<p class="muted">Generated by xtts-qa {__version__}. Opens from disk; no network.</p>')
    return page(f"xtts-qa run {record.run_id}", "".join(parts))
