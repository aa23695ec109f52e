"""Gate expressions: parsing, floors, one-sided bootstrap on differences, overrides."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xtts_qa.errors import UsageError
from xtts_qa.evaluation.gates import SentenceSamples, corpus_metric, evaluate_gates, parse_gate, parse_gates


def samples(wer_errors: list[int], words: int = 10, sim: float = 0.8, sims: list[float] | None = None) -> SentenceSamples:
    n = len(wer_errors)
    errors = np.array(wer_errors, dtype=float)
    total = np.full(n, float(words))
    return SentenceSamples(
        word_errors=errors, word_total=total, char_errors=errors * 3, char_total=total * 5, wer=errors / total,
        similarity_ref=np.array(sims if sims is not None else [sim] * n, dtype=float), similarity_base=np.full(n, np.nan),
        synth_seconds=np.ones(n), audio_seconds=np.full(n, 4.0), flagged=np.zeros(n),
    )


def test_parse_gate_forms() -> None:
    g = parse_gate("wer_delta <= 0.05")
    assert (g.metric, g.op, g.threshold, g.is_delta, g.base_metric) == ("wer_delta", "<=", 0.05, True, "wer")
    assert parse_gate("similarity_delta>=-0.05").metric == "similarity_ref_delta"
    assert parse_gate("wer <= 5%").threshold == pytest.approx(0.05)
    assert parse_gate("  CER < 1e-1 ").threshold == pytest.approx(0.1)


@pytest.mark.parametrize("expr", ["wer", "wer <= ", "wer == 0.1", "wer <= abc", "loudness <= 3", "wer_delta_delta <= 1"])
def test_bad_gates_are_usage_errors(expr: str) -> None:
    with pytest.raises(UsageError, match="gate"):
        parse_gate(expr)


def test_overrides_replace_the_suite_gate_on_the_same_metric() -> None:
    gates = parse_gates(["wer <= 0.5", "wer_delta <= 0.05"], ["wer <= 0.2", "rtf <= 3"])
    assert [g.expr for g in gates] == ["wer_delta <= 0.05", "wer <= 0.2", "rtf <= 3"]


def test_floor_is_judged_on_the_point_value() -> None:
    cand = samples([6, 6, 6, 6])
    (result,) = evaluate_gates([parse_gate("wer <= 0.5")], cand, None)
    assert not result.passed and result.value == pytest.approx(0.6) and result.ci is None
    assert "FAILED" in result.message


def test_difference_gate_without_base_fails_and_says_why() -> None:
    (result,) = evaluate_gates([parse_gate("wer_delta <= 0.05")], samples([1, 1]), None)
    assert not result.passed and "base" in result.message


def test_small_noisy_regression_passes_but_a_consistent_one_fails() -> None:
    base = samples([1, 0, 2, 1, 0, 1, 2, 0])
    noisy = samples([1, 0, 2, 1, 0, 1, 2, 1])  # one extra error in one sentence: +1.25 points, inside the noise
    consistent = samples([3, 2, 4, 3, 2, 3, 4, 2])  # two extra errors in every sentence
    gate = [parse_gate("wer_delta <= 0.0")]
    (noise_result,) = evaluate_gates(gate, noisy, base, seed=1)
    (real_result,) = evaluate_gates(gate, consistent, base, seed=1)
    assert noise_result.value > 0 and noise_result.passed and "within sentence noise" in noise_result.message
    assert noise_result.ci[0] <= 0.0 <= noise_result.ci[1]
    assert not real_result.passed and real_result.ci[0] > 0


def test_similarity_gate_is_one_sided() -> None:
    base = samples([0] * 6, sims=[0.8] * 6)
    better = samples([0] * 6, sims=[0.95] * 6)
    worse = samples([0] * 6, sims=[0.6, 0.62, 0.58, 0.61, 0.6, 0.59])
    gate = [parse_gate("similarity_delta >= -0.05")]
    assert evaluate_gates(gate, better, base)[0].passed
    worse_result = evaluate_gates(gate, worse, base)[0]
    assert not worse_result.passed and worse_result.ci[1] < -0.05


def test_bootstrap_is_seeded() -> None:
    base, cand = samples([1, 0, 2, 1, 3]), samples([2, 0, 1, 3, 3])
    gate = [parse_gate("wer_delta <= 0.01")]
    assert evaluate_gates(gate, cand, base, seed=7)[0].ci == evaluate_gates(gate, cand, base, seed=7)[0].ci


def test_corpus_metrics_from_counts() -> None:
    s = samples([1, 9], words=10)
    s2 = SentenceSamples(**{**s.__dict__, "word_total": np.array([10.0, 30.0])})
    assert corpus_metric("wer", s2) == pytest.approx(10 / 40)
    assert corpus_metric("mean_wer", s) == pytest.approx(0.5)
    assert corpus_metric("hallucination_rate", s) == pytest.approx(0.5)
    assert corpus_metric("rtf", s) == pytest.approx(0.25)


@settings(max_examples=60, deadline=None)
@given(errors=st.lists(st.integers(0, 10), min_size=2, max_size=12))
def test_a_model_against_itself_passes_every_difference_gate(errors: list[int]) -> None:
    s = samples(errors)
    gates = parse_gates(["wer_delta <= 0", "cer_delta <= 0", "similarity_delta >= 0", "hallucination_delta <= 0"])
    results = evaluate_gates(gates, s, s, rounds=200)
    assert all(r.passed and r.value == 0 for r in results)
