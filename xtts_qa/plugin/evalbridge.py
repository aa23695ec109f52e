"""The plugin's only door into :mod:`xtts_qa.evaluation`: suites, synthesis and scoring.

When the evaluation package (or one of its optional dependencies) is missing, every function raises
:class:`EvalUnavailable` with a reason, and eval items and fixtures skip with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

__all__ = ["EvalUnavailable", "SuiteSpec", "load_suite", "run_suite", "synthesiser"]


class EvalUnavailable(Exception):
    """Evaluation cannot run in this environment; the message says why."""


@dataclass(frozen=True)
class SuiteSpec:
    """A suite as the plugin needs it for collection.

    Attributes:
        name: the suite's name (used in test ids).
        ref: what the user passed (file path or built-in name).
        sentence_ids: the ids of its sentences, in order.
    """

    name: str
    ref: str
    sentence_ids: tuple[str, ...]


def _evaluation() -> Any:
    try:
        import xtts_qa.evaluation.runner as runner
    except ImportError as exc:
        raise EvalUnavailable(f"xtts_qa.evaluation cannot be imported ({exc})") from None
    return runner


def load_suite(ref: str) -> SuiteSpec:
    """Read a suite (file or built-in name) for collection.

    Raises:
        EvalUnavailable: the evaluation package cannot be imported here.
        XttsQaError: the suite does not exist or is invalid.
    """
    try:
        from xtts_qa.evaluation.suite import load_suite as load
    except ImportError as exc:
        raise EvalUnavailable(f"xtts_qa.evaluation cannot be imported ({exc})") from None
    suite = load(ref)
    return SuiteSpec(str(suite.name), ref, tuple(str(s.id) for s in suite.sentences))


def run_suite(
    candidate: Path,
    base: Path | None,
    ref: str,
    device: str,
    gates: tuple[str, ...] = (),
    *,
    engine: str = "local",
    ray_address: str | None = None,
    progress: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """Evaluate ``candidate`` (against ``base``) on a suite; returns ``EvalReport.to_dict()``.

    ``gates`` are per-run overrides of the suite's gates (``health.*`` gates are left to the health items).
    ``engine`` ``ray`` runs synthesis, ASR and scoring on a Ray cluster through :mod:`xtts_qa.execution` (the sweep's
    engine, ``ray_address`` or ``RAY_ADDRESS``, else a local cluster); the report is the same as a local run's.
    ``progress`` receives the evaluation's progress lines (clips synthesised and transcribed, elapsed, ETA).

    Raises:
        EvalUnavailable: the evaluation package (or Ray, for the ray engine) cannot be imported here.
        XttsQaError: the evaluation cannot run (missing model file, ASR model not available offline, ...).
    """
    runner = _evaluation()
    eval_gates = tuple(
        g for item in gates for g in str(item).split(",") if g.strip() and not g.strip().startswith("health.")
    )
    options = runner.EvalOptions(
        device=device, gates=eval_gates, progress=progress is not None, progress_callback=progress
    )
    if engine == "ray":
        # a callback cannot travel to Ray workers; the driver's own unit progress is what a Ray run shows
        return _run_on_ray(candidate, base, ref, replace(options, progress=False, progress_callback=None), ray_address)
    return dict(runner.run_eval(candidate, base, ref, options).to_dict())


def _run_on_ray(candidate: Path, base: Path | None, ref: str, options: Any, ray_address: str | None) -> dict[str, Any]:
    """One checkpoint x suite through the sweep driver on the Ray engine (no record: the plugin writes the run)."""
    try:
        import ray  # noqa: F401  (only to say which extra is missing)
    except ImportError:
        raise EvalUnavailable("--xtts-engine ray needs Ray: pip install 'xtts_qa[ray]'") from None
    from xtts_qa.errors import XttsQaError
    from xtts_qa.execution.driver import SweepOptions, run_sweep
    from xtts_qa.rules import CheckOptions

    sweep = SweepOptions(
        engine="ray",
        ray_address=ray_address,
        suites=(ref,),
        eval_options=options,
        check_options=CheckOptions(select=("XQ001",)),  # the health items judge structure; only 'readable' gates here
        report_dir=None,
        history=None,
    )
    report = run_sweep([str(candidate)], str(base) if base else None, sweep)
    result = report.checkpoints[0]
    if not result.evals:
        raise XttsQaError(f"{candidate}: not evaluated on Ray: the checkpoint could not be read (see XQ001)")
    return dict(next(iter(result.evals.values())))


def synthesiser(checkpoint: Path, device: str) -> Any:
    """The evaluation package's XTTS backend for one checkpoint (loads the model on first ``synthesize``).

    Raises:
        EvalUnavailable: the evaluation package cannot be imported here.
    """
    try:
        from xtts_qa.evaluation.synth import XttsBackend
    except ImportError as exc:
        raise EvalUnavailable(f"xtts_qa.evaluation cannot be imported ({exc})") from None
    return XttsBackend(checkpoint, device=device)
