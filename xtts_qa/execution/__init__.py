"""Execution layer: one interface, two engines (in-process ``local``, and ``ray``) for sweeps over many checkpoints.

:mod:`.units` defines the work units, :mod:`.workers` the work (the same code in both engines), :mod:`.adapter`
the one coupling to the evaluation pipeline, :mod:`.local` and :mod:`.ray_engine` the engines, :mod:`.driver`
the sweep itself (the only writer of the cache, the journal and the history).
"""

from __future__ import annotations

__all__ = ["run_sweep", "SweepOptions", "SweepReport", "SweepProgress", "EngineError"]


def __getattr__(name: str) -> object:  # lazy: importing the package must not import torch or ray
    if name in ("run_sweep", "SweepOptions", "SweepReport", "SweepProgress"):
        from xtts_qa.execution import driver

        return getattr(driver, name)
    if name == "EngineError":
        from xtts_qa.execution.base import EngineError

        return EngineError
    raise AttributeError(name)
