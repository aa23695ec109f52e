"""The plugin's hook implementations: options, markers, collection, result hand-over, reports and the summary."""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

import pytest

from xtts_qa.plugin.collector import COLLECTOR, RunCollector
from xtts_qa.plugin.items import PAYLOAD, CheckpointCollector
from xtts_qa.plugin.options import add_options
from xtts_qa.plugin.session import get_state
from xtts_qa.plugin.summary import summary_lines

log = logging.getLogger("xtts_qa")

__all__ = [
    "pytest_addoption",
    "pytest_configure",
    "pytest_collection_modifyitems",
    "pytest_generate_tests",
    "pytest_runtest_makereport",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
    "pytest_unconfigure",
    "pytest_report_header",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "health: xtts_qa structural rule on a checkpoint (CPU, seconds)")
    config.addinivalue_line("markers", "eval: xtts_qa synthesis and scoring of a checkpoint on a suite sentence")
    state = get_state(config)  # resolves and validates the options once, before collection
    if state.settings.active and not _is_worker(config):
        collector = RunCollector()
        config.stash[COLLECTOR] = collector
        config.pluginmanager.register(_ResultListener(collector), _LISTENER)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Add checkpoint x rule and checkpoint x suite-sentence items before -m/-k deselection runs."""
    state = get_state(config)
    for target in state.targets:
        collector = CheckpointCollector.from_parent(session, name=target.label, nodeid=target.label, target=target)
        items.extend(session.genitems(collector))  # collect reports go out as for files: counts, errors, --collect-only


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "xtts_checkpoint" in metafunc.fixturenames:
        from xtts_qa.plugin.fixtures import parametrize_checkpoints

        parametrize_checkpoints(metafunc)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """Copy an item's result onto its call-phase report: reports travel from xdist workers, item stashes do not."""
    report = yield
    if call.when == "call":
        payload = item.stash.get(PAYLOAD, None)
        if payload is not None:
            report.xtts_qa = payload
    return report


class _ResultListener:
    """Registered only in the process that writes reports; feeds every item payload to the run collector."""

    def __init__(self, collector: RunCollector) -> None:
        self.collector = collector

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        payload = getattr(report, "xtts_qa", None)
        if payload is not None:
            self.collector.add(payload)


_LISTENER = "xtts_qa-results"


def pytest_unconfigure(config: pytest.Config) -> None:
    listener = config.pluginmanager.get_plugin(_LISTENER)
    if listener is not None:
        config.pluginmanager.unregister(listener, _LISTENER)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the run's reports and append it to the history (once, in the process that gathered every result)."""
    config = session.config
    collector = config.stash.get(COLLECTOR, None)
    if collector is None or collector.empty:
        return
    from xtts_qa.reporting import HistoryStore, publish

    state = get_state(config)
    record = collector.build(state.settings, state.targets, state.device)
    collector.record = record
    if state.settings.report_dir is None:
        return
    collector.paths = publish(record, state.settings.report_dir, state.settings.history)
    if state.settings.history is not None:
        collector.history_runs = HistoryStore(state.settings.history).count()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    collector = config.stash.get(COLLECTOR, None)
    if collector is None or collector.record is None:
        return
    terminalreporter.section("xtts_qa summary")
    for line in summary_lines(collector, get_state(config).settings):
        terminalreporter.write_line(line)


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = get_state(config)
    if not state.settings.active:
        return []
    s = state.settings
    line = f"xtts_qa: {len(state.targets)} checkpoint(s) x {len(state.rules)} rule(s), intent {s.intent}"
    line += f", base {s.base}" if s.base else ", no base"
    if s.suites:
        line += f"; suites {', '.join(s.suites)} on {state.device}"
    return [line]
