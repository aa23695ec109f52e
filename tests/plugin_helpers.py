"""Helpers for the plugin, report and history tests: tiny real checkpoints, fixture eval reports, run records.

Eval reports are built here as plain ``EvalReport.to_dict()``-shaped dicts with real (tiny) wav files, so the
report, history and dashboard tests do not need synthesis or ASR.
"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path
from typing import Any

from xtts_qa.reporting import CheckEntry, EvalEntry, RunRecord
from xtts_qa.results import CheckReport, Finding, RuleResult, Severity, Status

#: the two scenarios the plugin tests run on: one healthy, one failing XQ401/XQ402
PLUGIN_SCENARIOS = ["finetune", "sequential-broken-dvae"]


def build_models(root: Path) -> dict[str, Path]:
    """Build (once per folder) the base, a healthy fine-tune and a broken sequential fine-tune."""
    from xtts_qa.demo.scenarios import build_family

    marker = root / ".plugin-models-complete"
    paths = {"base": root / "base", "finetune": root / "finetune", "broken": root / "sequential-broken-dvae"}
    if not marker.exists():
        build_family(root, names=PLUGIN_SCENARIOS)
        marker.write_text("ok")
    return paths


def write_tone(path: Path, freq: float = 440.0, seconds: float = 0.4, rate: int = 16000) -> Path:
    """A short sine tone as a 16-bit mono wav (playable in any browser)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * freq * i / rate))) for i in range(int(seconds * rate))
    )
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return path


def eval_report(
    audio_dir: Path | None,
    *,
    candidate: str = "/models/finetune",
    suite: str = "smoke",
    n: int = 3,
    wer: float = 0.1,
    base_wer: float = 0.08,
    failing: tuple[str, ...] = (),
    sim: float = 0.8,
    gates_pass: bool = True,
) -> dict[str, Any]:
    """An ``EvalReport.to_dict()``-shaped dict; with ``audio_dir`` every sentence gets candidate/base/reference wavs."""
    sentences = []
    reference = write_tone(audio_dir / "ref" / "narrator.wav", 220.0) if audio_dir else None
    for i in range(n):
        sid = f"s{i + 1}"
        bad = sid in failing
        cand = write_tone(audio_dir / "cand" / f"{sid}.wav", 330.0 + 20 * i) if audio_dir else None
        base = write_tone(audio_dir / "base" / f"{sid}.wav", 440.0 + 20 * i) if audio_dir else None
        sentences.append(
            {
                "id": sid,
                "language": "en",
                "text": f"Sentence number {i + 1} is here.",
                "transcript": "something else entirely" if bad else f"sentence number {i + 1} is here",
                "wer": 1.0 if bad else wer + 0.01 * i,
                "cer": 0.9 if bad else wer / 2,
                "similarity_ref": sim - 0.02 * i,
                "similarity_base": sim + 0.05,
                "duration_s": 1.5 + i,
                "rtf": 0.4,
                "flags": ["hallucination"] if bad else [],
                "verdict": "fail" if bad else "pass",
                "audio": str(cand) if cand else None,
                "base_audio": str(base) if base else None,
                "base_transcript": f"sentence number {i + 1} is here",
                "base_wer": base_wer,
                "reference_audio": str(reference) if reference else None,
            }
        )
    mean = sum(s["wer"] for s in sentences) / n
    cand_metrics = {
        "wer": mean,
        "cer": mean / 2,
        "mean_wer": mean,
        "high_wer_rate": len(failing) / n,
        "similarity_ref": sim,
        "similarity_base": sim + 0.05,
        "rtf": 0.4,
        "flag_rate": len(failing) / n,
    }
    base_metrics = {
        "wer": base_wer,
        "cer": base_wer / 2,
        "mean_wer": base_wer,
        "high_wer_rate": 0.0,
        "similarity_ref": sim + 0.01,
        "similarity_base": None,
        "rtf": 0.4,
        "flag_rate": 0.0,
    }
    delta = mean - base_wer
    gates = [
        {
            "expr": "wer <= 0.5",
            "metric": "wer",
            "value": mean,
            "ci": None,
            "passed": mean <= 0.5,
            "message": f"wer = {mean:.4f} (gate <= 0.5): {'ok' if mean <= 0.5 else 'FAILED'}",
        },
        {
            "expr": "wer_delta <= 0.05",
            "metric": "wer_delta",
            "value": delta,
            "ci": [delta - 0.01, delta + 0.01],
            "passed": gates_pass,
            "message": f"wer_delta = {delta:+.4f} (gate <= 0.05)",
        },
    ]
    return {
        "schema_version": 2,
        "kind": "eval",
        "candidate": candidate,
        "base": "/models/base",
        "suite": suite,
        "exit_code": 0 if all(g["passed"] for g in gates) else 1,
        "passed": all(g["passed"] for g in gates),
        "gates": gates,
        "metrics": {"candidate": cand_metrics, "base": base_metrics},
        "sentences": sentences,
        "provenance": {
            "candidate_hash": "c0ffee",
            "base_hash": "ba5e",
            "versions": {"torch": "2.9.1"},
            "asr_model": "tiny.en",
            "speaker_model": "resemblyzer",
            "normaliser": "english-basic",
            "seeds": {s["id"]: 7 for s in sentences},
            "device": "cpu",
        },
    }


