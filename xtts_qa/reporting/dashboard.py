"""The history dashboard: one self-contained HTML page of trends per checkpoint and suite, regressions and runs.

Rendered from ``templates/dashboard.html.j2`` with autoescape (checkpoint labels, paths and run labels are shown as
text); the trend charts are :class:`~markupsafe.Markup` from :mod:`xtts_qa.reporting.svg`, escaped there.
"""

from __future__ import annotations

import os
from pathlib import Path

from markupsafe import Markup

from xtts_qa import __version__
from xtts_qa.evaluation.registry import plot_groups
from xtts_qa.reporting.compare import regressions
from xtts_qa.reporting.history import HistoryStore, RunSummary
from xtts_qa.reporting.html import template_env
from xtts_qa.reporting.record import RunRecord
from xtts_qa.reporting.svg import line_chart

__all__ = ["render_dashboard", "write_dashboard"]

#: eval metrics plotted per suite, in groups that share an axis (from the metric registry)
_EVAL_PLOTS = plot_groups()
#: a run's outcome by exit code, for runs stored before outcomes were, and its badge colour
_OUTCOMES = {0: "pass", 1: "fail", 2: "inconclusive"}
_OUTCOME_KIND = {"pass": "pass", "fail": "fail", "inconclusive": "warn"}


def _href(report_path: str | None, out_dir: Path) -> str | None:
    """The run report's link relative to the dashboard's folder (None when the run has no report)."""
    if not report_path:
        return None
    return Path(os.path.relpath(Path(report_path).resolve(), out_dir.resolve())).as_posix()


def _outcome(summary: RunSummary) -> str:
    """The stored verdict's outcome (runs stored before outcomes were: from the exit code)."""
    return summary.outcome or _OUTCOMES.get(summary.exit_code, "inconclusive")


def _trend(records: list[RunRecord], checkpoint: str, suite: str) -> list[Markup]:
    """The trend charts of one checkpoint x suite; Markup from svg.py, which escaped every label it embeds."""
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
        return [line_chart(xs, series, title=f"{checkpoint} · structural findings", y_label="count")] if xs else []
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
    return charts


def render_dashboard(store: HistoryStore, out_path: str | Path, limit: int = 200) -> str:
    """The dashboard HTML for the newest ``limit`` runs of ``store``; links are relative to ``out_path``."""
    out_dir = Path(out_path).parent
    summaries = store.runs(limit=limit)
    records = [store.get(s.run_id) for s in summaries]
    report_of = {s.run_id: s.report_path for s in summaries}

    # partial runs are listed, but never a trend point or either side of a regression (docs/verdict.md)
    complete = [r for r in records if not r.partial]
    last: dict[str, RunRecord] = {}
    regressed: list[dict[str, str | None]] = []
    for record in complete:
        for checkpoint in record.checkpoints:
            grouped: dict[str, list[str]] = {}
            for cp, suite, what in regressions(last.get(checkpoint), record):
                if cp == checkpoint:
                    grouped.setdefault(suite, []).append(what)
            for suite, worse in grouped.items():
                regressed.append(
                    {
                        "href": _href(report_of.get(record.run_id), out_dir),
                        "run_id": record.run_id,
                        "started_at": record.started_at,
                        "checkpoint": checkpoint,
                        "suite": suite,
                        "what": "; ".join(worse),
                    }
                )
            last[checkpoint] = record

    trends = []
    for checkpoint, suite in store.series_keys():
        charts = _trend(complete, checkpoint, suite)
        if charts:
            trends.append({"checkpoint": checkpoint, "suite": suite, "charts": charts})
    runs = [
        {
            "href": _href(s.report_path, out_dir),
            "run_id": s.run_id,
            "started_at": s.started_at,
            "source": s.source,
            "label": s.label,
            "outcome": _outcome(s),
            "kind": _OUTCOME_KIND.get(_outcome(s), "fail"),
            "partial": s.partial,
            "checkpoints": record.checkpoints,
            "suites": sorted({e.suite for e in record.evals}),
        }
        for s, record in zip(reversed(summaries), reversed(records), strict=True)
    ]
    return (
        template_env()
        .get_template("dashboard.html.j2")
        .render(
            title="xtts-qa history",
            version=__version__,
            run_count=len(summaries),
            store_path=str(store.path),
            regressed=list(reversed(regressed)),
            trends=trends,
            runs=runs,
            generated=records[-1].finished_at if records else "",
        )
    )


def write_dashboard(store: HistoryStore, out_path: str | Path, limit: int = 200) -> Path:
    """Render the dashboard and write it to ``out_path``."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(render_dashboard(store, out_path, limit))
    return out_path
