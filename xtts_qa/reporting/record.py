"""A run record: every check and evaluation one run produced, with provenance; the unit reports and history store.

Checks are :meth:`xtts_qa.results.CheckReport.to_dict` dicts and evaluations are ``EvalReport.to_dict()`` dicts
(``kind: "eval"``), each tagged with the checkpoint label (and suite) it belongs to. The record is plain data so
it round-trips through JSON, the SQLite history and pytest-xdist workers unchanged.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xtts_qa.errors import InputError
from xtts_qa.evaluation.registry import METRICS, tracked_metrics

if TYPE_CHECKING:
    from xtts_qa.verdict import Verdict

__all__ = [
    "RUN_SCHEMA_VERSION",
    "DEFAULT_POLICY",
    "CheckEntry",
    "EvalEntry",
    "RunRecord",
    "new_run_id",
    "utc_now",
    "load_record",
    "policy_of",
]

#: 2: ``partial``, ``coverage``, ``policy``, ``outcome`` and ``reasons`` (absent in version 1: complete, default policy)
RUN_SCHEMA_VERSION = 2

#: the verdict policy of a run that stored none: fail on error findings, no baseline, no extra gates, not strict
DEFAULT_POLICY: dict[str, Any] = {"fail_on": "error", "baseline": None, "gates": [], "strict": False}


def policy_of(data: dict[str, Any] | None) -> dict[str, Any]:
    """``data`` (a stored policy, possibly partial or from an older run) completed with :data:`DEFAULT_POLICY`."""
    policy = {**DEFAULT_POLICY, **{k: v for k, v in (data or {}).items() if v is not None or k == "baseline"}}
    policy["gates"] = [str(g) for g in policy.get("gates") or []]
    policy["strict"] = bool(policy.get("strict"))
    policy["fail_on"] = str(policy.get("fail_on") or "error")
    return policy


#: metrics of an eval report that the history tracks, read from the metric registry (xtts_qa.evaluation.registry)
EVAL_METRICS = tracked_metrics()
HIGHER_IS_BETTER = frozenset(n for n, m in METRICS.items() if m.higher_is_better)


def utc_now() -> str:
    """The current time as an ISO-8601 UTC string with seconds."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_id() -> str:
    """A sortable, unique run id: UTC timestamp plus a random suffix (safe for parallel runs)."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


@dataclass(frozen=True)
class CheckEntry:
    """One checkpoint's structural check.

    Attributes:
        checkpoint: the checkpoint's label (its folder name, unless that was ambiguous).
        report: ``CheckReport.to_dict()``.
    """

    checkpoint: str
    report: dict[str, Any]

    @property
    def exit_code(self) -> int:
        return int(self.report.get("exit_code", 0))

    @property
    def summary(self) -> dict[str, int]:
        return dict(self.report.get("summary") or {})


@dataclass(frozen=True)
class EvalEntry:
    """One checkpoint's evaluation on one suite.

    Attributes:
        checkpoint: the checkpoint's label.
        suite: the suite's name.
        report: ``EvalReport.to_dict()``.
    """

    checkpoint: str
    suite: str
    report: dict[str, Any]

    @property
    def passed(self) -> bool:
        return bool(self.report.get("passed", False))

    @property
    def exit_code(self) -> int:
        return int(self.report.get("exit_code", 0 if self.passed else 1))

    def metrics(self, side: str = "candidate") -> dict[str, float]:
        """The suite-level metrics of one side (``candidate`` or ``base``); empty when absent."""
        values = (self.report.get("metrics") or {}).get(side) or {}
        return {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

    @property
    def sentences(self) -> list[dict[str, Any]]:
        return list(self.report.get("sentences") or [])


@dataclass(frozen=True)
class RunRecord:
    """Everything one run produced.

    Attributes:
        run_id: unique, sortable id (:func:`new_run_id`).
        started_at: ISO-8601 UTC start time.
        finished_at: ISO-8601 UTC end time.
        source: what produced it (``pytest``, ``cli``).
        label: a free label (CI job, branch) given by the user.
        checks: one :class:`CheckEntry` per checkpoint checked.
        evals: one :class:`EvalEntry` per checkpoint x suite evaluated.
        gates: run-level gate results (overrides given for this run), each ``{"expr", "metric", "checkpoint",
            "suite", "value", "passed", "message"}``.
        provenance: environment, checkpoint and base hashes, device, options.
        partial: only part of what was collected ran (``pytest -k``, ``--lf``, an interrupted run). A partial run
            is stored and listed but never ``latest``/``previous``, never in trends or regression lists, and its
            verdict cannot be ``pass`` (see :mod:`xtts_qa.verdict`).
        coverage: what ran against what was collected, per kind: ``{"items": {"ran": 3, "collected": 40},
            "rules": {"ran": 1, "collected": 38}, "sentences": {"ran": 0, "collected": 12}}`` (kinds optional;
            an optional ``"why"`` string, e.g. ``"-k XQ401"``).
        policy: how the run is judged: ``fail_on`` (``error``/``warning``/``info``), ``baseline`` (a baseline
            file path, an inline baseline document, or None), ``gates`` (expressions given for this run) and
            ``strict`` (inconclusive gates fail); see :data:`DEFAULT_POLICY`.
    """

    run_id: str
    started_at: str
    finished_at: str
    source: str = "pytest"
    label: str = ""
    checks: tuple[CheckEntry, ...] = ()
    evals: tuple[EvalEntry, ...] = ()
    gates: tuple[dict[str, Any], ...] = ()
    provenance: dict[str, Any] = field(default_factory=dict)
    partial: bool = False
    coverage: dict[str, Any] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_POLICY))

    def __post_init__(self) -> None:
        # a policy given in part (``{"fail_on": "warning"}``) is completed, so records round-trip equal
        object.__setattr__(self, "policy", policy_of(self.policy))

    def verdict(self) -> Verdict:
        """The run's :class:`xtts_qa.verdict.Verdict` under its stored policy (see :func:`xtts_qa.verdict.decide`)."""
        from xtts_qa.verdict import decide

        return decide(self)

    @property
    def exit_code(self) -> int:
        """0 pass, 1 fail, 2 cannot decide: :func:`xtts_qa.verdict.decide` under the stored policy."""
        return int(self.verdict().exit_code)

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    @property
    def checkpoints(self) -> list[str]:
        """Checkpoint labels in first-seen order."""
        seen: dict[str, None] = {}
        for label in [c.checkpoint for c in self.checks] + [e.checkpoint for e in self.evals]:
            seen.setdefault(label, None)
        return list(seen)

    def sentence_rows(self) -> Iterator[dict[str, Any]]:
        """One dict per evaluated sentence, with the run id, checkpoint, suite and provenance (for JSON lines)."""
        for entry in self.evals:
            prov = entry.report.get("provenance") or {}
            short = {
                k: prov.get(k)
                for k in ("candidate_hash", "base_hash", "asr_model", "speaker_model", "normaliser", "seeds", "device")
            }
            for sentence in entry.sentences:
                yield {
                    "run_id": self.run_id,
                    "checkpoint": entry.checkpoint,
                    "suite": entry.suite,
                    **sentence,
                    "provenance": short,
                }

    def metric_rows(self) -> Iterator[tuple[str, str, str, str, float]]:
        """(checkpoint, suite, side, metric, value) for every tracked metric: health counts and eval metrics."""
        for check in self.checks:
            for severity, count in check.summary.items():
                yield check.checkpoint, "health", "candidate", severity, float(count)
            failed = sum(1 for r in check.report.get("results", []) if r.get("status") == "failed")
            yield check.checkpoint, "health", "candidate", "failed_rules", float(failed)
        for entry in self.evals:
            for side in ("candidate", "base"):
                for metric, value in entry.metrics(side).items():
                    yield entry.checkpoint, entry.suite, side, metric, value
            gates = entry.report.get("gates") or []
            yield (
                entry.checkpoint,
                entry.suite,
                "candidate",
                "gates_failed",
                float(sum(1 for g in gates if not g.get("passed"))),
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; ``exit_code``, ``passed``, ``outcome`` and ``reasons`` are the stored policy's verdict."""
        verdict = self.verdict()
        return {
            "schema_version": RUN_SCHEMA_VERSION,
            "kind": "run",
            "run_id": self.run_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "source": self.source,
            "label": self.label,
            "exit_code": verdict.exit_code,
            "passed": verdict.passed,
            "outcome": verdict.outcome,
            "reasons": list(verdict.reasons),
            "partial": self.partial,
            "coverage": self.coverage,
            "policy": self.policy,
            "checks": [{"checkpoint": c.checkpoint, "report": c.report} for c in self.checks],
            "evals": [{"checkpoint": e.checkpoint, "suite": e.suite, "report": e.report} for e in self.evals],
            "gates": list(self.gates),
            "provenance": self.provenance,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """Rebuild a record from :meth:`to_dict` output.

        Raises:
            ValueError: not a run record.
        """
        if data.get("kind") != "run":
            raise ValueError(f"not a run record (kind={data.get('kind')!r})")
        return cls(
            run_id=str(data["run_id"]),
            started_at=str(data.get("started_at", "")),
            finished_at=str(data.get("finished_at", "")),
            source=str(data.get("source", "")),
            label=str(data.get("label", "")),
            checks=tuple(CheckEntry(c["checkpoint"], c["report"]) for c in data.get("checks", [])),
            evals=tuple(EvalEntry(e["checkpoint"], e["suite"], e["report"]) for e in data.get("evals", [])),
            gates=tuple(data.get("gates", [])),
            provenance=dict(data.get("provenance") or {}),
            partial=bool(data.get("partial", False)),
            coverage=dict(data.get("coverage") or {}),
            policy=policy_of(data.get("policy")),
        )


def load_record(path: str | Path) -> RunRecord:
    """Read a run's ``summary.json`` (or the folder holding it).

    Raises:
        InputError: missing or not a run summary.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "summary.json"
    try:
        return RunRecord.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise InputError(
            path, "does not exist.", "pass a run id from the history or a report folder's summary.json."
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(
            path, f"is not a run summary ({exc}).", "pass the summary.json an xtts-qa run wrote."
        ) from None
