"""Fixtures for users' own tests: the checkpoints under test, their bundles and reports, a synthesiser, an evaluation.

A test that asks for ``xtts_checkpoint`` (or anything built on it) runs once per configured checkpoint::

    def test_speaks_english(xtts_eval):
        report = xtts_eval("smoke")
        assert report["metrics"]["candidate"]["mean_wer"] < 0.3
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from xtts_qa.plugin import evalbridge
from xtts_qa.plugin.keys import get_settings
from xtts_qa.plugin.options import PluginSettings

if TYPE_CHECKING:  # the fixtures import the heavy modules only when a test uses them
    from xtts_qa.checkpoint import Bundle
    from xtts_qa.plugin.session import SessionState
    from xtts_qa.results import CheckReport

__all__ = [
    "CheckpointHandle",
    "xtts_settings",
    "xtts_device",
    "xtts_checkpoint",
    "xtts_bundle",
    "xtts_check_report",
    "xtts_synthesiser",
    "xtts_eval",
]


@dataclass(frozen=True)
class CheckpointHandle:
    """One checkpoint under test, with lazy access to what the session already opened.

    Attributes:
        label: its label (as in test ids and reports).
        path: its folder or file.
    """

    label: str
    path: Path
    _state: SessionState

    @property
    def bundle(self) -> Bundle:
        """The opened checkpoint (shared with the health items: opened once per session)."""
        return self._state.context(self.label).candidate

    @property
    def base(self) -> Bundle | None:
        return self._state.base

    def check(self) -> CheckReport:
        """Every selected rule's verdict, as ``xtts-qa check`` gives it (computed once per session)."""
        from xtts_qa.engine import report_for

        ctx = self._state.context(self.label)  # the session's context: the rule items' tensor scan is reused
        outcome = self._state.evaluation(self.label, "__check__", lambda: report_for(ctx))
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome  # type: ignore[no-any-return]


def parametrize_checkpoints(metafunc: pytest.Metafunc) -> None:
    """Run tests that use ``xtts_checkpoint`` once per configured checkpoint (skipped when none is configured)."""
    from xtts_qa.plugin.session import get_state

    targets = get_state(metafunc.config).targets
    if targets:
        metafunc.parametrize(
            "xtts_checkpoint", [t.label for t in targets], ids=[t.label for t in targets], indirect=True
        )
    else:
        metafunc.parametrize(
            "xtts_checkpoint",
            [
                pytest.param(
                    None,
                    marks=pytest.mark.skip(
                        reason="no checkpoint configured: pass --xtts-checkpoint=PATH or set xtts_checkpoints in "
                        "the ini file"
                    ),
                )
            ],
            ids=["no-checkpoint"],
            indirect=True,
        )


@pytest.fixture(scope="session")
def xtts_settings(pytestconfig: pytest.Config) -> PluginSettings:
    """The plugin's merged settings (checkpoints, base, suites, device, rule selection, report paths)."""
    return get_settings(pytestconfig)


@pytest.fixture(scope="session")
def xtts_device(pytestconfig: pytest.Config) -> str:
    """The device this process synthesises on (``cuda:N`` per xdist worker when there are several GPUs)."""
    from xtts_qa.plugin.session import get_state

    return get_state(pytestconfig).device


@pytest.fixture
def xtts_checkpoint(request: pytest.FixtureRequest) -> CheckpointHandle:
    """One configured checkpoint (tests using it are parametrised over every checkpoint)."""
    from xtts_qa.plugin.session import get_state

    state = get_state(request.config)
    target = state.target(request.param)
    return CheckpointHandle(target.label, target.path, state)


@pytest.fixture
def xtts_bundle(xtts_checkpoint: CheckpointHandle) -> Bundle:
    """The checkpoint's opened :class:`~xtts_qa.checkpoint.Bundle`."""
    return xtts_checkpoint.bundle


@pytest.fixture
def xtts_check_report(xtts_checkpoint: CheckpointHandle) -> CheckReport:
    """The checkpoint's :class:`~xtts_qa.results.CheckReport`."""
    return xtts_checkpoint.check()


@pytest.fixture
def xtts_synthesiser(xtts_checkpoint: CheckpointHandle, xtts_device: str) -> Any:
    """A synthesiser for the checkpoint (from :mod:`xtts_qa.evaluation`; skips when it is unavailable)."""
    try:
        return evalbridge.synthesiser(xtts_checkpoint.path, xtts_device)
    except evalbridge.EvalUnavailable as exc:
        pytest.skip(f"no synthesiser: {exc}")


@pytest.fixture
def xtts_eval(xtts_checkpoint: CheckpointHandle, pytestconfig: pytest.Config) -> Callable[[str], dict[str, Any]]:
    """``xtts_eval(suite)`` -> the checkpoint's ``EvalReport.to_dict()`` on that suite (computed once per session)."""
    from xtts_qa.plugin.session import get_state

    state = get_state(pytestconfig)

    def run(suite: str) -> dict[str, Any]:
        outcome = state.evaluation(
            xtts_checkpoint.label,
            suite,
            lambda: evalbridge.run_suite(
                xtts_checkpoint.path,
                state.settings.base,
                suite,
                state.device,
                state.settings.gates,
                engine=state.settings.engine,
                ray_address=state.settings.ray_address,
            ),
        )
        if isinstance(outcome, evalbridge.EvalUnavailable):
            pytest.skip(f"evaluation unavailable: {outcome}")
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome  # type: ignore[no-any-return]

    return run
