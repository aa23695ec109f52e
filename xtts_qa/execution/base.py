"""The engine interface: structural checks and work units in, results back to the driver."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from xtts_qa.errors import XttsQaError
from xtts_qa.execution.units import ClipResult, Unit, UnitContext

__all__ = ["Engine", "EngineError", "UnitOutcome", "ENGINES"]

#: the engines ``--engine`` accepts
ENGINES = ("local", "ray")


class EngineError(XttsQaError):
    """The engine cannot run (Ray missing or unreachable) or a unit kept losing its worker (exit code 2)."""


@dataclass(frozen=True)
class UnitOutcome:
    """A finished unit, handed to the driver (which alone writes the cache, the journal and the history).

    Attributes:
        unit: the unit.
        clips: one result per clip, with transcript and embedding filled in.
        attempts: 1, or more when a worker was lost and the unit was run again.
        worker: which worker synthesised it (``ray:synth-0 pid 1234``, ``local pid 1234``).
    """

    unit: Unit
    clips: tuple[ClipResult, ...]
    attempts: int
    worker: str


class Engine(Protocol):
    """What the sweep driver needs from an execution engine.

    Attributes:
        name: ``local`` or ``ray``.
        synth_device: the device synthesis workers use (part of every audio cache key).
    """

    name: str
    synth_device: str

    def check(self, targets: list[str], base: str | None, options: Any) -> list[dict[str, Any]]:
        """``CheckReport.to_dict()`` of every target, in order."""

    def run_units(self, units: list[Unit], context: UnitContext, on_done: Callable[[UnitOutcome], None]) -> None:
        """Run every unit and call ``on_done`` once per unit, on the caller's thread, as each finishes.

        Raises:
            XttsQaError: a unit failed for a reason a retry cannot fix (an unusable model, a bad option).
            EngineError: a unit kept losing its worker after the allowed retries.
        """

    def workers(self) -> dict[str, int]:
        """Worker name -> process id, for the progress log."""

    def close(self) -> None:
        """Release workers (and a cluster this engine started)."""
