"""The HTML report and the dashboard in headless Chromium: no console errors, playable audio, rendered plots.

Chromium comes from Debian (``scripts/bootstrap.sh``; the project's bootstrap installs it). Without it
these tests skip and say so. Screenshots are written under the test's tmp folder for a human to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from plugin_helpers import run_record
from plugin_helpers_browser import AUDIO_PROBE, PLOT_PROBE, Browser, chromium_path

from xtts_qa.reporting import HistoryStore, publish, write_dashboard

CHROMIUM = chromium_path()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed: run scripts/bootstrap.sh "
    "(Debian package 'chromium') to run the headless-browser report tests",
)


def _check_page(page: Path, shot: Path) -> tuple[list[dict], list[dict]]:
    assert CHROMIUM is not None
    with Browser(CHROMIUM) as browser:
        browser.open(page)
        audio = browser.evaluate(AUDIO_PROBE)
        plots = browser.evaluate(PLOT_PROBE)
        browser.screenshot(shot)
        assert browser.problems() == []
        remote = [u for u in browser.requested_urls() if u.startswith(("http:", "https:", "ws:", "wss:"))]
        assert remote == [], "the page must not touch the network"
    assert shot.stat().st_size > 10_000
    return audio, plots


def test_report_in_headless_chromium(tmp_path: Path) -> None:
    record = run_record(
        "20260101T000000-aaaaaa",
        "2026-01-01T00:00:00+00:00",
        audio_dir=tmp_path / "src",
        errors=1,
        failing=("s2",),
        checkpoints=("finetune", "merged"),
    )
    paths = publish(record, tmp_path / "reports", None)
    audio, plots = _check_page(paths.html, tmp_path / "report.png")
    assert len(audio) == 18  # 3 sentences x (candidate, base, reference) x 2 checkpoints
    for clip in audio:
        assert clip["src"].startswith("file://") and clip["error"] is None
        assert clip["readyState"] >= 1 and clip["duration"] == pytest.approx(0.4, abs=0.01), clip
    assert len(plots) == 4
    assert all(p["width"] > 200 and p["height"] > 150 and p["marks"] >= 6 for p in plots)


def test_dashboard_in_headless_chromium(tmp_path: Path) -> None:
    history = tmp_path / "reports" / "history.sqlite"
    for i, wer in enumerate((0.1, 0.12, 0.3)):
        publish(
            run_record(
                f"2026010{i + 1}T000000-{i:06d}", f"2026-01-0{i + 1}T00:00:00+00:00", wer=wer, errors=int(wer > 0.2)
            ),
            tmp_path / "reports",
            history,
        )
    page = write_dashboard(HistoryStore(history), tmp_path / "reports" / "dashboard.html")
    audio, plots = _check_page(page, tmp_path / "dashboard.png")
    assert audio == []
    assert len(plots) == 3 and all(p["kind"] == "line" and p["marks"] >= 3 and p["width"] > 200 for p in plots)
