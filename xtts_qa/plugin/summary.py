"""The ``xtts_qa summary`` section printed at the end of a pytest session."""

from __future__ import annotations

from xtts_qa.plugin.collector import RunCollector
from xtts_qa.plugin.options import PluginSettings

__all__ = ["summary_lines"]


def _num(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


def summary_lines(collector: RunCollector, settings: PluginSettings) -> list[str]:
    """One row per checkpoint (structural counts), one per evaluation (metrics vs base), warnings, then paths."""
    from xtts_qa.verdict import checkpoint_verdict

    record = collector.record
    if record is None:
        return []
    lines = []
    if record.checks:
        lines.append(
            f"{'checkpoint':<30} {'errors':>6} {'warnings':>8} {'notes':>5} {'passed':>6} {'skipped':>7}  verdict"
        )
        for check in record.checks:
            results = check.report.get("results", [])
            passed = sum(1 for r in results if r["status"] == "passed")
            skipped = sum(1 for r in results if r["status"] == "skipped")
            s = check.summary
            # the row's verdict under the run's policy (fail_on, baseline, health gates), as the run's verdict reads it
            code = checkpoint_verdict(record, check.checkpoint).exit_code
            verdict = {0: "healthy", 1: "UNHEALTHY", 2: "CANNOT CHECK"}.get(code, "?")
            lines.append(
                f"{check.checkpoint:<30} {s.get('error', 0):>6} {s.get('warning', 0):>8} {s.get('info', 0):>5} "
                f"{passed:>6} {skipped:>7}  {verdict}"
            )
    if record.evals:
        if lines:
            lines.append("")
        lines.append(
            f"{'checkpoint':<30} {'suite':<12} {'WER':>6} {'base':>6} {'sim ref':>7} {'sim base':>8} "
            f"{'hi-WER':>6}  verdict"
        )
        for e in record.evals:
            c, b = e.metrics("candidate"), e.metrics("base")
            wer = c.get("mean_wer", c.get("wer"))
            base_wer = b.get("mean_wer", b.get("wer"))
            high = c.get("high_wer_rate", c.get("hallucination_rate"))
            lines.append(
                f"{e.checkpoint:<30} {e.suite:<12} {_num(wer):>6} {_num(base_wer):>6} "
                f"{_num(c.get('similarity_ref')):>7} {_num(c.get('similarity_base')):>8} {_num(high):>6}  "
                f"{'pass' if e.passed else 'FAIL'}"
            )
    warned = [
        (c.checkpoint, f)
        for c in record.checks
        for r in c.report.get("results", [])
        for f in r.get("findings", [])
        if f.get("severity") == "warning"
    ]
    if warned:
        lines.append("")
        lines.append(f"warnings ({len(warned)}, not failing):")
        lines += [f"  {cp}: {f['code']} {f['name']}: {f['message']}" for cp, f in warned]
    for g in record.gates:
        lines.append(
            f"gate {'pass' if g.get('passed') else 'FAIL'}: {g.get('checkpoint')}/{g.get('suite')} {g.get('expr')}: "
            f"{g.get('message')}"
        )
    lines.append("")
    if collector.paths is not None:
        lines.append(f"report: {collector.paths.html}")
        lines.append(f"results: {collector.paths.summary} (+ {collector.paths.sentences.name})")
    if settings.history is not None and collector.history_runs is not None:
        runs = collector.history_runs
        lines.append(
            f"history: {settings.history} ({runs} run{'s' if runs != 1 else ''} stored; "
            f"`xtts-qa dashboard --history {settings.history}`)"
        )
    verdict = collector.verdict
    if verdict is None:
        from xtts_qa.plugin.collector import decide_run

        verdict = decide_run(record)
    if record.partial:
        from xtts_qa.verdict import coverage_line

        lines.append(
            f"partial run: {coverage_line(record.coverage) or 'some items did not run'}; stored as partial "
            "(kept out of latest, previous and trends)"
        )
    for reason in verdict.reasons:
        lines.append(f"  {reason}")
    for note in verdict.notes:
        lines.append(f"  note: {note}")
    policy = f"fail on {settings.fail_on}" + (f", baseline {settings.baseline}" if settings.baseline else "")
    lines.append(f"run: {record.run_id}  verdict: {verdict.outcome.upper()} (exit {verdict.exit_code}; {policy})")
    if collector.failed_session:
        lines.append(f"pytest exits {verdict.exit_code}: the run's verdict ({verdict.outcome}), whatever the items did")
    return lines
