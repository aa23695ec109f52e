"""Untrusted text on the run report and the dashboard is shown as text: escaped in the HTML, inert in Chromium.

ASR transcripts, sentence texts, checkpoint labels, file paths and finding messages all reach the pages. A run
record here carries markup, quotes and ampersands in each of them; the pages must hold no element or attribute
the text did not come from, headless Chromium must run no script (no dialog opens), and a reader must see the text
exactly as written. A control page with the same text pasted in unescaped proves the browser check can fail.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from plugin_helpers import write_tone
from plugin_helpers_browser import SCRIPT_PROBE, Browser, chromium_path

from xtts_qa.reporting import CheckEntry, EvalEntry, HistoryStore, RunRecord, publish, write_dashboard
from xtts_qa.results import CheckReport, Finding, RuleResult, Severity, Status

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
QUOTES = 'Tom\'s "quoted" & <u>under</u> &amp; done'
PAYLOADS = (SCRIPT, IMG, QUOTES)

LABEL = f"ft{IMG}"  # checkpoint label: headings, tables, chart titles, dashboard trends
RUN_LABEL = f"ci {SCRIPT} {QUOTES}"  # the free run label: page title, provenance, dashboard runs table


def _check(target: str) -> dict[str, Any]:
    finding = Finding(
        "XQ401",
        f"dvae-{IMG}",
        Severity.ERROR,
        f"dvae.pth keys carry the prefix {SCRIPT}",
        f"why: {QUOTES}",
        f"fix: {IMG}",
        file=f"{target}/dvae{SCRIPT}.pth",
    )
    results = (
        RuleResult("XQ401", f"dvae-{IMG}", Status.FAILED, (finding,)),
        RuleResult("XQ503", "gpt-unchanged", Status.SKIPPED, skip_reason=f"needs a base {SCRIPT}"),
    )
    return CheckReport(target, None, "inference", {"model": f"{target}/model.pth"}, results, True, False, 0.1).to_dict()


def _eval(audio_dir: Path) -> dict[str, Any]:
    # audio under a folder whose name is itself hostile: the writer copies it next to the report under a safe name
    src = audio_dir / f"a&b {IMG}"
    sentences = []
    for i, payload in enumerate(PAYLOADS):
        sid = f"s{i}{IMG}" if i == 1 else f"s{i}"
        sentences.append(
            {
                "id": sid,
                "language": f"en{QUOTES}",
                "text": f"text {payload}",
                "transcript": f"heard {payload}",
                "base_transcript": f"base heard {payload}",
                "wer": 0.2 + 0.1 * i,
                "base_wer": 0.1,
                "cer": 0.1,
                "similarity_ref": 0.8,
                "similarity_base": 0.9,
                "duration_s": 1.0,
                "flags": [f"flag{IMG}"],
                "explanations": {f"flag{IMG}": f"means {QUOTES}"},
                "verdict": "fail",
                "audio": str(write_tone(src / f"cand{i}.wav")),
                "base_audio": str(write_tone(src / f"base{i}.wav", 330.0)),
                "reference_audio": None,
            }
        )
    metrics = {"wer": 0.3, "cer": 0.1, "similarity_ref": 0.8}
    return {
        "kind": "eval",
        "suite": f"smoke{SCRIPT}",
        "exit_code": 1,
        "passed": False,
        "headline": f"headline {IMG}",
        "gates": [{"expr": f"wer <= 0.1 {QUOTES}", "value": 0.3, "passed": False, "message": f"failed {SCRIPT}"}],
        "flags": {f"flag{IMG}": f"means {QUOTES}"},
        "metrics": {"candidate": metrics, "base": {**metrics, "wer": 0.1}},
        "sentences": sentences,
        "provenance": {"asr_model": f"asr {IMG}", "normaliser": f"norm {QUOTES}"},
    }


def _record(tmp_path: Path, run_id: str, started: str) -> RunRecord:
    target = f"/models/{LABEL}/{QUOTES}"
    provenance = {
        "environment": {"versions": {f"pkg{SCRIPT}": f"1.0{IMG}"}, "python": "3.11"},
        "checkpoints": {LABEL: {"target": target, "hash": f"h{QUOTES}"}},
        "base": {"target": f"/models/base{SCRIPT}", "hash": "ba5e"},
    }
    return RunRecord(
        run_id,
        started,
        started,
        "pytest",
        RUN_LABEL,
        (CheckEntry(LABEL, _check(target)),),
        (EvalEntry(LABEL, f"smoke{SCRIPT}", _eval(tmp_path / run_id)),),
        ({"expr": f"wer <= 0 {IMG}", "checkpoint": LABEL, "suite": "smoke", "value": 0.3, "passed": False},),
        provenance,
    )


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The report of the latest of two hostile runs and the dashboard over both."""
    tmp = tmp_path_factory.mktemp("escaping")
    history = tmp / "reports" / "history.sqlite"
    paths = None
    for i in (1, 2):
        record = _record(tmp / "src", f"2026010{i}T000000-00000{i}", f"2026-01-0{i}T00:00:00+00:00")
        paths = publish(record, tmp / "reports", history)
    assert paths is not None
    dashboard = write_dashboard(HistoryStore(history), tmp / "reports" / "dashboard.html")
    return {"report": paths.html, "dashboard": dashboard}


