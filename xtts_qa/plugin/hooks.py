"""The plugin's hook implementations: options, markers, collection, result hand-over, reports and the summary.

Light by design: this module is imported on every pytest run where xtts_qa is installed, so everything heavy
(the rules and with them torch, coqui-tts, numpy, the reporting package) is imported inside the hooks, and only
when the run asked for xtts items (see :func:`xtts_qa.plugin.options.opt_in_reason`).

Under pytest-xdist the plugin makes ``--dist loadgroup`` the default when you did not pass ``--dist`` yourself
(each checkpoint's items then share one worker, which opens its files and loads its model once); with another
``--dist`` it warns once.
"""

from __future__ import annotations

import logging
import os
import shlex
from collections.abc import Generator
from typing import Any

import pytest

from xtts_qa.plugin.keys import COLLECTOR, PAYLOAD, PLANNED, base_id, get_settings
from xtts_qa.plugin.options import add_options, unread_config
from xtts_qa.plugin.reporter import PROGRESS_WHEN, ProgressPrinter

log = logging.getLogger("xtts_qa")

__all__ = [
    "pytest_addoption",
    "pytest_configure",
    "pytest_collection_modifyitems",
    "pytest_generate_tests",
    "pytest_runtest_makereport",
    "pytest_report_teststatus",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
    "pytest_unconfigure",
    "pytest_report_header",
]

#: loggers of the libraries XTTS evaluation pulls in; their warnings are noise in a test run (as in the CLI)
NOISY_LOGGERS = ("TTS", "trainer", "transformers", "numba", "faster_whisper", "httpx", "matplotlib")
#: warnings filters the plugin adds (resemblyzer imports a deprecated scipy namespace)
NOISY_WARNINGS = ("ignore::DeprecationWarning:resemblyzer.*", "ignore:.*binary_dilation.*:DeprecationWarning")
_LISTENER = "xtts_qa-results"
_LOADGROUP = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "health: xtts_qa structural rule on a checkpoint (CPU, seconds)")
    config.addinivalue_line("markers", "eval: xtts_qa synthesis and scoring of a checkpoint on a suite sentence")
    settings = get_settings(config)
    if settings.opt_in == "--xtts" and not settings.checkpoints:
        raise pytest.UsageError(
            "xtts_qa: --xtts found no checkpoints: name them in xtts_checkpoints (ini file) or checkpoints in "
            "[tool.xtts_qa] of pyproject.toml, or pass --xtts-checkpoint=PATH"
        )
    if not settings.active:
        return
    from xtts_qa.plugin.session import get_state

    get_state(config)  # resolves and validates rules, targets and base once, before collection
    _quiet_libraries(config)
    if _is_worker(config):
        if config.workerinput.get("xtts_qa_loadgroup"):  # type: ignore[attr-defined]
            config.option.loadgroup = True  # workers parse the original arguments; the controller chose loadgroup
        return
    _default_loadgroup(config)
    if config.option.xtts_checkpoint:
        unread = unread_config(config)
        if unread is not None:
            config.issue_config_time_warning(
                pytest.PytestConfigWarning(
                    f"xtts_qa: pytest did not read {unread} (rootdir {config.rootpath}, config "
                    f"{config.inipath or 'none'}), so its xtts_* and [tool.xtts_qa] settings (base, intent, ...) "
                    f"do not apply. Write --xtts-checkpoint=PATH (with '='), or pass --rootdir={unread.parent}."
                ),
                stacklevel=2,
            )
    from xtts_qa.plugin.collector import RunCollector

    collector = RunCollector()
    config.stash[COLLECTOR] = collector
    printer = ProgressPrinter(config)
    config.pluginmanager.register(_ResultListener(collector, printer), _LISTENER)


