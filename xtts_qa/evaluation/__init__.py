"""Listening evaluation of XTTS-v2 checkpoints: synthesise a suite, transcribe, score, compare with the base, gate.

Data flows one way: suite file (:mod:`.suite`) and reference clips (:mod:`.references`, :mod:`.audio`)
-> synthesis (:mod:`.synth`) -> ASR (:mod:`.asr`) and speaker embeddings (:mod:`.similarity`)
-> metrics (:mod:`.normalize`, :mod:`.metrics`) -> gates (:mod:`.gates`) -> :class:`.results.EvalReport`.
:mod:`.runner` orchestrates it, with a content-addressed cache (:mod:`.artifact_cache`) so reruns cost nothing.
"""

from __future__ import annotations

__all__ = ["run_eval", "EvalOptions", "EvalReport", "load_suite"]


def __getattr__(name: str) -> object:  # lazy: importing the package must not import torch or whisper
    if name in ("run_eval", "EvalOptions"):
        from xtts_qa.evaluation import runner

        return getattr(runner, name)
    if name == "EvalReport":
        from xtts_qa.evaluation.results import EvalReport

        return EvalReport
    if name == "load_suite":
        from xtts_qa.evaluation.suite import load_suite

        return load_suite
    raise AttributeError(name)
