"""The sweep driver: check every checkpoint, evaluate those that pass, record the run once.

The driver is the only process that writes: the evaluation cache (the results workers hand back), the sweep
journal (one line per unit run, appended as each finishes) and, at the end, the run record and the SQLite
history. A unit whose clips, transcripts and embeddings are all in the cache is not run again, so a sweep
interrupted at any point and started again runs only what is missing; the final reports are computed by the
evaluation's own ``run_eval`` from that cache, so both engines give the same figures as ``xtts-qa eval``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from xtts_qa.errors import InputError, UsageError
from xtts_qa.execution import adapter
from xtts_qa.execution.base import ENGINES, Engine, UnitOutcome
from xtts_qa.execution.units import ClipJob, Unit, UnitContext, batches, unit_key
from xtts_qa.labels import checkpoint_labels

log = logging.getLogger("xtts_qa")

__all__ = [
    "SweepOptions",
    "SweepProgress",
    "SweepReport",
    "CheckpointResult",
    "run_sweep",
    "make_engine",
    "checkpoint_labels",
]


@dataclass(frozen=True)
class SweepProgress:
    """One progress event (after each unit, and once at the start).

    Attributes:
        done: units finished in this sweep (run or found in the cache).
        total: units of the whole sweep.
        cached: units found in the cache at the start.
        retried: units resubmitted after losing a worker.
        eta_s: estimated seconds left (None until a unit has run).
        last: the unit that just finished, if any.
        workers: worker name -> process id.
    """

    done: int
    total: int
    cached: int
    retried: int
    eta_s: float | None
    last: UnitOutcome | None
    workers: dict[str, int]


@dataclass(frozen=True)
class SweepOptions:
    """How to run a sweep.

    Attributes:
        engine: ``local`` or ``ray``.
        ray_address: Ray cluster address (None: ``RAY_ADDRESS``, else a local cluster).
        suites: suite names or files.
        eval_options: evaluation settings (backend, device, synthesis, ASR, gates, cache root).
        check_options: structural check settings (intent, select, ignore).
        evaluate: False runs only the structural checks.
        batch_size: sentences per work unit.
        synth_actors, asr_actors, max_inflight, max_retries: Ray engine sizing (0: automatic).
        threads: torch threads for synthesis and embeddings in every worker (0: this process's count); CPU
            synthesis differs bit for bit with the thread count, so both engines use the same.
        report_dir: where the run's reports go (None: no reports and no history).
        history: the SQLite history to append to (None: none).
        label: a label stored with the run.
        on_progress: called on the driver after every unit (may raise to stop the sweep).
    """

    engine: str = "local"
    ray_address: str | None = None
    suites: tuple[str, ...] = ("smoke-en",)
    eval_options: Any = None
    check_options: Any = None
    evaluate: bool = True
    batch_size: int = 4
    synth_actors: int = 0
    asr_actors: int = 0
    max_inflight: int = 0
    max_retries: int = 3
    threads: int = 0
    report_dir: Path | None = None
    history: Path | None = None
    label: str = ""
    on_progress: Callable[[SweepProgress], None] | None = None


@dataclass(frozen=True)
class CheckpointResult:
    """One checkpoint's verdicts.

    Attributes:
        target: the checkpoint as given.
        label: its short name in reports and the history.
        check: ``CheckReport.to_dict()``.
        evals: suite name -> ``EvalReport.to_dict()`` (empty when the check failed or with ``--no-eval``).
    """

    target: str
    label: str
    check: dict[str, Any]
    evals: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        codes = [int(self.check.get("exit_code", 0))] + [int(e.get("exit_code", 0)) for e in self.evals.values()]
        return 2 if 2 in codes else (1 if any(codes) else 0)

    def to_dict(self) -> dict[str, Any]:
        findings = [f for r in self.check.get("results", []) for f in r.get("findings", [])]
        return {
            "target": self.target,
            "label": self.label,
            "exit_code": self.exit_code,
            "check_exit_code": int(self.check.get("exit_code", 0)),
            "findings": findings,
            "evaluated": bool(self.evals),
            "metrics": {suite: e.get("metrics") for suite, e in self.evals.items()},
            "gates": {suite: e.get("gates") for suite, e in self.evals.items()},
        }


@dataclass(frozen=True)
class SweepReport:
    """The outcome of a sweep.

    Attributes:
        engine: which engine ran it.
        base: the base model.
        suites: suite names.
        checkpoints: one result per checkpoint, in the order given.
        units: ``total``, ``cached`` (found at start), ``run``, ``retried``.
        run_id: the run record's id ('' when nothing was recorded).
        report: the HTML report path, if written.
        seconds: wall time.
    """

    engine: str
    base: str | None
    suites: tuple[str, ...]
    checkpoints: tuple[CheckpointResult, ...]
    units: dict[str, int]
    run_id: str = ""
    report: str | None = None
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        codes = [c.exit_code for c in self.checkpoints]
        return 2 if 2 in codes else (1 if any(codes) else 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "sweep",
            "engine": self.engine,
            "base": self.base,
            "suites": list(self.suites),
            "exit_code": self.exit_code,
            "units": dict(self.units),
            "run_id": self.run_id,
            "report": self.report,
            "seconds": round(self.seconds, 3),
            "checkpoints": [c.to_dict() for c in self.checkpoints],
        }


def make_engine(options: SweepOptions) -> Engine:
    """The engine ``options.engine`` names.

    Raises:
        UsageError: an unknown engine.
        EngineError: Ray missing or unreachable.
    """
    device = options.eval_options.device if options.eval_options is not None else "auto"
    if options.engine == "local":
        from xtts_qa.execution.local import LocalEngine

        return LocalEngine(device)
    if options.engine == "ray":
        from xtts_qa.execution.ray_engine import RayEngine

        return RayEngine(
            options.ray_address,
            device,
            options.synth_actors,
            options.asr_actors,
            options.max_retries,
            options.max_inflight,
        )
    raise UsageError(f"--engine {options.engine!r} is not one of {', '.join(ENGINES)}.")


class _Plan:
    """Every unit of a sweep, which of them are already done, and the context workers need."""

    def __init__(
        self, models: list[tuple[str, str]], suites: list[Any], options: Any, batch_size: int, threads: int
    ) -> None:
        from xtts_qa.evaluation.artifact_cache import EvalCache, key_of
        from xtts_qa.evaluation.asr import Transcriber
        from xtts_qa.evaluation.references import prepare_reference
        from xtts_qa.evaluation.similarity import SpeakerEncoder

        self.cache = EvalCache(options.cache_root)
        asr_identity = Transcriber(options.asr).identity()
        speaker_identity = SpeakerEncoder("cpu").identity()
        refs: dict[str, tuple[Any, bytes]] = {}
        units: dict[str, Unit] = {}
        self.done: set[str] = set()
        for suite in suites:
            sentences = list(suite.sentences[: options.limit] if options.limit else suite.sentences)
            for speaker in sorted({s.speaker for s in sentences}):
                ref = prepare_reference(suite.speakers[speaker], self.cache)
                refs[f"{suite.name}/{speaker}"] = (ref, Path(ref.path).read_bytes())
            for model, role in models:
                identity = adapter.backend_for(model, options, self.cache, base=role == "base").identity()
                jobs = []
                for s in sentences:
                    ref = refs[f"{suite.name}/{s.speaker}"][0]
                    seed = suite.seed_for(s)
                    jobs.append(
                        ClipJob(adapter.audio_key(identity, s, ref, seed), s, f"{suite.name}/{s.speaker}", seed)
                    )
                for i, batch in enumerate(batches(jobs, batch_size)):
                    key = unit_key([j.key for j in batch], asr_identity, speaker_identity)
                    if key in units:
                        continue
                    units[key] = Unit(key, model, role, suite.name, i, tuple(batch))
                    if all(
                        adapter.clip_cached(self.cache, j.key, asr_identity, speaker_identity, j.sentence.language)
                        for j in batch
                    ):
                        self.done.add(key)
        self.units = list(units.values())
        self.asr_identity, self.speaker_identity = asr_identity, speaker_identity
        self.context = UnitContext(options, refs, threads)
        self.key = key_of("sweep", sorted(units))

    @property
    def pending(self) -> list[Unit]:
        return [u for u in self.units if u.key not in self.done]

    def store(self, outcome: UnitOutcome) -> None:
        """Write one finished unit's results into the cache and append it to the journal."""
        for clip in outcome.clips:
            adapter.store_clip(
                self.cache,
                clip.key,
                clip.wav,
                clip.meta,
                (adapter.transcript_key(clip.meta["digest"], self.asr_identity, clip.language), clip.transcript),
                (adapter.embedding_key(clip.meta["digest"], self.speaker_identity), clip.embedding),
            )
        self.done.add(outcome.unit.key)
        line = {
            "unit": outcome.unit.key,
            "model": outcome.unit.model,
            "role": outcome.unit.role,
            "suite": outcome.unit.suite,
            "batch": outcome.unit.batch,
            "clips": len(outcome.clips),
            "attempts": outcome.attempts,
            "worker": outcome.worker,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        with open(self.journal, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    @property
    def journal(self) -> Path:
        """The sweep's journal: one JSON line per unit run (by any run of this same sweep)."""
        path = self.cache.root / "sweeps" / f"{self.key}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


def _validate(targets: list[str], base: str | None, backend: str) -> None:
    if not targets:
        raise UsageError("sweep needs at least one checkpoint.")
    if backend != "xtts":
        raise UsageError(
            "sweep evaluates XTTS checkpoints (backend xtts); use `xtts-qa eval --backend command` for other engines."
        )
    for path in [*targets, *([base] if base else [])]:
        if not Path(path).exists():
            raise InputError(
                path, "does not exist.", "pass model folders or checkpoint files (globs are expanded by your shell)."
            )


def run_sweep(targets: list[str], base: str | None, options: SweepOptions | None = None) -> SweepReport:
    """Check every target, evaluate the healthy ones on every suite, record the run.

    Raises:
        UsageError: bad options or suites.
        InputError: a checkpoint or base that does not exist or cannot be used.
        EngineError: the engine cannot run, or a unit kept losing its worker.
    """
    import torch

    from xtts_qa.evaluation.runner import EvalOptions
    from xtts_qa.evaluation.suite import load_suite
    from xtts_qa.rules import CheckOptions

    started = time.perf_counter()
    options = options or SweepOptions()
    eval_options = options.eval_options or EvalOptions(progress=False)
    check_options = options.check_options or CheckOptions()
    targets = [str(t) for t in targets]
    _validate(targets, base, eval_options.backend)
    if options.batch_size < 1:
        raise UsageError("--batch-size must be at least 1.")
    suites = [load_suite(s) for s in options.suites] if options.evaluate else []
    labels = checkpoint_labels(targets)
    started_at = _utc_now()
    engine = make_engine(options)
    try:
        checks = engine.check(targets, base, check_options)
        healthy = [t for t, c in zip(targets, checks, strict=True) if int(c.get("exit_code", 0)) == 0]
        log.info("sweep: %d of %d checkpoints pass the structural check", len(healthy), len(targets))
        units_info = {"total": 0, "cached": 0, "run": 0, "retried": 0}
        evals: dict[str, dict[str, dict[str, Any]]] = {}
        if suites and healthy:
            eval_options = replace(
                eval_options, device=engine.synth_device if eval_options.device == "auto" else eval_options.device
            )
            models = [(t, "candidate") for t in healthy] + ([(str(base), "base")] if base is not None else [])
            plan = _Plan(models, suites, eval_options, options.batch_size, options.threads or torch.get_num_threads())
            units_info = _run_units(engine, plan, options)
            for target in healthy:
                for suite in suites:
                    report = adapter.evaluate_from_cache(target, base, suite, eval_options)
                    evals.setdefault(target, {})[suite.name] = report.to_dict()
    finally:
        engine.close()
    results = tuple(
        CheckpointResult(t, lab, c, evals.get(t, {})) for t, lab, c in zip(targets, labels, checks, strict=True)
    )
    report = SweepReport(
        options.engine, base, tuple(s.name for s in suites), results, units_info, seconds=time.perf_counter() - started
    )
    if options.report_dir is not None:
        report = _record(report, started_at, options, eval_options, check_options)
    return report


def _run_units(engine: Engine, plan: _Plan, options: SweepOptions) -> dict[str, int]:
    total, cached = len(plan.units), len(plan.done)
    pending = plan.pending
    counts = {"total": total, "cached": cached, "run": 0, "retried": 0}
    log.info("sweep: %d units (%d already in the cache), %d to run on %s", total, cached, len(pending), engine.name)
    began = time.perf_counter()

    def progress(last: UnitOutcome | None) -> None:
        ran = counts["run"]
        eta = (time.perf_counter() - began) / ran * (len(pending) - ran) if ran else None
        event = SweepProgress(cached + ran, total, cached, counts["retried"], eta, last, engine.workers())
        if last is not None:
            log.info(
                "sweep: %d/%d units, %d retried, ETA %s (%s, %s)",
                event.done,
                total,
                event.retried,
                _eta(eta),
                last.unit.describe(),
                last.worker,
            )
        if options.on_progress is not None:
            options.on_progress(event)

    def on_done(outcome: UnitOutcome) -> None:
        plan.store(outcome)
        counts["run"] += 1
        counts["retried"] += outcome.attempts > 1
        progress(outcome)

    if pending:
        engine.run_units(pending, plan.context, on_done)
    else:
        progress(None)
    return counts


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _utc_now() -> str:
    from xtts_qa.reporting.record import utc_now

    return utc_now()


def _record(
    report: SweepReport, started_at: str, options: SweepOptions, eval_options: Any, check_options: Any
) -> SweepReport:
    """Write the run's reports and append it to the history (the driver is the only writer)."""
    from xtts_qa.reporting.provenance import content_hash, environment
    from xtts_qa.reporting.publish import publish
    from xtts_qa.reporting.record import CheckEntry, EvalEntry, RunRecord, new_run_id, utc_now

    checks = tuple(CheckEntry(c.label, c.check) for c in report.checkpoints)
    evals = tuple(EvalEntry(c.label, suite, e) for c in report.checkpoints for suite, e in c.evals.items())
    provenance = {
        "environment": environment(eval_options.device),
        "device": eval_options.device,
        "engine": report.engine,
        "units": report.units,
        "checkpoints": {c.label: {"target": c.target, "hash": content_hash(c.target)} for c in report.checkpoints},
        "base": {"target": report.base, "hash": content_hash(report.base)} if report.base else None,
        "options": {
            "intent": check_options.intent,
            "select": list(check_options.select),
            "ignore": list(check_options.ignore),
            "suites": list(report.suites),
            "gates": list(eval_options.gates),
            "batch_size": options.batch_size,
        },
    }
    record = RunRecord(new_run_id(), started_at, utc_now(), "sweep", options.label, checks, evals, (), provenance)
    assert options.report_dir is not None, "run_sweep records a run only when it has a report_dir"
    paths = publish(record, options.report_dir, options.history)
    return replace(report, run_id=record.run_id, report=str(paths.html))
