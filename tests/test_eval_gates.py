"""Gate expressions: one parser, four outcomes, the exit-code policy, minimum detectable effect, paired gates."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xtts_qa.errors import UsageError
from xtts_qa.evaluation.gates import SentenceSamples, corpus_metric, evaluate_gates, parse_gate, parse_gates
from xtts_qa.evaluation.registry import FLAGS, METRICS, flag_metric


def samples(
    wer_errors: list[int],
    words: int = 10,
    sim: float = 0.8,
    sims: list[float] | None = None,
    flags: dict[str, list[int]] | None = None,
    synth: list[float] | None = None,
) -> SentenceSamples:
    n = len(wer_errors)
    errors = np.array(wer_errors, dtype=float)
    total = np.full(n, float(words))
    return SentenceSamples(
        word_errors=errors,
        word_total=total,
        char_errors=errors * 3,
        char_total=total * 5,
        wer=errors / total,
        similarity_ref=np.array(sims if sims is not None else [sim] * n, dtype=float),
        similarity_base=np.full(n, np.nan),
        synth_seconds=np.array(synth if synth is not None else [1.0] * n, dtype=float),
        audio_seconds=np.full(n, 4.0),
        loudness=np.full(n, -21.0),
        flags={k: np.array(v, dtype=float) for k, v in (flags or {}).items()},
    )


def test_parse_gate_forms() -> None:
    g = parse_gate("wer_delta <= 0.05")
    assert (g.metric, g.op, g.threshold, g.is_delta, g.base_metric) == ("wer_delta", "<=", 0.05, True, "wer")
    assert parse_gate("similarity_delta>=-0.05").metric == "similarity_ref_delta"
    assert parse_gate("wer <= 5%").threshold == pytest.approx(0.05)
    assert parse_gate("  CER < 1e-1 ").threshold == pytest.approx(0.1)
    assert parse_gate("hallucination_rate <= 0.3").metric == "high_wer_rate"  # the old name still parses
    assert parse_gate("health.warning <= 3").is_health
    assert parse_gate("garbled_count <= 0").metric == "garbled_count"


def test_every_flag_has_a_count_metric_and_an_explanation() -> None:
    for flag, why in FLAGS.items():
        assert flag_metric(flag) in METRICS and why and "\n" not in why
    assert all(m.direction in ("lower", "higher") and m.label for m in METRICS.values())


@pytest.mark.parametrize(
    "expr",
    [
        "wer",
        "wer <= ",
        "wer == 0.1",
        "wer <= abc",
        "loudnes <= 3",
        "wer_delta_delta <= 1",
        "health.errors <= 0",
        "wer_regressions_delta <= 0",
    ],
)
def test_bad_gates_are_usage_errors(expr: str) -> None:
    with pytest.raises(UsageError, match="gate"):
        parse_gate(expr)


def test_the_reporting_side_uses_the_same_parser() -> None:
    from xtts_qa.reporting import gate as reporting_gate

    assert reporting_gate.parse_gate is parse_gate


def test_overrides_replace_the_suite_gate_on_the_same_metric() -> None:
    gates = parse_gates(["wer <= 0.5", "wer_delta <= 0.05"], ["wer <= 0.2", "rtf <= 3"])
    assert [g.expr for g in gates] == ["wer_delta <= 0.05", "wer <= 0.2", "rtf <= 3"]


def test_floor_is_judged_on_the_point_value() -> None:
    cand = samples([6, 6, 6, 6])
    (result,) = evaluate_gates([parse_gate("wer <= 0.5")], cand, None)
    assert result.outcome == "fail" and not result.passed and result.value == pytest.approx(0.6) and result.ci is None


def test_gates_without_a_base_are_not_applicable_and_do_not_fail() -> None:
    gates = parse_gates(["wer_delta <= 0.05", "wer_regressions <= 0", "wer <= 0.5"])
    results = evaluate_gates(gates, samples([1, 1]), None)
    assert [r.outcome for r in results] == ["not-applicable", "not-applicable", "pass"]
    assert all(r.passed for r in results) and "--base" in results[0].message


def test_delta_outcomes_pass_fail_inconclusive() -> None:
    base = samples([1, 0, 2, 1, 0, 1, 2, 0])
    noisy = samples([1, 0, 2, 1, 0, 1, 2, 1])  # one extra error in one sentence: inside the noise
    consistent = samples([3, 2, 4, 3, 2, 3, 4, 2])  # two extra errors in every sentence
    gate = [parse_gate("wer_delta <= 0.0")]
    (noise_result,) = evaluate_gates(gate, noisy, base, seed=1)
    (real_result,) = evaluate_gates(gate, consistent, base, seed=1)
    (same,) = evaluate_gates(gate, base, base, seed=1)
    assert noise_result.outcome == "inconclusive" and noise_result.passed and "cannot tell" in noise_result.message
    assert noise_result.ci[0] <= 0.0 <= noise_result.ci[1]
    (strict,) = evaluate_gates(gate, noisy, base, seed=1, strict=True)
    assert strict.outcome == "inconclusive" and not strict.passed  # --strict: inconclusive fails
    assert real_result.outcome == "fail" and real_result.ci[0] > 0
    assert same.outcome == "pass"


def test_minimum_detectable_effect_shrinks_with_suite_size() -> None:
    rng = np.random.default_rng(0)
    mdes = []
    for n in (10, 80):
        errs = rng.integers(0, 4, size=n).tolist()
        (r,) = evaluate_gates([parse_gate("wer_delta <= 0.05")], samples(errs), samples(errs), seed=3)
        assert r.outcome == "pass" and r.mde is not None and r.mde > 0 and "smallest detectable" in r.message
        mdes.append(r.mde)
    assert mdes[1] < mdes[0] / 2  # about 1/sqrt(8)
    assert (
        "too small"
        in evaluate_gates(
            [parse_gate("wer_delta <= 0.01")],
            samples([0, 3, 1, 4, 0, 2, 5, 1, 0, 3]),
            samples([0, 3, 1, 4, 0, 2, 5, 1, 0, 3]),
        )[0].message
    )


def test_one_garbled_sentence_in_ten_fails_the_paired_gate_but_not_the_corpus_delta() -> None:
    base = samples([1, 0, 1, 0, 1, 0, 1, 0, 1, 0])
    cand = samples([1, 0, 1, 0, 9, 0, 1, 0, 1, 0])  # one sentence mostly wrong
    results = evaluate_gates(parse_gates(["wer_delta <= 0.05", "wer_regressions <= 0"]), cand, base, seed=0)
    assert results[0].outcome in ("inconclusive", "pass")  # the corpus delta cannot tell at n=10 ...
    assert results[1].outcome == "fail" and results[1].value == 1  # ... the per-sentence gate can
    small = samples([1, 0, 1, 0, 3, 0, 1, 0, 1, 0])  # two more errors: below the 3-word minimum
    assert evaluate_gates([parse_gate("wer_regressions <= 0")], small, base)[0].outcome == "pass"


def test_flag_count_gates_read_the_flags() -> None:
    cand = samples([0, 0, 0], flags={"long-pause": [0, 1, 0], "garbled": [0, 0, 0]})
    results = evaluate_gates(
        parse_gates(["long_pause_count <= 0", "garbled_count <= 0", "flag_rate <= 0.5"]), cand, None
    )
    assert [r.outcome for r in results] == ["fail", "pass", "pass"]
    assert results[0].value == 1


def test_unmeasurable_similarity_never_passes_a_delta_gate() -> None:
    base = samples([0] * 4, sims=[0.8] * 4)
    deaf = samples([0] * 4, sims=[np.nan] * 4)
    (r,) = evaluate_gates([parse_gate("similarity_delta >= -0.05")], deaf, base)
    assert r.outcome == "fail" and "could not be measured" in r.message
    (both,) = evaluate_gates([parse_gate("similarity_delta >= -0.05")], deaf, deaf)
    assert both.outcome == "inconclusive" and both.outcome != "pass"
    (floor,) = evaluate_gates([parse_gate("similarity_ref >= 0.5")], deaf, None)
    assert floor.outcome == "fail"


def test_rtf_of_cached_clips_is_not_applicable() -> None:
    cached = samples([0, 0], synth=[np.nan, np.nan])
    (r,) = evaluate_gates([parse_gate("rtf <= 1")], cached, None)
    assert r.outcome == "not-applicable" and "synthesised in this run" in r.message
    half = samples([0, 0], synth=[2.0, np.nan])
    assert corpus_metric("rtf", half) == pytest.approx(0.5)  # only the clip timed in this run


def test_bootstrap_is_seeded() -> None:
    base, cand = samples([1, 0, 2, 1, 3]), samples([2, 0, 1, 3, 3])
    gate = [parse_gate("wer_delta <= 0.01")]
    assert evaluate_gates(gate, cand, base, seed=7)[0].ci == evaluate_gates(gate, cand, base, seed=7)[0].ci


def test_corpus_metrics_from_counts() -> None:
    s = samples([1, 9], words=10)
    s2 = SentenceSamples(**{**s.__dict__, "word_total": np.array([10.0, 30.0])})
    assert corpus_metric("wer", s2) == pytest.approx(10 / 40)
    assert corpus_metric("mean_wer", s) == pytest.approx(0.5)
    assert corpus_metric("high_wer_rate", s) == pytest.approx(0.5)
    assert corpus_metric("rtf", s) == pytest.approx(0.25)
    assert corpus_metric("loudness", s) == pytest.approx(-21.0)


@settings(max_examples=60, deadline=None)
@given(errors=st.lists(st.integers(0, 10), min_size=2, max_size=12))
def test_a_model_against_itself_passes_every_difference_gate(errors: list[int]) -> None:
    s = samples(errors)
    gates = parse_gates(
        [
            "wer_delta <= 0",
            "cer_delta <= 0",
            "similarity_delta >= 0",
            "hallucination_delta <= 0",
            "wer_regressions <= 0",
        ]
    )
    results = evaluate_gates(gates, s, s, rounds=200)
    assert all(r.outcome == "pass" and r.value == 0 for r in results)
