"""Progress lines for CI logs: without a terminal, a line per finished checkpoint and every tenth of the items, with
elapsed and remaining time, printed through pytest's terminal reporter.

An item can also send a line while it runs (:func:`emit`, e.g. "evaluating 10 sentences ..."): the line travels as a
test report, so from a pytest-xdist worker it reaches the controller, which prints what arrives. Such reports are
no test outcome (:data:`PROGRESS_WHEN`; the hooks give them no status letter).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from xtts_qa.plugin.keys import base_id

__all__ = ["PROGRESS_WHEN", "ProgressPrinter", "emit", "clock"]

#: the ``when`` of a report that carries a progress line instead of a test phase
PROGRESS_WHEN = "xtts_qa_progress"


def clock(seconds: float) -> str:
    """``0:07``, ``12:30``, ``1:02:03``."""
    seconds = int(round(max(seconds, 0.0)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def emit(item: pytest.Item, text: str) -> None:
    """Send a progress line from inside an item to the process that prints (this one, or the xdist controller)."""
    report = pytest.TestReport(
        nodeid=item.nodeid,
        location=item.location,
        keywords={},
        outcome="passed",
        longrepr=None,
        when=PROGRESS_WHEN,  # type: ignore[arg-type]
        xtts_qa_progress=text,
    )
    item.ihook.pytest_runtest_logreport(report=report)


class ProgressPrinter:
    """Counts finished xtts items and prints progress lines when the output is not a terminal (CI logs).

    Attributes:
        total: xtts items expected in this run (after deselection).
        done: xtts items finished.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.started = time.monotonic()
        self.total = 0
        self.done = 0
        self._left: Counter[str] = Counter()
        self._failed: Counter[str] = Counter()
        self._items: Counter[str] = Counter()
        self._expected: set[str] = set()

    @property
    def enabled(self) -> bool:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        return reporter is not None and not getattr(reporter, "isatty", False)

    def expect(self, nodeids: list[str], replace: bool = False) -> None:
        """The xtts items this run will execute (``replace``: a later, complete list, e.g. from an xdist worker)."""
        if replace and self.total:
            return
        self._expected = {base_id(n) for n in nodeids}
        self.total = len(self._expected)
        self._left = Counter(n.split("::", 1)[0] for n in self._expected)
        self._items = Counter(self._left)

    def item_done(self, report: pytest.TestReport) -> None:
        """One item finished (others than xtts items are ignored): a line when its checkpoint is complete, and every
        tenth of the run."""
        nodeid = base_id(report.nodeid)
        if nodeid not in self._expected:
            return
        self._expected.discard(nodeid)
        self.done += 1
        label = nodeid.split("::", 1)[0]
        self._left[label] -= 1
        self._failed[label] += report.failed
        step = max(1, self.total // 10)
        if self._left[label] == 0 and self._items[label]:
            failed = self._failed[label]
            self._write(f"{label} done ({self._items[label]} items, {failed} failed); {self._status()}")
        elif self.done % step == 0:
            self._write(self._status())

    def message(self, report: Any) -> None:
        """A line an item sent while running (:func:`emit`)."""
        where = f"[{report.node.gateway.id}] " if getattr(report, "node", None) is not None else ""
        self._write(f"{where}{getattr(report, 'xtts_qa_progress', '')} (elapsed {clock(self._elapsed())})")

    def _elapsed(self) -> float:
        return time.monotonic() - self.started

    def _status(self) -> str:
        elapsed = self._elapsed()
        total = max(self.total, self.done)
        eta = elapsed / self.done * (total - self.done) if self.done else None
        return f"{self.done}/{total} items, elapsed {clock(elapsed)}, ETA {clock(eta) if eta is not None else '?'}"

    def _write(self, line: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None or getattr(reporter, "isatty", False):
            return
        reporter.ensure_newline()
        reporter.write_line(f"xtts_qa: {line}")