def _quiet_libraries(config: pytest.Config) -> None:
    """Silence transformers' config warnings and resemblyzer's DeprecationWarning, as the CLI does."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    for line in NOISY_WARNINGS:
        config.addinivalue_line("filterwarnings", line)


def _dist_chosen(config: pytest.Config) -> bool:
    """Whether the user picked an xdist distribution mode (command line, PYTEST_ADDOPTS or ini addopts)."""
    tokens = [str(a) for a in config.invocation_params.args]
    tokens += shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))
    tokens += [str(a) for a in config.getini("addopts")]
    return any(t in ("--dist", "-d", "--distload") or t.startswith("--dist=") for t in tokens)


def _default_loadgroup(config: pytest.Config) -> None:
    """Under xdist, ``--dist loadgroup`` unless the user chose a mode; a warning when they chose another."""
    if not config.pluginmanager.hasplugin("xdist") or not getattr(config.option, "numprocesses", None):
        return
    dist = getattr(config.option, "dist", "no")
    if dist == "loadgroup":
        return
    if dist == "load" and not _dist_chosen(config):
        config.option.dist = "loadgroup"
        config.stash[_LOADGROUP] = True
        return
    config.issue_config_time_warning(
        pytest.PytestConfigWarning(
            f"xtts_qa: --dist {dist} spreads one checkpoint's items over several workers, each of which opens the "
            "checkpoint (and loads its model for eval items) again; use --dist loadgroup"
        ),
        stacklevel=2,
    )


def _matches(nodeid: str, ids: tuple[str, ...]) -> bool:
    for wanted in ids:
        wanted = base_id(wanted)  # ids printed under --dist loadgroup carry '@group'
        if nodeid == wanted or nodeid.startswith(wanted + "::"):
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Add checkpoint x rule and checkpoint x suite-sentence items before -m/-k/--lf deselection runs."""
    settings = get_settings(config)
    if not settings.active:
        return
    from xtts_qa.plugin.items import CheckpointCollector
    from xtts_qa.plugin.session import get_state

    state = get_state(config)
    added: list[pytest.Item] = []
    for target in state.targets:
        collector = CheckpointCollector.from_parent(session, name=target.label, nodeid=target.label, target=target)
        added.extend(session.genitems(collector))  # collect reports go out as for files: counts, errors, --collect-only
    config.stash[PLANNED] = [item.nodeid for item in added]
    if settings.ids:
        keep = [item for item in added if _matches(item.nodeid, settings.ids)]
        if not keep:
            raise pytest.UsageError(
                f"xtts_qa: no xtts item has the id {', '.join(settings.ids)}; `pytest --collect-only -q --xtts` "
                "lists them"
            )
        dropped = [item for item in added if item not in keep]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        added = keep
    items.extend(added)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "xtts_checkpoint" in metafunc.fixturenames:
        from xtts_qa.plugin.fixtures import parametrize_checkpoints

        parametrize_checkpoints(metafunc)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """Copy an item's result onto its call-phase report (reports travel from xdist workers, item stashes do not),
    and make a skip line name the item (checkpoint and rule), not the plugin's source line that raised it."""
    report = yield
    if call.when == "call":
        payload = item.stash.get(PAYLOAD, None)
        if payload is not None:
            report.xtts_qa = payload
    if (
        report.skipped
        and isinstance(report.longrepr, tuple)
        and base_id(item.nodeid) in item.config.stash.get(PLANNED, ())
    ):
        report.longrepr = (base_id(item.nodeid), None, report.longrepr[2])
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report: Any, config: pytest.Config) -> tuple[str, str, str] | None:
    """Progress lines travel as reports (so they cross from xdist workers); they are no test outcome."""
    if getattr(report, "when", None) == PROGRESS_WHEN:
        return "", "", ""
    return None


