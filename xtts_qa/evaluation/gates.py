"""Gate expressions (``wer_delta <= 0.05``, ``similarity_ref >= 0.6``) parsed once into :class:`Gate` objects.

A metric is an absolute candidate figure (``wer``, ``cer``, ``mean_wer``, ``hallucination_rate``,
``similarity_ref``, ``similarity_base``, ``rtf``, ``flag_rate``) or a candidate-minus-base difference (the same
name with ``_delta``; ``similarity_delta`` is short for ``similarity_ref_delta``). Absolute gates are floors
judged on the point value. Difference gates are one-sided and judged with a paired, seeded bootstrap over
sentences: a gate fails only when the whole 95 % interval lies on the wrong side of the threshold, so a
small suite does not fail on noise.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from xtts_qa.errors import UsageError

__all__ = ["METRICS", "Gate", "GateResult", "SentenceSamples", "parse_gate", "parse_gates", "evaluate_gates", "corpus_metric"]

#: absolute metrics and which direction is better
METRICS: dict[str, str] = {
    "wer": "lower", "cer": "lower", "mean_wer": "lower", "hallucination_rate": "lower",
    "similarity_ref": "higher", "similarity_base": "higher", "rtf": "lower", "flag_rate": "lower",
}
_ALIASES = {"similarity_delta": "similarity_ref_delta", "hallucination_delta": "hallucination_rate_delta"}
_OPS: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}
_PATTERN = re.compile(r"^\s*([a-z_]+)\s*(<=|>=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)\s*(%?)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class SentenceSamples:
    """Per-sentence figures of one model, aligned by sentence, from which every metric (and its bootstrap) is computed.

    Attributes:
        word_errors, word_total: word edit counts and reference lengths.
        char_errors, char_total: character edit counts and reference lengths.
        wer: per-sentence WER.
        similarity_ref: cosine similarity with the reference clip (NaN when unknown).
        similarity_base: cosine similarity with the base model's clip (NaN when unknown).
        synth_seconds, audio_seconds: synthesis time and output duration.
        flagged: 1 where the sentence raised a signal flag.
    """

    word_errors: np.ndarray
    word_total: np.ndarray
    char_errors: np.ndarray
    char_total: np.ndarray
    wer: np.ndarray
    similarity_ref: np.ndarray
    similarity_base: np.ndarray
    synth_seconds: np.ndarray
    audio_seconds: np.ndarray
    flagged: np.ndarray


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    den_sum = den.sum(axis=-1)
    return np.where(den_sum > 0, num.sum(axis=-1) / np.maximum(den_sum, 1e-12), 0.0)


def _nanmean(values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        count = np.sum(~np.isnan(values), axis=-1)
        total = np.nansum(values, axis=-1)
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def corpus_metric(name: str, s: SentenceSamples, idx: np.ndarray | None = None) -> np.ndarray:
    """Metric ``name`` over the sentences in ``idx`` (shape [..., n]; all sentences when None)."""
    take = (lambda a: a) if idx is None else (lambda a: a[idx])
    if name == "wer":
        return _ratio(take(s.word_errors), take(s.word_total))
    if name == "cer":
        return _ratio(take(s.char_errors), take(s.char_total))
    if name == "mean_wer":
        return take(s.wer).mean(axis=-1)
    if name == "hallucination_rate":
        from xtts_qa.evaluation.metrics import HALLUCINATION_WER

        return (take(s.wer) > HALLUCINATION_WER).mean(axis=-1)
    if name == "similarity_ref":
        return _nanmean(take(s.similarity_ref))
    if name == "similarity_base":
        return _nanmean(take(s.similarity_base))
    if name == "rtf":
        return _ratio(take(s.synth_seconds), take(s.audio_seconds))
    if name == "flag_rate":
        return take(s.flagged).mean(axis=-1)
    raise KeyError(name)


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict.

    Attributes:
        expr: the expression as written.
        metric: the metric it reads.
        value: the metric's point value.
        ci: the bootstrap 95 % interval (difference gates), else None.
        passed: the verdict.
        message: one line in the user's terms.
    """

    expr: str
    metric: str
    value: float
    ci: tuple[float, float] | None
    passed: bool
    message: str

    def to_dict(self) -> dict[str, object]:
        return {"expr": self.expr, "metric": self.metric, "value": _num(self.value),
                "ci": [_num(self.ci[0]), _num(self.ci[1])] if self.ci else None, "passed": self.passed, "message": self.message}


def _num(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 6)


