"""The Ray engine: synthesis actors (one model loaded and kept per actor; one per GPU), ASR actors, scoring tasks.

Audio moves through Ray's object store: a synthesis call returns the clips of a unit, and the ASR call and the
scoring task take that object reference as their argument, so no shared file system is needed for audio.
At most ``max_inflight`` units are submitted at a time (back-pressure: memory stays bounded whatever the
sweep's size). Ray's own task retries are off for actor calls: the driver sees a lost worker, resubmits the
unit (at most ``max_retries`` times), logs it and counts it, so nothing is lost or recorded twice.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from xtts_qa.errors import XttsQaError
from xtts_qa.execution.base import EngineError, UnitOutcome
from xtts_qa.execution.units import ClipResult, Unit, UnitContext
from xtts_qa.execution.workers import Listener, Synthesiser, check_target, score_clips

log = logging.getLogger("xtts_qa")

__all__ = ["RayEngine", "import_ray"]


def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        EngineError: Ray is not installed.
    """
    try:
        import ray
    except ImportError:
        raise EngineError(
            "--engine ray needs Ray, which is not installed; pip install 'xtts_qa[ray]' (or use --engine local)."
        ) from None
    return ray


@dataclass
class _Flight:
    unit: Unit
    attempt: int
    actor: int
    synth: Any
    asr: Any
    score: Any


