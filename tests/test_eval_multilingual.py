"""Multilingual scoring offline: espeak-ng Spanish, German, French and Mandarin through the default ASR (the bundled
multilingual Whisper base), with number and script normalisation, language identification, and a suite run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from eval_helpers import espeak, transcriber

from xtts_qa.evaluation.metrics import score_text
from xtts_qa.evaluation.normalize import normaliser_for
from xtts_qa.evaluation.runner import EvalOptions, run_eval

CASES = {
    "es": ("es", "La biblioteca abre a las nueve de la mañana."),
    "de": ("de", "Die Bibliothek öffnet jeden Morgen um neun Uhr."),
    "fr": ("fr", "La bibliothèque ouvre à neuf heures chaque matin."),
    "zh-cn": ("cmn", "图书馆每天早上九点开门。"),
}


@pytest.mark.parametrize(("language", "text", "heard"), [
    ("es", "abre a las nueve", "Abre a las 9."),
    ("es", "veinticinco personas", "25 personas"),
    ("de", "um neun Uhr", "Um 9 Uhr."),
    ("fr", "à neuf heures", "À 9 heures."),
    ("it", "alle nove", "alle 9"),
    ("zh-cn", "圖書館每天早上九點開門", "图书馆每天早上9点开门。"),  # Traditional vs Simplified, and digits
    ("ja", "毎朝九時に開きます", "毎朝9時に開きます"),
    ("ru", "в девять часов", "в 9 часов"),
    ("en", "It is nine o'clock, the colour is grey", "it's 9 o'clock, the color is gray"),
])
def test_numbers_and_scripts_normalise_to_the_same_words(language: str, text: str, heard: str) -> None:
    score = score_text(text, heard, normaliser_for(language))
    assert score.wer == 0 and score.cer == 0, (score.reference, score.hypothesis)


def test_normalisation_rules_are_named() -> None:
    assert "text2num" in normaliser_for("es").name and "opencc" in normaliser_for("zh-cn").name
    assert "num2words" in normaliser_for("ru").name and "spelling map" in normaliser_for("en").name


@pytest.fixture(scope="module")
def heard(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, object]]:
    folder = tmp_path_factory.mktemp("multilingual")
    asr = transcriber()
    assert asr.is_multilingual  # read from the loaded model
    out = {}
    for language, (voice, text) in CASES.items():
        wav = espeak(folder / f"{language}.wav", text, voice)
        out[language] = (asr.transcribe(wav, language), asr.identify_language(wav, language))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("language", list(CASES))
def test_default_asr_transcribes_and_identifies_each_language(heard, language: str) -> None:
    text = CASES[language][1]
    transcript, lid = heard[language]
    score = score_text(text, transcript, normaliser_for(language))
    limit = 0.5 if language == "zh-cn" else 0.35  # espeak-ng's Mandarin is rough; CER for zh
    assert score.wer <= limit, (transcript, score.reference, score.hypothesis)
    assert lid is not None and lid.detected == language.split("-")[0], lid


@pytest.mark.slow
def test_english_only_asr_is_known_from_the_model_itself() -> None:
    from xtts_qa.evaluation.asr import AsrOptions, Transcriber

    assert Transcriber(AsrOptions(model="tiny.en", workers=1)).is_multilingual is False


@pytest.mark.slow
def test_a_multilingual_suite_scores_offline_without_a_base(tmp_path: Path) -> None:
    suite = tmp_path / "ml.yaml"
    suite.write_text(yaml.safe_dump({
        "name": "ml", "seed": 3, "gates": ["cer <= 0.4", "wrong_language_count <= 0", "noise_count <= 0", "cer_delta <= 0.03"],
        "speakers": {"es": {"espeak": {"voice": "es", "text": "Esta es una breve grabación de mi voz, hecha para que el modelo aprenda."}}},
        "sentences": [{"id": lang, "language": lang, "speaker": "es", "text": text} for lang, (_, text) in CASES.items()
                      if lang != "zh-cn"]}, allow_unicode=True))
    report = run_eval("espeak", None, suite, EvalOptions(backend="command", progress=False))
    assert report.exit_code == 0, (report.headline, [(s.id, s.transcript, s.flags) for s in report.sentences])
    assert {s.detected_language for s in report.sentences} == {"es", "de", "fr"}
    assert next(g for g in report.gates if g.metric == "cer_delta").outcome == "not-applicable"
    assert set(report.provenance["normalisers"]) == {"es", "de", "fr"}
