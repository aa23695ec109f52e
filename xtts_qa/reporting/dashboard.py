"""The history dashboard: one self-contained HTML page of trends per checkpoint and suite, regressions and runs."""

from __future__ import annotations

import os
from html import escape
from pathlib import Path

from xtts_qa import __version__
from xtts_qa.evaluation.registry import plot_groups
from xtts_qa.reporting.compare import regressions
from xtts_qa.reporting.history import HistoryStore
from xtts_qa.reporting.page import badge, fmt, page, table
from xtts_qa.reporting.record import RunRecord
from xtts_qa.reporting.svg import line_chart

__all__ = ["render_dashboard", "write_dashboard"]

#: eval metrics plotted per suite, in groups that share an axis (from the metric registry)
_EVAL_PLOTS = plot_groups()


def _link(report_path: str | None, out_dir: Path, text: str) -> str:
    if not report_path:
        return escape(text)
    href = os.path.relpath(Path(report_path).resolve(), out_dir.resolve())
    return f'<a href="{escape(Path(href).as_posix())}">{escape(text)}</a>'


def _verdict(code: int) -> str:
    return badge({0: "pass", 1: "fail", 2: "cannot run"}.get(code, "fail"), "pass" if code == 0 else "fail")


def _trend(records: list[RunRecord], checkpoint: str, suite: str) -> str:
    xs: list[str] = []
    if suite == "health":
        series: dict[str, list[float | None]] = {"errors": [], "warnings": []}
        for r in records:
            check = next((c for c in r.checks if c.checkpoint == checkpoint), None)
            if check is None:
                continue
            xs.append(r.started_at[5:16].replace("T", " "))
            series["errors"].append(float(check.summary.get("error", 0)))
            series["warnings"].append(float(check.summary.get("warning", 0)))
        return line_chart(xs, series, title=f"{checkpoint} · structural findings", y_label="count") if xs else ""
    entries = [(r, e) for r in records for e in r.evals if e.checkpoint == checkpoint and e.suite == suite]
    xs = [r.started_at[5:16].replace("T", " ") for r, _ in entries]
    charts = []
    for metrics, axis in _EVAL_PLOTS:
        series = {}
        for metric in metrics:
            for side in ("candidate", "base"):
                values = [e.metrics(side).get(metric) for _, e in entries]
                if any(v is not None for v in values):
                    series[f"{side} {metric}"] = values
        if series:
            charts.append(line_chart(xs, series, title=f"{checkpoint} · {suite} · {axis}", y_label=axis))
    return "".join(charts)


def render_dashboard(store: HistoryStore, out_path: str | Path, limit: int = 200) -> str:
    """The dashboard HTML for the newest ``limit`` runs of ``store``; links are relative to ``out_path``."""
    out_dir = Path(out_path).parent
    summaries = store.runs(limit=limit)
    records = [store.get(s.run_id) for s in summaries]
    report_of = {s.run_id: s.report_path for s in summaries}
    keys = store.series_keys()

    last: dict[str, RunRecord] = {}
    regressed: list[list[str]] = []
    for record in records:
        for checkpoint in record.checkpoints:
            grouped: dict[str, list[str]] = {}
            for cp, suite, what in regressions(last.get(checkpoint), record):
                if cp == checkpoint:
                    grouped.setdefault(suite, []).append(what)
            for suite, what in grouped.items():
                regressed.append(
                    [
                        _link(report_of.get(record.run_id), out_dir, record.run_id),
                        escape(record.started_at),
                        escape(checkpoint),
                        escape(suite),
                        escape("; ".join(what)),
                    ]
                )
            last[checkpoint] = record

    parts = [f'<h1>xtts-qa history</h1><p class="muted">{len(summaries)} runs in {escape(str(store.path))}</p>']
    parts.append(
        '<section class="card"><h2>Runs that regressed</h2>'
        + (
            table(["run", "started", "checkpoint", "suite", "what got worse"], list(reversed(regressed)))
            if regressed
            else "<p>No regressions between consecutive runs.</p>"
        )
        + "</section>"
    )
    parts.append('<section class="card"><h2>Trends</h2>')
    for checkpoint, suite in keys:
        chart = _trend(records, checkpoint, suite)
        if chart:
            parts.append(f'<h3>{escape(checkpoint)} · {escape(suite)}</h3><div class="plots">{chart}</div>')
    parts.append("</section>")
    rows = []
    for s, record in zip(reversed(summaries), reversed(records)):
        rows.append(
            [
                _link(s.report_path, out_dir, s.run_id),
                escape(s.started_at),
                escape(s.source),
                escape(s.label),
                _verdict(s.exit_code),
                escape(", ".join(record.checkpoints)),
                escape(", ".join(sorted({e.suite for e in record.evals})) or "-"),
            ]
        )
    parts.append(
        '<section class="card"><h2>Runs</h2>'
        + table(["run", "started", "source", "label", "verdict", "checkpoints", "suites"], rows)
        + "</section>"
    )
    parts.append(
        f'<p class="muted">Generated by xtts-qa {__version__} {fmt(records[-1].finished_at if records else "")}.</p>'
    )
    return page("xtts-qa history", "".join(parts))


def write_dashboard(store: HistoryStore, out_path: str | Path, limit: int = 200) -> Path:
    """Render the dashboard and write it to ``out_path``."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(render_dashboard(store, out_path, limit))
    return out_path
