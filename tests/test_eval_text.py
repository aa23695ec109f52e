"""Normalisation and WER/CER counting (pure text, fast)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xtts_qa.evaluation.metrics import EditCounts, score_text
from xtts_qa.evaluation.normalize import normaliser_for


@pytest.mark.parametrize(
    ("written", "heard"),
    [
        ("The train leaves at seven.", "the train leaves at 7"),
        ("On the sixth of May", "on the 6th of may"),
        ("Twenty five apples", "25 apples"),
        ("Dr. Smith met Mr. Jones", "doctor smith met mister jones"),
        ("It's late; we can't WAIT!", "it is late we can not wait"),
        ("Hello, world?!", "HELLO WORLD"),
    ],
)
def test_english_normaliser_makes_equivalent_spellings_equal(written: str, heard: str) -> None:
    norm = normaliser_for("en")
    score = score_text(written, heard, norm)
    assert score.wer == 0.0, (norm(written), norm(heard))
    assert "whisper-english" in norm.name


def test_numbers_come_out_as_digits_consistently() -> None:
    norm = normaliser_for("en")
    assert norm("three hundred passengers") == norm("300 passengers") == "300 passengers"


def test_cjk_is_scored_on_characters() -> None:
    zh = normaliser_for("zh-cn")
    assert zh.by_character and "characters" in zh.name
    assert zh.tokens("图书馆，开门。") == ["图", "书", "馆", "开", "门"]
    score = score_text("图书馆每天早上九点开门。", "图书馆每天早上十点开门", zh)
    assert score.words == EditCounts(substitutions=1, hits=10)
    assert score.wer == pytest.approx(1 / 11)
    assert score.cer == pytest.approx(1 / 11)
    assert normaliser_for("ja").by_character and normaliser_for("ko").by_character


def test_basic_normaliser_keeps_letters_of_other_languages() -> None:
    assert normaliser_for("de").tokens("Größe, Straße!") == ["größe", "straße"]
    assert normaliser_for("fr")("Ça va? Très BIEN.") == "ça va très bien"
    # Whisper's basic normaliser would split Devanagari words at their vowel signs
    assert normaliser_for("hi").tokens("नमस्ते दुनिया।") == ["नमस्ते", "दुनिया"]


def test_edit_counts_are_summed_not_averaged() -> None:
    norm = normaliser_for("en")
    a = score_text("red green blue black", "red green blue black", norm).words
    b = score_text("alpha beta", "alpha gamma delta", norm).words
    assert a == EditCounts(hits=4)
    assert (b.substitutions, b.insertions, b.hits) == (1, 1, 1)
    total = a + b
    assert total.rate == pytest.approx(2 / 6)  # corpus WER
    assert (a.rate + b.rate) / 2 == pytest.approx(0.5)  # mean WER differs


def test_empty_sides() -> None:
    norm = normaliser_for("en")
    assert score_text("hello there", "", norm).words == EditCounts(deletions=2)
    assert score_text("hello there", "", norm).wer == 1.0
    assert score_text("hello there", "", norm).cer == 1.0
    assert score_text("", "", norm).wer == 0.0
    assert score_text("", "uh hello", norm).words == EditCounts(insertions=1)  # fillers are dropped


_words = st.text(
    alphabet=st.characters(codec="utf-8", categories=("Lu", "Ll", "Nd", "Zs", "Po")), min_size=0, max_size=60
)


@settings(max_examples=150, deadline=None)
@given(text=_words, language=st.sampled_from(["en", "de", "fr", "ru", "zh-cn", "ja", "hi"]))
def test_text_against_itself_scores_zero(text: str, language: str) -> None:
    score = score_text(text, text, normaliser_for(language))
    assert score.wer == 0.0 and score.cer == 0.0


@settings(max_examples=100, deadline=None)
@given(
    text=st.text(alphabet="abcdefgh ", min_size=1, max_size=40), extra=st.text(alphabet="xyz", min_size=1, max_size=5)
)
def test_an_inserted_word_is_one_insertion(text: str, extra: str) -> None:
    words = text.split()
    score = score_text(text, " ".join(words + [extra]), normaliser_for("en"))
    assert score.words.errors == 1
    assert score.wer == (pytest.approx(1 / len(words)) if words else 1.0)


@settings(max_examples=100, deadline=None)
@given(text=_words)
def test_basic_normalising_twice_changes_nothing(text: str) -> None:
    # not asserted for English: Whisper's number normaliser is not idempotent ("O1" -> "0 one" -> "one"), which
    # does not matter for scoring since both sides go through it exactly once
    for lang in ("es", "ru", "zh-cn", "hi"):
        norm = normaliser_for(lang)
        assert norm(norm(text)) == norm(text)
