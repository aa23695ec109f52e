"""The embedded default engine: every unit in this process, one after another, nothing to install."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from xtts_qa.execution.base import UnitOutcome
from xtts_qa.execution.units import Unit, UnitContext
from xtts_qa.execution.workers import Listener, Synthesiser, check_target, score_clips

log = logging.getLogger("xtts_qa")

__all__ = ["LocalEngine"]


class LocalEngine:
    """Runs checks and units in-process with the same worker code the Ray engine runs remotely.

    Args:
        device: ``auto``, ``cpu`` or ``cuda`` for synthesis and speaker embeddings.
    """

    name = "local"

    def __init__(self, device: str = "auto") -> None:
        from xtts_qa.device import resolve_device

        self.synth_device = resolve_device(device)

    def check(self, targets: list[str], base: str | None, options: Any) -> list[dict[str, Any]]:
        return [check_target(t, base, options) for t in targets]

    def run_units(self, units: list[Unit], context: UnitContext, on_done: Callable[[UnitOutcome], None]) -> None:
        if not units:
            return
        synth, listener = Synthesiser(context), Listener(context)
        worker = f"local pid {os.getpid()}"
        for unit in units:
            clips = synth.run(unit)
            texts = listener.transcribe(clips)
            vectors = score_clips(clips, self.synth_device, context.threads)
            on_done(
                UnitOutcome(
                    unit,
                    tuple(replace(c, transcript=t, embedding=v) for c, t, v in zip(clips, texts, vectors, strict=True)),
                    1,
                    worker,
                )
            )

    def workers(self) -> dict[str, int]:
        return {"local": os.getpid()}

    def close(self) -> None:
        pass