class _Elements(HTMLParser):
    """Every start tag of a page with its attributes, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


@pytest.mark.parametrize("name", ["report", "dashboard"])
def test_untrusted_text_is_escaped_in_the_html(pages: dict[str, Path], name: str) -> None:
    html = pages[name].read_text()
    parser = _Elements()
    parser.feed(html)
    tags = {tag for tag, _ in parser.tags}
    assert not {"script", "img", "u"} & tags, sorted(tags)
    handlers = [(tag, a) for tag, attrs in parser.tags for a, _ in attrs if a.startswith("on")]
    assert handlers == [], "an event handler attribute reached the page"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html  # in text and in attribute values alike
    assert "Tom&#39;s &#34;quoted&#34; &amp; &lt;u&gt;under&lt;/u&gt; &amp;amp; done" in html
    values = [v for _, attrs in parser.tags for _, v in attrs]
    assert f"means {QUOTES}" in values or name == "dashboard"  # an attribute value decodes to the text itself


CHROMIUM = chromium_path()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed: run scripts/bootstrap.sh")
def test_no_script_runs_and_the_text_is_shown_in_chromium(pages: dict[str, Path], tmp_path: Path) -> None:
    assert CHROMIUM is not None
    control = tmp_path / "control.html"
    control.write_text(f"<!DOCTYPE html><html><head><title>control</title></head><body><p>{IMG}</p></body></html>")
    with Browser(CHROMIUM) as browser:
        browser.open(pages["report"])
        report = browser.evaluate(SCRIPT_PROBE)
        browser.navigate(pages["dashboard"])
        dashboard = browser.evaluate(SCRIPT_PROBE)
        assert browser.dialogs() == [], "a script on the page opened a dialog"
        assert browser.problems() == []
        # the same text pasted in unescaped does run: the dialog check above can fail
        browser.navigate(control, wait="Page.javascriptDialogOpening")
        assert browser.dialogs() == ["1"]
        browser.dismiss_dialog()

    for probe in (report, dashboard):
        assert probe["scripts"] == 0 and probe["images"] == 0 and probe["handlers"] == [], probe["handlers"]
        assert not {"script", "img", "u"} & set(probe["tags"]), probe["tags"]
    assert report["title"] == f"xtts-qa run 20260102T000000-000002 ({RUN_LABEL})"
    text = report["text"]
    for payload in PAYLOADS:
        for shown in (f"text {payload}", f"heard {payload}", f"base heard {payload}"):
            assert shown in text, shown
    for shown in (
        f"Checkpoint {LABEL}",
        f"dvae.pth keys carry the prefix {SCRIPT}",
        f"/models/{LABEL}/{QUOTES}/dvae{SCRIPT}.pth",  # the finding's file
        f"/models/{LABEL}/{QUOTES}",  # the checked target
        f"headline {IMG}",
        f"pkg{SCRIPT} 1.0{IMG}",
    ):
        assert shown in text, shown
    assert f"needs a base {SCRIPT}" in report["allText"]  # inside the collapsed list of skipped rules
    assert f"means {QUOTES}" in report["attributes"]  # a flag's explanation is a tooltip (title attribute)
    assert f"{LABEL} · smoke{SCRIPT} · error rate" in dashboard["svgText"]  # chart titles keep their text
    assert "WER per sentence (candidate vs base)" in report["svgText"]
    assert any(t.startswith(f"s1{IMG}"[:18]) for t in report["svgText"]), report["svgText"]
    for shown in (f"{LABEL}\tsmoke{SCRIPT}", RUN_LABEL, f"{LABEL} · health"):
        assert shown in dashboard["text"], shown