def check_report(target: str = "/models/finetune", *, errors: int = 0, warnings: int = 0) -> dict[str, Any]:
    """A real ``CheckReport.to_dict()`` with the requested number of error and warning findings."""
    results = [RuleResult("XQ001", "readable", Status.PASSED, seconds=0.01)]
    for i in range(errors):
        results.append(
            RuleResult(
                f"XQ40{i + 1}",
                f"dvae-rule-{i + 1}",
                Status.FAILED,
                (
                    Finding(
                        f"XQ40{i + 1}",
                        f"dvae-rule-{i + 1}",
                        Severity.ERROR,
                        "dvae.pth keys carry the prefix dvae.",
                        "the DVAE stays random",
                        "copy dvae.pth from the base",
                        file=f"{target}/dvae.pth",
                    ),
                ),
            )
        )
    for i in range(warnings):
        results.append(
            RuleResult(
                f"XQ60{i + 2}",
                f"warn-rule-{i + 1}",
                Status.FAILED,
                (
                    Finding(
                        f"XQ60{i + 2}",
                        f"warn-rule-{i + 1}",
                        Severity.WARNING,
                        "stored in float16",
                        "precision lost",
                        "save float32",
                    ),
                ),
            )
        )
    results.append(RuleResult("XQ503", "gpt-unchanged", Status.SKIPPED, skip_reason="needs a base model (--base)"))
    return CheckReport(
        target,
        None,
        "inference",
        {"model": f"{target}/model.pth"},
        tuple(results),
        True,
        False,
        0.5,
        {"versions": {"torch": "2.9.1"}},
    ).to_dict()


def run_record(
    run_id: str,
    started: str,
    *,
    audio_dir: Path | None = None,
    wer: float = 0.1,
    errors: int = 0,
    failing: tuple[str, ...] = (),
    checkpoints: tuple[str, ...] = ("finetune",),
    gates_pass: bool = True,
) -> RunRecord:
    """A run record with one check and one eval per checkpoint."""
    checks = tuple(CheckEntry(cp, check_report(f"/models/{cp}", errors=errors)) for cp in checkpoints)
    evals = tuple(
        EvalEntry(
            cp,
            "smoke",
            eval_report(
                audio_dir / cp if audio_dir else None,
                candidate=f"/models/{cp}",
                wer=wer,
                failing=failing,
                gates_pass=gates_pass,
            ),
        )
        for cp in checkpoints
    )
    provenance = {
        "environment": {
            "versions": {"xtts_qa": "0.1.0", "torch": "2.9.1"},
            "python": "3.11",
            "torch": "2.9.1",
            "cuda": None,
        },
        "device": "cpu",
        "checkpoints": {cp: {"target": f"/models/{cp}", "hash": f"h{wer}"} for cp in checkpoints},
        "base": {"target": "/models/base", "hash": "ba5e"},
    }
    return RunRecord(run_id, started, started, "pytest", "test", checks, evals, (), provenance)
