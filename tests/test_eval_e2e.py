"""End to end: real espeak-ng, real tiny XTTS models built with coqui-tts, real faster-whisper and resemblyzer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
import torch
import yaml

from xtts_qa.cli import main
from xtts_qa.evaluation.registry import FLAGS, METRICS
from xtts_qa.evaluation.runner import EvalOptions, run_eval
from xtts_qa.evaluation.synth import SynthOptions

pytestmark = pytest.mark.slow

_NUM = {"type": ["number", "null"]}
_METRICS = {
    "type": "object",
    "required": [k for k in METRICS if not METRICS[k].paired],
    "properties": {k: _NUM for k in METRICS},
}
#: the JSON contract the reporting side builds on
CONTRACT = {
    "type": "object",
    "required": [
        "schema_version",
        "kind",
        "candidate",
        "base",
        "suite",
        "exit_code",
        "passed",
        "strict",
        "headline",
        "flags",
        "gates",
        "metrics",
        "sentences",
        "provenance",
    ],
    "properties": {
        "schema_version": {"const": 2},
        "kind": {"const": "eval"},
        "headline": {"type": "string"},
        "strict": {"type": "boolean"},
        "candidate": {"type": "string"},
        "base": {"type": ["string", "null"]},
        "suite": {"type": "string"},
        "exit_code": {"enum": [0, 1]},
        "passed": {"type": "boolean"},
        "gates": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["expr", "metric", "value", "ci", "outcome", "passed", "mde", "message"],
                "properties": {
                    "expr": {"type": "string"},
                    "metric": {"type": "string"},
                    "value": _NUM,
                    "ci": {"oneOf": [{"type": "null"}, {"type": "array", "items": _NUM, "minItems": 2, "maxItems": 2}]},
                    "outcome": {"enum": ["pass", "fail", "inconclusive", "not-applicable"]},
                    "passed": {"type": "boolean"},
                    "message": {"type": "string"},
                },
            },
        },
        "metrics": {
            "type": "object",
            "required": ["candidate", "base"],
            "properties": {"candidate": _METRICS, "base": {"oneOf": [{"type": "null"}, _METRICS]}},
        },
        "sentences": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "id",
                    "language",
                    "text",
                    "transcript",
                    "wer",
                    "cer",
                    "similarity_ref",
                    "similarity_base",
                    "duration_s",
                    "rtf",
                    "flags",
                    "verdict",
                    "audio",
                    "base_audio",
                    "base_transcript",
                    "base_wer",
                    "reference_audio",
                    "loudness",
                    "cached",
                    "explanations",
                ],
                "properties": {
                    "verdict": {"enum": ["pass", "fail"]},
                    "flags": {"type": "array", "items": {"enum": list(FLAGS)}},
                    "audio": {"type": ["string", "null"]},
                    "base_audio": {"type": ["string", "null"]},
                    "reference_audio": {"type": ["string", "null"]},
                    "wer": _NUM,
                    "base_wer": _NUM,
                },
            },
        },
        "provenance": {
            "type": "object",
            "required": [
                "candidate_hash",
                "base_hash",
                "versions",
                "asr_model",
                "speaker_model",
                "normaliser",
                "seeds",
                "device",
            ],
        },
    },
}


def test_espeak_passes_the_smoke_suite_against_itself(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "-q",
            "eval",
            "espeak",
            "--base",
            "espeak",
            "--backend",
            "command",
            "--suite",
            "smoke-en",
            "--json",
            "--out",
            str(tmp_path),
        ]
    )
    report = json.loads(capsys.readouterr().out)
    jsonschema.validate(report, CONTRACT)
    assert code == 0 and report["passed"] and report["exit_code"] == 0
    assert len(report["sentences"]) == 10
    cand = report["metrics"]["candidate"]
    assert cand["wer"] < 0.5 and cand["similarity_ref"] > 0.7 and cand["similarity_base"] > 0.99
    assert report["metrics"]["base"]["wer"] == cand["wer"]
    for s in report["sentences"]:
        assert Path(s["audio"]).is_file() and Path(s["audio"]).parent.parent == tmp_path
        assert Path(s["reference_audio"]).is_file() and s["base_transcript"] == s["transcript"]
    by_id = {s["id"]: s for s in report["sentences"]}
    assert by_id["question"]["wer"] < 0.3 and by_id["long"]["wer"] < 0.3
    assert (
        "whisper-english" in report["provenance"]["normaliser"] and "whisper-base" in report["provenance"]["asr_model"]
    )
    assert all(g["outcome"] == "pass" for g in report["gates"]), report["gates"]
    assert all(s["rtf"] is not None or s["cached"] for s in report["sentences"])
    for name in ("summary.json", "sentences.jsonl", "report.html"):  # the same run record as the pytest plugin writes
        assert (tmp_path / name).is_file()
    assert (tmp_path.parent / "history.sqlite").is_file()
    assert report["provenance"]["candidate_hash"] == report["provenance"]["base_hash"]
    assert json.loads((tmp_path / "report.json").read_text())["metrics"] == report["metrics"]

    # a rerun is served from the cache: nothing synthesised or transcribed again
    again = run_eval("espeak", "espeak", "smoke-en", EvalOptions(backend="command", progress=False))
    cache = again.provenance["cache"]
    assert cache["audio_misses"] == 0 and cache["transcript_misses"] == 0 and cache["audio_hits"] == 20
    # cached audio was not synthesised in this run: its RTF is not reported as if it were
    assert again.metrics.rtf is None and all(s.rtf is None and s.cached for s in again.sentences)
    assert "cached" in again.provenance["rtf_source"]
    assert {k: v for k, v in again.metrics.to_dict().items() if k != "rtf"} == {
        k: v for k, v in report["metrics"]["candidate"].items() if k != "rtf"
    }

    # a stricter gate on the command line fails the run: exit code 1
    assert main(["-q", "eval", "espeak", "--base", "espeak", "--backend", "command", "--gate", "wer <= 0.01"]) == 1
    text = capsys.readouterr().out
    assert "FAILED: wer <= 0.01" in text and "money" in text


def test_readme_command_backend_example_without_base_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "-q",
            "eval",
            "espeak",
            "--backend",
            "command",
            "--command",
            "espeak-ng -v {voice} -w {out} {text}",
            "--suite",
            "smoke-en",
            "--out",
            str(tmp_path / "run"),
            "--history",
            str(tmp_path / "h.sqlite"),
        ]
    )
    text = capsys.readouterr().out
    assert code == 0, text
    assert "not applicable" in text and "no base model" in text and text.splitlines()[0].startswith("PASSED")
    from xtts_qa.reporting.history import HistoryStore

    assert HistoryStore(tmp_path / "h.sqlite").count() == 1
    import html as html_lib
    import json as json_lib

    page = html_lib.unescape((tmp_path / "run" / "report.html").read_text())
    summary = json_lib.loads((tmp_path / "run" / "summary.json").read_text())
    report = summary["evals"][0]["report"]
    assert report["headline"] in page  # the top of the page says in one sentence what is wrong
    for flag, why in report["flags"].items():  # a legend entry for every flag raised
        assert why in page and flag in page
    assert "not-applicable" in page and "--strict" in page
    rows = (tmp_path / "run" / "sentences.jsonl").read_text().splitlines()
    assert len(rows) == 10


def test_a_different_voice_fails_the_similarity_gate() -> None:
    options = EvalOptions(
        backend="command",
        command="espeak-ng -v {model} -w {out} {text}",
        progress=False,
        limit=4,
        gates=("similarity_delta >= -0.02",),
    )
    report = run_eval("en-us+f3", "en-us", "smoke-en", options)
    gate = next(g for g in report.gates if g.metric == "similarity_ref_delta")
    assert report.metrics.similarity_base is not None and report.metrics.similarity_base < 0.95
    assert report.base_metrics.similarity_ref > report.metrics.similarity_ref
    assert not gate.passed and report.exit_code == 1


def _legacy_checkpoint(folder: Path) -> None:
    """Re-save model.pth the way early XTTS releases did: with a pickled XttsConfig object inside."""
    from TTS.tts.configs.xtts_config import XttsConfig

    config = XttsConfig()
    config.load_json(str(folder / "config.json"))
    state = torch.load(folder / "model.pth", weights_only=True)["model"]
    torch.save({"model": state, "config": config}, folder / "model.pth")


def test_tiny_xtts_models_fail_the_floors_and_the_base_is_reused(tmp_path: Path) -> None:
    from xtts_qa.demo.scenarios import Family

    family = Family(tmp_path / "family")
    candidate = family.folder("finetuned", family.finetune(3))
    _legacy_checkpoint(candidate.folder)
    before = (candidate.model.read_bytes(), candidate.model.stat().st_mtime_ns)
    options = EvalOptions(progress=False, limit=2, synth=SynthOptions(max_audio_tokens=40), device="auto")

    first = run_eval(family.base.folder, family.base.folder, "smoke-en", options)
    assert not first.passed and first.exit_code == 1
    failed = {g.metric for g in first.failed_gates}
    assert {"wer", "high_wer_rate"} <= failed  # gibberish by construction fails the absolute floors
    assert first.metrics.wer > 0.8 and all(s.verdict == "fail" for s in first.sentences)
    assert first.provenance["cache"]["audio_hits"] == 2  # base == candidate: synthesised once
    assert first.provenance["device"].startswith("cuda" if torch.cuda.is_available() else "cpu")
    assert all("too-long" in s.flags for s in first.sentences)  # random weights never emit the stop code: the cap

    second = run_eval(candidate.folder, family.base.folder, "smoke-en", options)
    cache = second.provenance["cache"]
    assert cache["audio_misses"] == 2 and cache["audio_hits"] == 2  # changed checkpoint: new audio; base: reused
    assert second.provenance["candidate_hash"] != second.provenance["base_hash"]
    assert not second.passed and {"wer"} <= {g.metric for g in second.failed_gates}
    # coqui-tts re-saves legacy checkpoints in place; the user's file must be untouched
    assert (candidate.model.read_bytes(), candidate.model.stat().st_mtime_ns) == before


def test_cannot_run_is_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # English-only is read from the loaded model itself
    assert (
        main(["-q", "eval", "espeak", "--backend", "command", "--suite", "multilingual", "--asr-model", "tiny.en"]) == 2
    )
    assert "English-only" in capsys.readouterr().err

    assert main(["-q", "eval", "espeak", "--backend", "command", "--command", "espeak-ng {text}"]) == 2
    assert "{out}" in capsys.readouterr().err

    suite = tmp_path / "suite.yaml"
    suite.write_text(
        yaml.safe_dump({"name": "x", "speakers": {"me": "me.wav"}, "sentences": [{"id": "a", "text": "Hello there."}]})
    )
    assert main(["-q", "eval", "espeak", "--backend", "command", "--suite", str(suite)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "me.wav") in err and "Fix:" in err

    assert main(["-q", "eval", str(tmp_path / "no-model"), "--suite", "smoke-en"]) == 2
    assert "does not exist" in capsys.readouterr().err

    assert main(["-q", "eval", "espeak", "--backend", "command", "--gate", "loudnes >= 3"]) == 2
    assert "unknown metric" in capsys.readouterr().err

    assert main(["-q", "eval", "espeak", "--backend", "command", "--asr-model", "large-v3"]) == 2
    assert "not available offline" in capsys.readouterr().err
    assert shutil.which("espeak-ng")