class RayEngine:
    """Runs a sweep's checks and units on a Ray cluster (an existing one, or a local one it starts and stops).

    Args:
        address: cluster address (``ray://host:10001``, ``host:6379`` or ``auto``); None: ``RAY_ADDRESS``, else a
            local cluster on this machine.
        device: ``auto`` (GPU actors when the cluster has GPUs), ``cpu`` or ``cuda``.
        synth_actors: synthesis actors (0: one per GPU, or CPUs - 1 on a CPU-only cluster).
        asr_actors: ASR actors (0: one per four synthesis actors, at least one).
        max_retries: times a unit is resubmitted after losing its worker.
        max_inflight: units submitted at once (0: two per synthesis actor).
        num_cpus: CPUs of a local cluster started here (None: all).
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        device: str = "auto",
        synth_actors: int = 0,
        asr_actors: int = 0,
        max_retries: int = 3,
        max_inflight: int = 0,
        num_cpus: int | None = None,
    ) -> None:
        self.ray = ray = import_ray()
        self._owns_cluster = False
        if not ray.is_initialized():
            address = address or os.environ.get("RAY_ADDRESS") or None
            try:
                if address:
                    ray.init(address=address, log_to_driver=False)
                else:
                    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
                    self._owns_cluster = True
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise EngineError(
                    f"cannot connect to the Ray cluster at {address!r} ({str(exc).splitlines()[0][:160]}); "
                    "check --ray-address / RAY_ADDRESS, or start one with `ray start --head`."
                ) from None
        resources = ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0))
        self.cpus = float(resources.get("CPU", 1))
        self.synth_device = device if device != "auto" else ("cuda" if self.gpus else "cpu")
        if self.synth_device.startswith("cuda") and not self.gpus:
            raise EngineError("--device cuda but the Ray cluster has no GPU; use --device cpu or add GPU nodes.")
        on_gpu = self.synth_device.startswith("cuda")
        self.n_synth = synth_actors or (self.gpus if on_gpu else max(1, int(self.cpus) - 1))
        self.n_asr = asr_actors or max(1, self.n_synth // 4)
        self.max_retries = max_retries
        self.max_inflight = max_inflight or 2 * self.n_synth
        # on CPUs, leave room for the ASR actors and one scoring task (0.5 CPU each): more synthesis actors than
        # that share the CPUs (fractional requests) instead of waiting forever for CPUs that will never be free
        room = self.cpus - 0.5 * self.n_asr - 0.5
        per_actor = 1.0 if on_gpu or self.n_synth <= room else max(0.05, room / self.n_synth)
        if per_actor < 1.0:
            log.warning("ray: %d synthesis actors on %g CPUs: each gets %.2f CPU", self.n_synth, self.cpus, per_actor)
        self._synth_resources = {"num_gpus": 1} if on_gpu else {"num_cpus": per_actor}
        self._actors: list[Any] = []
        self._listeners: list[Any] = []
        self._context_ref: Any = None
        self._pids: dict[str, int] = {}
        log.info(
            "ray: %d CPUs, %d GPUs; %d synthesis actors on %s, %d ASR actors, %d units in flight at most",
            self.cpus,
            self.gpus,
            self.n_synth,
            self.synth_device,
            self.n_asr,
            self.max_inflight,
        )

    # -- structural checks: plain CPU tasks -----------------------------------------------------------
    def check(self, targets: list[str], base: str | None, options: Any) -> list[dict[str, Any]]:
        task = self.ray.remote(num_cpus=1, max_retries=self.max_retries)(check_target)
        refs = [task.remote(t, base, options) for t in targets]
        return [self._get(ref) for ref in refs]

    def _get(self, ref: Any) -> Any:
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, XttsQaError):
                raise cause from None
            raise

    # -- evaluation units -----------------------------------------------------------------------------
    def _start(self, context: UnitContext) -> None:
        ray = self.ray
        synth_cls = ray.remote(Synthesiser)
        asr_cls = ray.remote(Listener)
        restarts = max(1, self.max_retries) * 4
        # the context (references as bytes) lives in the object store under a reference this driver keeps, so a
        # restarted actor can read its constructor argument again (an inline argument is freed after the first start)
        self._context_ref = ray.put(context)
        self._actors = [
            synth_cls.options(**self._synth_resources, max_restarts=restarts, max_task_retries=0).remote(
                self._context_ref
            )
            for _ in range(self.n_synth)
        ]
        self._listeners = [
            asr_cls.options(num_cpus=0.5, max_restarts=restarts, max_task_retries=0).remote(self._context_ref)
            for _ in range(self.n_asr)
        ]
        self._refresh_pids()

    def _refresh_pids(self) -> None:
        """Wait until every actor answers (a restarting one included) and note its process id."""
        names = [f"synth-{i}" for i in range(len(self._actors))] + [f"asr-{i}" for i in range(len(self._listeners))]
        self._pids = {}
        for name, handle in zip(names, self._actors + self._listeners, strict=True):
            pid = self._wait_ready(handle)
            if pid is not None:
                self._pids[name] = pid

    def _wait_ready(self, handle: Any, timeout_s: float = 180.0) -> int | None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return int(self.ray.get(handle.pid.remote(), timeout=max(1.0, deadline - time.monotonic())))
            except Exception as exc:  # restarting (unavailable: wait) or gone for good (died: give up at once)
                unavailable = type(exc).__name__ in ("ActorUnavailableError", "GetTimeoutError")
                if time.monotonic() >= deadline or not unavailable:
                    log.warning("ray: an actor did not come back (%s)", type(exc).__name__)
                    return None
                time.sleep(0.5)

    def workers(self) -> dict[str, int]:
        return dict(self._pids)

    def _retryable(self, exc: BaseException) -> bool:
        errors = self.ray.exceptions
        lost = tuple(
            getattr(errors, n)
            for n in (
                "RayActorError",
                "WorkerCrashedError",
                "ObjectLostError",
                "OwnerDiedError",
                "NodeDiedError",
                "ActorUnavailableError",
            )
            if hasattr(errors, n)
        )
        if isinstance(exc, lost):
            return True
        cause = getattr(exc, "cause", None)
        return isinstance(cause, lost)

    def run_units(self, units: list[Unit], context: UnitContext, on_done: Callable[[UnitOutcome], None]) -> None:
        if not units:
            return
        ray = self.ray
        self._start(context)
        scorer = ray.remote(num_cpus=0.5, max_retries=self.max_retries)(score_clips)
        queue: deque[tuple[Unit, int]] = deque((u, 1) for u in units)
        flights: dict[Any, _Flight] = {}
        load = [0] * len(self._actors)
        last_model: list[str | None] = [None] * len(self._actors)
        next_listener = 0
        stale_pids = False
        try:
            while queue or flights:
                if stale_pids:  # a worker was lost: wait for its restart before giving it more work
                    self._refresh_pids()
                    stale_pids = False
                while queue and len(flights) < self.max_inflight:
                    unit, attempt = queue.popleft()
                    # the least busy actor, preferring one that already holds this model
                    i = min(range(len(self._actors)), key=lambda k: (load[k], last_model[k] != unit.model, k))
                    synth = self._actors[i].run.remote(unit)
                    asr = self._listeners[next_listener % len(self._listeners)].transcribe.remote(synth)
                    next_listener += 1
                    score = scorer.remote(synth, self.synth_device, context.threads)
                    flights[asr] = _Flight(unit, attempt, i, synth, asr, score)
                    load[i] += 1
                    last_model[i] = unit.model
                ready, _ = ray.wait(list(flights), num_returns=1, timeout=5.0)
                for ref in ready:
                    flight = flights.pop(ref)
                    load[flight.actor] -= 1
                    try:
                        clips: list[ClipResult] = ray.get(flight.synth)
                        texts, vectors = ray.get([flight.asr, flight.score])
                    except Exception as exc:  # Ray wraps worker errors; sort lost workers from real failures
                        if not self._retryable(exc):
                            cause = getattr(exc, "cause", None)
                            if isinstance(cause, XttsQaError):
                                raise cause from None
                            raise
                        if flight.attempt > self.max_retries:
                            raise EngineError(
                                f"unit {flight.unit.describe()} lost its worker {flight.attempt} times; giving up "
                                f"(last: {type(exc).__name__}). Check the workers' memory and logs."
                            ) from None
                        log.warning(
                            "ray: unit %s lost its worker (%s); retry %d of %d",
                            flight.unit.describe(),
                            type(exc).__name__,
                            flight.attempt,
                            self.max_retries,
                        )
                        queue.appendleft((flight.unit, flight.attempt + 1))
                        stale_pids = True
                        continue
                    pid = self._pids.get(f"synth-{flight.actor}")
                    done = tuple(
                        replace(c, transcript=t, embedding=v) for c, t, v in zip(clips, texts, vectors, strict=True)
                    )
                    on_done(UnitOutcome(flight.unit, done, flight.attempt, f"ray:synth-{flight.actor} pid {pid}"))
        finally:
            for flight in flights.values():
                for ref in (flight.synth, flight.asr, flight.score):
                    try:
                        ray.cancel(ref, force=False)
                    except Exception:  # already finished or an actor call that cannot be cancelled
                        pass
            self._kill_actors()

    def _kill_actors(self) -> None:
        for handle in self._actors + self._listeners:
            try:
                self.ray.kill(handle)
            except Exception as exc:  # already dead
                log.debug("ray: kill actor: %s", exc)
        self._actors, self._listeners, self._context_ref = [], [], None

    def close(self) -> None:
        self._kill_actors()
        if self._owns_cluster and self.ray.is_initialized():
            self.ray.shutdown()
