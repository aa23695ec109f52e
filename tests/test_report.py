"""Run reports on disk, gates, compare and the dashboard, built from fixture check and eval dicts."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from markupsafe import escape
from plugin_helpers import run_record

from xtts_qa.cli import main
from xtts_qa.errors import UsageError
from xtts_qa.reporting import (
    HistoryStore,
    RunRecord,
    compare_records,
    evaluate_run,
    load_record,
    parse_gate,
    parse_gates,
    publish,
    write_dashboard,
    write_run,
)


def test_write_run_files_and_provenance(tmp_path: Path) -> None:
    record = run_record("r1", "2026-01-01T00:00:00+00:00", audio_dir=tmp_path / "audio-src", failing=("s2",))
    paths = write_run(record, tmp_path / "reports")
    assert load_record(paths.summary) == RunRecord.from_dict(json.loads(paths.summary.read_text()))
    assert load_record(paths.folder).to_dict() == record.to_dict()
    rows = [json.loads(line) for line in paths.sentences.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["s1", "s2", "s3"]
    assert rows[1]["verdict"] == "fail" and rows[0]["provenance"]["normaliser"] == "english-basic"
    assert set(rows[0]["provenance"]) >= {
        "candidate_hash",
        "base_hash",
        "asr_model",
        "speaker_model",
        "normaliser",
        "seeds",
    }


def test_html_is_self_contained_with_players_and_plots(tmp_path: Path) -> None:
    record = run_record("r1", "2026-01-01T00:00:00+00:00", audio_dir=tmp_path / "src", errors=1, failing=("s2",))
    html = write_run(record, tmp_path / "reports").html.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # no network assets
    assert "<script" not in html
    sources = re.findall(
        r'<audio controls preload="metadata" src="([^"]+)" data-role="(candidate|base|reference)"', html
    )
    assert len(sources) == 9
    for src, _ in sources:
        assert not src.startswith("/") and (tmp_path / "reports" / "r1" / src).is_file()
    assert html.count('<svg class="plot"') == 2 and 'class="bar"' in html
    assert "XQ401" in html and "copy dvae.pth from the base" in html and "something else entirely" in html


def test_report_states_the_runs_verdict_and_why(tmp_path: Path) -> None:
    failed = run_record("r1", "2026-01-01T00:00:00+00:00", errors=1)
    html = write_run(failed, tmp_path / "reports").html.read_text()
    verdict = failed.verdict()
    assert verdict.outcome == "fail" and verdict.reasons
    assert re.search(r'<h1>xtts-qa run <span class="badge fail">FAIL</span></h1>', html)
    for reason in verdict.reasons:  # each reason decide() gives, one list item each
        assert f"<li>{escape(reason)}</li>" in html
    partial = dataclasses.replace(
        run_record("r2", "2026-01-01T00:00:00+00:00"),
        partial=True,
        coverage={"items": {"ran": 1, "collected": 4}, "why": "-k smoke"},
    )
    html = write_run(partial, tmp_path / "reports").html.read_text()
    assert partial.verdict().outcome == "inconclusive"
    assert '<span class="badge warn">INCONCLUSIVE</span>' in html
    assert "Partial run:</b> ran 1 of 4 items (-k smoke)" in html


def test_missing_audio_is_reported_not_fatal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    record = run_record("r1", "2026-01-01T00:00:00+00:00", audio_dir=tmp_path / "src")
    for wav in (tmp_path / "src").rglob("s1.wav"):
        wav.unlink()
    html = write_run(record, tmp_path / "reports").html.read_text()
    assert "no audio" in html and "is missing" in caplog.text


@pytest.mark.parametrize(
    "expr, metric",
    [
        ("wer <= 0.5", "wer"),
        ("wer_delta<=0.05", "wer_delta"),
        ("similarity_delta >= -0.05", "similarity_ref_delta"),
        ("health.error <= 0", "health.error"),
        ("health.warning<=3", "health.warning"),
    ],
)
def test_parse_gate(expr: str, metric: str) -> None:
    assert parse_gate(expr).metric == metric


@pytest.mark.parametrize("expr", ["wer", "wer <= lots", "speed >= 1", "health.errors <= 0", "health.error <= -1"])
def test_parse_gate_rejects(expr: str) -> None:
    with pytest.raises(UsageError):
        parse_gate(expr)


def test_gate_precedence_and_stored_interval() -> None:
    record = run_record("r1", "2026-01-01T00:00:00+00:00", wer=0.1)
    stored = {(r.metric, r.source): r for r in evaluate_run(record)}
    assert stored[("wer", "report")].passed and stored[("health.error", "report")].passed
    # an override on the same metric replaces the stored gate; the delta gate is judged on its stored interval
    results = evaluate_run(record, parse_gates(["wer <= 0.05", "wer_delta <= 0.025"]))
    by_metric = {r.metric: r for r in results}
    assert by_metric["wer"].source == "override" and not by_metric["wer"].passed
    assert by_metric["wer_delta"].ci is not None
    assert by_metric["wer_delta"].passed  # stored CI is [value-0.01, value+0.01] around 0.03: the low end meets 0.025
    assert not evaluate_run(record, parse_gates(["wer_delta <= 0.01"]))[-1].passed
    broken = run_record("r2", "2026-01-01T00:00:00+00:00", errors=2)
    health = [r for r in evaluate_run(broken) if r.suite == "health"]
    assert [r.passed for r in health] == [False]
    assert all(r.passed for r in evaluate_run(broken, parse_gates(["health.error <= 2"])) if r.suite == "health")


def test_gate_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history = tmp_path / "h.sqlite"
    good = run_record("20260101T000000-aaaaaa", "2026-01-01T00:00:00+00:00")
    bad = run_record("20260102T000000-bbbbbb", "2026-01-02T00:00:00+00:00", wer=0.2, errors=1, gates_pass=False)
    publish(good, tmp_path / "reports", history)
    assert main(["-q", "gate", "--history", str(history)]) == 0
    publish(bad, tmp_path / "reports", history)
    assert main(["-q", "gate", "--history", str(history)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  finetune" in out and "GATE FAILED (20260102T000000-bbbbbb)" in out
    assert main(["-q", "gate", "20260101", "--history", str(history)]) == 0  # id prefix
    assert (
        main(
            [
                "-q",
                "gate",
                str(tmp_path / "reports" / bad.run_id / "summary.json"),
                "--gate",
                "health.error <= 1",
                "--gate",
                "wer_delta <= 0.5",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["-q", "gate", "latest", "--history", str(history), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["exit_code"] == 1
    assert main(["-q", "gate", "--history", str(tmp_path / "none.sqlite")]) == 2
    assert main(["-q", "gate", "--history", str(history), "--gate", "nonsense"]) == 2


def test_gate_takes_thresholds_from_the_suite_file(tmp_path: Path) -> None:
    suite = tmp_path / "smoke.yaml"
    suite.write_text("name: smoke\nreference: ref.wav\ngates: ['wer <= 0.01']\nsentences:\n  - {id: a, text: Hello.}\n")
    record = run_record("r1", "2026-01-01T00:00:00+00:00")
    path = write_run(record, tmp_path / "reports").summary
    assert main(["-q", "gate", str(path)]) == 0
    assert main(["-q", "gate", str(path), "--suite", str(suite)]) == 1
    assert (
        main(["-q", "gate", str(path), "--suite", str(suite), "--gate", "wer <= 0.9"]) == 0
    )  # override beats the suite


def test_compare_prints_what_changed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = run_record("20260101T000000-aaaaaa", "2026-01-01T00:00:00+00:00", wer=0.1)
    b = run_record(
        "20260102T000000-bbbbbb", "2026-01-02T00:00:00+00:00", wer=0.3, errors=1, failing=("s3",), gates_pass=False
    )
    lines = compare_records(a, b)
    text = "\n".join(lines)
    assert "verdict: PASS -> FAIL" in text
    assert "new finding XQ401" in text
    assert "content hash: h0.1 -> h0.3" in text
    assert re.search(r"candidate mean_wer: 0\.11 -> .* worse", text)
    assert "sentence s3: pass -> fail" in text
    history = tmp_path / "h.sqlite"
    for r in (a, b):
        publish(r, tmp_path / "reports", history)
    assert main(["-q", "compare", "previous", "latest", "--history", str(history)]) == 1  # b regressed
    assert "new finding XQ401" in capsys.readouterr().out
    assert main(["-q", "compare", str(tmp_path / "reports" / a.run_id), "latest", "--history", str(history)]) == 1
    assert main(["-q", "compare", "latest", "previous", "--history", str(history)]) == 0  # b -> a got better


def _history_with_regression(tmp_path: Path) -> Path:
    history = tmp_path / "reports" / "history.sqlite"
    for i, (wer, errors) in enumerate([(0.10, 0), (0.11, 0), (0.30, 1), (0.12, 0)]):
        record = run_record(
            f"2026010{i + 1}T000000-{i:06d}",
            f"2026-01-0{i + 1}T00:00:00+00:00",
            wer=wer,
            errors=errors,
            checkpoints=("finetune", "merged"),
            audio_dir=tmp_path / f"src{i}",
        )
        publish(record, tmp_path / "reports", history)
    return history


def test_dashboard_trends_regressions_links(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history = _history_with_regression(tmp_path)
    assert main(["-q", "dashboard", "--history", str(history)]) == 0
    out = Path(capsys.readouterr().out.strip())
    html = out.read_text()
    assert out == history.parent / "dashboard.html"
    assert html.count('<svg class="plot" data-kind="line"') == 6  # health + 2 eval plots, per checkpoint
    assert "Runs that regressed" in html and "errors 0 -&gt; 1" in html and "mean_wer 0.12 -&gt; 0.31" in html
    for href in re.findall(r'href="([^"]+)"', html):
        assert (out.parent / href).is_file()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)


def test_store_series(tmp_path: Path) -> None:
    store = HistoryStore(_history_with_regression(tmp_path))
    assert store.series_keys() == [
        ("finetune", "health"),
        ("finetune", "smoke"),
        ("merged", "health"),
        ("merged", "smoke"),
    ]
    errors = [p.value for p in store.series("finetune", "health", "error")]
    assert errors == [0.0, 0.0, 1.0, 0.0]
    assert [p.exit_code for p in store.outcomes("finetune", "health")] == [0, 0, 1, 0]
    assert "wer" in store.metric_names("finetune", "smoke")


def test_write_dashboard_on_empty_history_is_a_clear_error(tmp_path: Path) -> None:
    from xtts_qa.errors import InputError

    with pytest.raises(InputError, match="no history here yet"):
        write_dashboard(HistoryStore(tmp_path / "missing.sqlite"), tmp_path / "d.html")


def test_dashboard_keeps_partial_runs_out_of_trends_and_regressions(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "h.sqlite")
    store.append(run_record("20260101T000000-aaaaaa", "2026-01-01T00:00:00+00:00", wer=0.1))
    # `pytest -k ...` on a worse model: listed among the runs, but neither a trend point nor a regression
    partial = dataclasses.replace(
        run_record("20260102T000000-pppppp", "2026-01-02T00:00:00+00:00", wer=0.9, errors=2),
        partial=True,
        coverage={"items": {"ran": 1, "collected": 40}, "why": "-k XQ401"},
    )
    store.append(partial)
    html = write_dashboard(store, tmp_path / "dash.html").read_text()
    assert partial.run_id in html  # listed
    before_runs_table = html.split("<h2>Runs</h2>", 1)[0]  # regressions and trends
    assert partial.run_id not in before_runs_table
    # the same run stored as complete is a regression and a trend point: the test can fail
    store.append(dataclasses.replace(partial, run_id="20260103T000000-cccccc", partial=False, coverage={}))
    html = write_dashboard(store, tmp_path / "dash.html").read_text()
    assert "20260103T000000-cccccc" in html.split("<h2>Runs</h2>", 1)[0]
