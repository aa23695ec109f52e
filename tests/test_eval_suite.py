"""Suite files: schema validation with clear errors, and the committed suites."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from xtts_qa.errors import InputError, UsageError
from xtts_qa.evaluation.gates import parse_gates
from xtts_qa.evaluation.suite import LANGUAGES, builtin_suites, load_suite

_GOOD = {
    "name": "t",
    "language": "en",
    "seed": 3,
    "reference": {"espeak": {"voice": "en-us", "text": "A reference sentence."}},
    "sentences": [{"id": "a", "text": "Hello."}, {"id": "b", "text": "Bonjour.", "language": "fr"}],
}


def write(tmp_path: Path, data: object, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def test_good_suite(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, _GOOD))
    assert [s.id for s in suite.sentences] == ["a", "b"]
    assert suite.sentences[1].language == "fr" and suite.sentences[0].speaker == "default"
    assert suite.speakers["default"].espeak_voice == "en-us"
    assert suite.seed_for(suite.sentences[0]) != suite.seed_for(suite.sentences[1])
    assert suite.seed_for(suite.sentences[0]) == load_suite(write(tmp_path, _GOOD, "again.yaml")).seed_for(
        suite.sentences[0]
    )


def test_wav_reference_paths_are_relative_to_the_suite(tmp_path: Path) -> None:
    data = {**_GOOD, "reference": None, "speakers": {"me": "refs/me.wav"}}
    del data["reference"]
    suite = load_suite(write(tmp_path, data))
    assert suite.speakers["me"].path == (tmp_path / "refs" / "me.wav").resolve()


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"sentences": []}, "sentences"),
        ({"language": "xx"}, "language"),
        ({"sentences": [{"id": "a"}]}, "'text' is a required property"),
        ({"colour": "red"}, "colour"),
        ({"sentences": [{"id": "a", "text": "x", "speaker": "ghost"}]}, "ghost"),
        ({"sentences": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]}, "twice"),
    ],
)
def test_schema_errors_name_the_file_and_the_problem(tmp_path: Path, change: dict, needle: str) -> None:
    path = write(tmp_path, {**_GOOD, **change})
    with pytest.raises(InputError) as info:
        load_suite(path)
    assert info.value.path == path and needle in str(info.value) and info.value.fix


def test_yaml_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nsentences: [\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_suite(path)


def test_unknown_suite_name_lists_the_known_ones() -> None:
    with pytest.raises(UsageError, match="smoke-en"):
        load_suite("no-such-suite")


def test_smoke_suite_covers_the_issue_list() -> None:
    suite = load_suite("smoke-en")
    ids = {s.id for s in suite.sentences}
    assert {"numbers", "date", "abbreviations", "question", "long", "one-word"} <= ids
    assert 8 <= len(suite.sentences) <= 12
    texts = {s.id: s.text for s in suite.sentences}
    assert texts["question"].endswith("?") and len(texts["one-word"].split()) == 1 and len(texts["long"].split()) > 20
    assert parse_gates(suite.gates)


def test_multilingual_suite_covers_xtts_languages() -> None:
    suite = load_suite("multilingual")
    assert suite.languages == sorted(LANGUAGES)
    assert all(spec.path is None for spec in suite.speakers.values())  # generated references: no audio in git
    assert parse_gates(suite.gates)


def test_committed_suites_are_small_text_files() -> None:
    folder = builtin_suites()
    assert sorted(p.name for p in folder.glob("*.yaml")) == ["multilingual.yaml", "smoke-en.yaml"]
    for path in folder.iterdir():
        assert path.suffix in (".yaml", ".yml", ".md"), path
        assert path.stat().st_size < 20_000
