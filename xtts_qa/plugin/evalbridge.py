"""The plugin's only door into :mod:`xtts_qa.evaluation`: suites, synthesis and scoring.

When the evaluation package (or one of its optional dependencies) is missing, every function raises
:class:`EvalUnavailable` with a reason, and eval items and fixtures skip with it.
"""

from __future__ import annotations

from dataclasses import dataclass
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
        import xtts_qa.evaluation as evaluation
    except ImportError as exc:
        raise EvalUnavailable(f"xtts_qa.evaluation cannot be imported ({exc})") from None
    return evaluation


def load_suite(ref: str) -> SuiteSpec:
    """Read a suite (file or built-in name) for collection.

    Raises:
        EvalUnavailable: no evaluation package, or it has no suite loader.
    """
    evaluation = _evaluation()
    loader = getattr(evaluation, "load_suite", None)
    if loader is None:
        raise EvalUnavailable("xtts_qa.evaluation does not provide load_suite() yet")
    suite = loader(ref)
    return SuiteSpec(str(suite.name), ref, tuple(str(s.id) for s in suite.sentences))


def run_suite(candidate: Path, base: Path | None, ref: str, device: str) -> dict[str, Any]:
    """Evaluate ``candidate`` (against ``base``) on a suite; returns ``EvalReport.to_dict()``.

    Raises:
        EvalUnavailable: no evaluation runner.
    """
    evaluation = _evaluation()
    runner = getattr(evaluation, "evaluate", None)
    if runner is None:
        raise EvalUnavailable("xtts_qa.evaluation does not provide evaluate() yet")
    return dict(runner(candidate, base=base, suite=ref, device=device).to_dict())


def synthesiser(checkpoint: Path, device: str) -> Any:
    """A synthesiser for one checkpoint (the evaluation package's).

    Raises:
        EvalUnavailable: no synthesiser available.
    """
    evaluation = _evaluation()
    factory = getattr(evaluation, "Synthesiser", None) or getattr(evaluation, "load_synthesiser", None)
    if factory is None:
        raise EvalUnavailable("xtts_qa.evaluation does not provide a synthesiser yet")
    return factory(checkpoint, device=device)