@dataclass(frozen=True)
class Gate:
    """A parsed gate: ``metric op threshold``.

    Attributes:
        expr: the expression as written.
        metric: canonical metric name (``wer``, ``similarity_ref_delta``, ...).
        op: ``<=``, ``<``, ``>=`` or ``>``.
        threshold: the number (a trailing ``%`` divides by 100).
    """

    expr: str
    metric: str
    op: str
    threshold: float

    @property
    def base_metric(self) -> str:
        return self.metric[: -len("_delta")] if self.is_delta else self.metric

    @property
    def is_delta(self) -> bool:
        return self.metric.endswith("_delta")

    def fails(self, value: float, ci: tuple[float, float] | None = None) -> bool:
        """True when the gate fails: on the point value for floors; on the whole interval for differences."""
        if value is None or not np.isfinite(value):
            return True
        ok = _OPS[self.op]
        if self.is_delta and ci is not None:
            lo, hi = ci
            # one-sided: fail only when even the most favourable end of the interval breaks the gate
            favourable = lo if self.op in ("<=", "<") else hi
            return not ok(favourable, self.threshold)
        return not ok(value, self.threshold)

    def message(self, value: float, ci: tuple[float, float] | None, passed: bool) -> str:
        verdict = "ok" if passed else "FAILED"
        shown = "n/a" if value is None or not np.isfinite(value) else f"{value:+.4f}" if self.is_delta else f"{value:.4f}"
        text = f"{self.metric} = {shown} (gate {self.op} {self.threshold:g}): {verdict}"
        if ci is not None:
            text += f"; 95% CI [{ci[0]:+.4f}, {ci[1]:+.4f}]"
            if self.is_delta and passed and not _OPS[self.op](value, self.threshold):
                text += " - worse than the gate, but within sentence noise"
        return text


def parse_gate(expr: str) -> Gate:
    """Parse ``metric op number[%]``.

    Raises:
        UsageError: malformed expression or unknown metric.
    """
    match = _PATTERN.match(expr)
    if not match:
        raise UsageError(f"gate {expr!r} is not 'METRIC OP NUMBER' (e.g. 'wer_delta <= 0.05', 'similarity_ref >= 0.6').")
    name, op, number, percent = match.groups()
    name = _ALIASES.get(name.lower(), name.lower())
    base = name[: -len("_delta")] if name.endswith("_delta") else name
    if base not in METRICS:
        known = ", ".join(sorted(METRICS)) + ", and each with _delta (similarity_delta = similarity_ref_delta)"
        raise UsageError(f"gate {expr!r}: unknown metric {name!r}. Known: {known}.")
    threshold = float(number) / (100.0 if percent else 1.0)
    return Gate(expr.strip(), name, op, threshold)


def parse_gates(exprs: Sequence[str], overrides: Sequence[str] = ()) -> list[Gate]:
    """The suite's gates with per-run overrides: an override replaces every suite gate on the same metric."""
    suite = [parse_gate(e) for e in exprs]
    extra = [parse_gate(e) for e in overrides]
    replaced = {g.metric for g in extra}
    return [g for g in suite if g.metric not in replaced] + extra


def _bootstrap(metric: str, cand: SentenceSamples, base: SentenceSamples, rounds: int, seed: int) -> tuple[float, float]:
    n = len(cand.wer)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(rounds, n))
    diffs = corpus_metric(metric, cand, idx) - corpus_metric(metric, base, idx)
    diffs = diffs[np.isfinite(diffs)]
    if diffs.size == 0:
        return (float("nan"), float("nan"))
    return float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))


def evaluate_gates(gates: Sequence[Gate], candidate: SentenceSamples, base: SentenceSamples | None,
                   *, rounds: int = 2000, seed: int = 0) -> list[GateResult]:
    """Judge every gate. A difference gate without a base fails with a message saying so."""
    results = []
    for gate in gates:
        if gate.is_delta:
            if base is None:
                results.append(GateResult(gate.expr, gate.metric, float("nan"), None, False,
                                          f"{gate.metric}: needs a base model (--base) to compare with"))
                continue
            value = float(corpus_metric(gate.base_metric, candidate) - corpus_metric(gate.base_metric, base))
            ci = _bootstrap(gate.base_metric, candidate, base, rounds, seed) if len(candidate.wer) > 1 else None
            ci = ci if ci and np.isfinite(ci[0]) else None
        else:
            value = float(corpus_metric(gate.metric, candidate))
            ci = None
        passed = not gate.fails(value, ci)
        results.append(GateResult(gate.expr, gate.metric, value, ci, passed, gate.message(value, ci, passed)))
    return results


def metric_values(samples: SentenceSamples) -> Mapping[str, float]:
    """Every absolute metric of one model."""
    return {name: float(corpus_metric(name, samples)) for name in METRICS}