class _ResultListener:
    """Registered only in the process that writes reports; feeds every item payload to the run collector, records
    which items ran, and prints progress lines without a terminal."""

    def __init__(self, collector: Any, printer: ProgressPrinter) -> None:
        self.collector = collector
        self.printer = printer

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == PROGRESS_WHEN:
            self.printer.message(report)
            return
        payload = getattr(report, "xtts_qa", None)
        if payload is not None:
            self.collector.add(payload)
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.collector.ran_item(report.nodeid)
            self.printer.item_done(report)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        planned = set(config.stash.get(PLANNED, ()))
        self.collector.add_planned(planned)
        self.printer.expect([item.nodeid for item in items if item.nodeid in planned])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.printer.expect([i for i in ids if not i.split("::", 1)[0].endswith(".py")], replace=True)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Tell each xdist worker that the controller runs ``--dist loadgroup`` (it may have chosen it for you)."""
        if getattr(node.config.option, "dist", None) == "loadgroup":
            node.workerinput["xtts_qa_loadgroup"] = True

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", None) or {}
        self.collector.add_planned(output.get("xtts_qa_planned") or ())


def pytest_unconfigure(config: pytest.Config) -> None:
    listener = config.pluginmanager.get_plugin(_LISTENER)
    if listener is not None:
        config.pluginmanager.unregister(listener, _LISTENER)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the run's reports and append it to the history (once, in the process that gathered every result);
    the session fails when the run's verdict does, even if every item passed (e.g. a ``health.warning`` gate)."""
    config = session.config
    if _is_worker(config):
        planned: list[str] = config.stash.get(PLANNED, [])
        config.workeroutput["xtts_qa_planned"] = list(planned)  # type: ignore[attr-defined]
        return
    collector = config.stash.get(COLLECTOR, None)
    if collector is None or collector.empty:
        return
    from xtts_qa.plugin.collector import decide_run
    from xtts_qa.plugin.session import get_state
    from xtts_qa.reporting import HistoryStore, publish

    state = get_state(config)
    collector.why = _narrowed_by(session)
    record = collector.build(state.settings, state.targets, state.device)
    collector.record = record
    collector.verdict = decide_run(record)
    # pytest exits with the run's verdict: 1 fail, 2 inconclusive (a partial run, a crashed rule, an unreadable
    # file), the codes xtts-qa check/gate and summary.json give; a failing test of the user's own stays a failure,
    # and pytest's own codes above 2 (internal error, usage error, no tests) are left alone
    code = collector.verdict.exit_code
    if code != 0 and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        wanted = 2 if code == 2 else max(int(session.exitstatus), 1)
        if wanted != int(session.exitstatus):
            session.exitstatus = wanted
            collector.failed_session = True
    if state.settings.report_dir is None:
        return
    collector.paths = publish(record, state.settings.report_dir, state.settings.history)
    if state.settings.history is not None:
        collector.history_runs = HistoryStore(state.settings.history).count()


def _narrowed_by(session: pytest.Session) -> str:
    """What may have left items out of this run, for the record's coverage (``-k XQ401``, ``--lf``, ...)."""
    opt = session.config.option
    reasons = []
    if getattr(opt, "keyword", ""):
        reasons.append(f"-k {opt.keyword}")
    if getattr(opt, "markexpr", ""):
        reasons.append(f"-m {opt.markexpr}")
    if getattr(opt, "lf", False):
        reasons.append("--lf")
    if getattr(opt, "deselect", None):
        reasons.append("--deselect")
    if get_settings(session.config).ids:
        reasons.append("item ids " + " ".join(get_settings(session.config).ids))
    if session.shouldstop or session.shouldfail:
        reasons.append(f"stopped early: {session.shouldstop or session.shouldfail}")
    return ", ".join(reasons)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    collector = config.stash.get(COLLECTOR, None)
    if collector is None or collector.record is None:
        return
    from xtts_qa.plugin.summary import summary_lines

    terminalreporter.section("xtts_qa summary")
    for line in summary_lines(collector, get_settings(config)):
        terminalreporter.write_line(line)


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = get_settings(config)
    if not settings.active:
        return []
    from xtts_qa.plugin.session import get_state

    state = get_state(config)
    s = state.settings
    n_targets, n_rules = len(state.targets), len(state.rules)
    line = (
        f"xtts_qa: {n_targets} checkpoint{'s' if n_targets != 1 else ''} x {n_rules} rule{'s' if n_rules != 1 else ''}"
        f", intent {s.intent}, fail on {s.fail_on}"
    )
    line += f", base {s.base}" if s.base else ", no base"
    if s.suites:
        line += f"; suites {', '.join(s.suites)} on {state.device} ({s.engine} engine)"
    lines = [line, f"xtts_qa: enabled by {s.opt_in}"]
    if config.stash.get(_LOADGROUP, False):
        lines.append("xtts_qa: --dist loadgroup (the default with xtts items; pass --dist to choose another mode)")
    return lines
