"""``xtts-qa sweep`` on both engines: tiny real XTTS models built with coqui-tts, espeak-ng references, the bundled
tiny.en faster-whisper model and resemblyzer; Ray on a local 2-CPU cluster shared by the Ray tests of the session."""

from __future__ import annotations

import json
import os
import shutil
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from xtts_qa.cli import main
from xtts_qa.evaluation.asr import AsrOptions
from xtts_qa.evaluation.runner import EvalOptions
from xtts_qa.evaluation.synth import SynthOptions
from xtts_qa.execution.driver import SweepOptions, SweepProgress, run_sweep
from xtts_qa.reporting.history import HistoryStore

pytestmark = pytest.mark.slow

#: a short suite run: 4 sentences, generation capped at 40 codes (about 1.9 s of audio), tiny.en greedy
SENTENCES = 4


def _finetune(base: Path, dest: Path, seed: int, *, nan: bool = False) -> Path:
    """A copy of ``base`` whose GPT weights moved (what a fine-tune changes), or hold a NaN (a diverged run)."""
    shutil.copytree(base, dest)
    blob = torch.load(dest / "model.pth", weights_only=True)
    gen = torch.Generator().manual_seed(seed)
    for name, tensor in blob["model"].items():
        if name.startswith("gpt.") and tensor.is_floating_point() and tensor.dim() >= 2:
            tensor.add_(torch.randn(tensor.shape, generator=gen) * 1e-3)
            if nan:
                tensor.view(-1)[0] = float("nan")
                nan = False
    torch.save(blob, dest / "model.pth")
    return dest


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from xtts_qa.demo.factory import build_model_folder

    root = tmp_path_factory.mktemp("sweep-models")
    base = build_model_folder(root / "base", "tiny", seed=0).folder
    return {"base": base, "ft1": _finetune(base, root / "ft1", 1), "ft2": _finetune(base, root / "ft2", 2),
            "diverged": _finetune(base, root / "diverged", 3, nan=True)}


def _options(tmp: Path, engine: str = "local", **kw: Any) -> SweepOptions:
    eval_options = EvalOptions(device="cpu", synth=SynthOptions(max_audio_tokens=40), asr=AsrOptions(model="tiny.en", beam_size=1, workers=1),
                               progress=False, limit=SENTENCES, bootstrap_rounds=200, cache_root=tmp / "cache")
    defaults: dict[str, Any] = {"engine": engine, "eval_options": eval_options, "batch_size": 2, "threads": 1,
                                "report_dir": tmp / "reports", "history": tmp / "reports" / "history.sqlite"}
    return SweepOptions(**{**defaults, **kw})


def _journal(tmp: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for path in (tmp / "cache" / "sweeps").glob("*.jsonl") for line in path.read_text().splitlines()]


def _comparable(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Everything a user judges (verdicts, findings, metrics, gates), without timings and paths."""
    out = []
    for c in report["checkpoints"]:
        out.append({"label": c["label"], "exit_code": c["exit_code"], "check_exit_code": c["check_exit_code"],
                    "findings": sorted((f["code"], f["severity"], f["message"]) for f in c["findings"]),
                    "metrics": c["metrics"], "gates": c["gates"]})
    return out


# -- local engine ---------------------------------------------------------------------------------------------------
def test_local_sweep_checks_everything_evaluates_the_healthy_and_records_once(models: dict[str, Path], tmp_path: Path) -> None:
    report = run_sweep([str(models["ft1"]), str(models["diverged"])], str(models["base"]), _options(tmp_path))
    by_label = {c.label: c for c in report.checkpoints}
    assert by_label["diverged"].check["exit_code"] == 1 and not by_label["diverged"].evals
    assert any(f["code"].startswith("XQ") and f["severity"] == "error" for r in by_label["diverged"].check["results"] for f in r["findings"])
    ft1 = by_label["ft1"]
    assert ft1.check["exit_code"] == 0 and set(ft1.evals) == {"smoke-en"}
    ev = ft1.evals["smoke-en"]
    assert len(ev["sentences"]) == SENTENCES and ev["metrics"]["base"] is not None
    assert ev["provenance"]["cache"]["audio_misses"] == 0 and ev["provenance"]["cache"]["transcript_misses"] == 0
    # 2 models (ft1, base) x 4 sentences in batches of 2
    assert report.units == {"total": 4, "cached": 0, "run": 4, "retried": 0}
    journal = _journal(tmp_path)
    assert len(journal) == 4 and len({j["unit"] for j in journal}) == 4
    assert {j["role"] for j in journal} == {"candidate", "base"}
    # one run in the history, written by the driver, with the check of both and the evaluation of one
    store = HistoryStore(tmp_path / "reports" / "history.sqlite")
    assert store.count() == 1
    stored = store.get(report.run_id)
    assert stored.source == "sweep" and [c.checkpoint for c in stored.checks] == ["ft1", "diverged"]
    assert [(e.checkpoint, e.suite) for e in stored.evals] == [("ft1", "smoke-en")]
    assert stored.provenance["engine"] == "local" and stored.exit_code == report.exit_code == 1
    assert Path(report.report).is_file()

    # the same sweep again: nothing to run, same figures
    again = run_sweep([str(models["ft1"]), str(models["diverged"])], str(models["base"]), _options(tmp_path))
    assert again.units == {"total": 4, "cached": 4, "run": 0, "retried": 0}
    assert _comparable(again.to_dict()) == _comparable(report.to_dict())
    assert len(_journal(tmp_path)) == 4 and store.count() == 2


def test_interrupted_driver_reruns_only_the_missing_units(models: dict[str, Path], tmp_path: Path) -> None:
    seen: list[SweepProgress] = []

    def interrupt(event: SweepProgress) -> None:
        seen.append(event)
        if event.done == 3:
            raise KeyboardInterrupt

    targets = [str(models["ft1"]), str(models["ft2"])]
    with pytest.raises(KeyboardInterrupt):
        run_sweep(targets, str(models["base"]), _options(tmp_path, on_progress=interrupt))
    assert [e.done for e in seen] == [1, 2, 3] and seen[-1].total == 6 and seen[0].eta_s is not None
    assert not (tmp_path / "reports" / "history.sqlite").exists()  # an interrupted sweep records no run
    first = _journal(tmp_path)
    assert len(first) == 3

    report = run_sweep(targets, str(models["base"]), _options(tmp_path))
    assert report.units == {"total": 6, "cached": 3, "run": 3, "retried": 0}
    journal = _journal(tmp_path)
    assert len(journal) == 6 and len({j["unit"] for j in journal}) == 6, "every unit recorded exactly once"
    assert {j["unit"] for j in journal[3:]}.isdisjoint({j["unit"] for j in first})
    assert [c.exit_code for c in report.checkpoints] == [report.checkpoints[0].exit_code] * 2
    assert all(c.evals["smoke-en"]["provenance"]["cache"]["audio_misses"] == 0 for c in report.checkpoints)
    assert HistoryStore(tmp_path / "reports" / "history.sqlite").count() == 1


def test_cli_json_document_and_no_eval(models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["-q", "sweep", str(models["ft1"]), str(models["diverged"]), "--base", str(models["base"]), "--no-eval",
                 "--reports", str(tmp_path / "reports"), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 == doc["exit_code"] and doc["kind"] == "sweep" and doc["engine"] == "local"
    assert [c["target"] for c in doc["checkpoints"]] == [str(models["ft1"]), str(models["diverged"])]
    assert [c["exit_code"] for c in doc["checkpoints"]] == [0, 1]
    assert not any(c["evaluated"] for c in doc["checkpoints"]) and doc["units"]["total"] == 0
    assert any(f["severity"] == "error" for f in doc["checkpoints"][1]["findings"])
    assert HistoryStore(tmp_path / "reports" / "history.sqlite").get(doc["run_id"]).checks[1].exit_code == 1


def test_bad_input_is_one_line_exit_2(models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    assert main(["sweep", str(missing), "--base", str(models["base"]), "--no-record"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("xtts-qa: error: ") and str(missing) in err[-1] and "Fix:" in err[-1]
    assert main(["sweep", str(models["ft1"]), "--batch-size", "0", "--no-record"]) == 2
    assert "--batch-size" in capsys.readouterr().err


# -- Ray engine -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def ray_cluster() -> Any:
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    if started:
        ray.shutdown()


def test_ray_and_local_give_the_same_verdicts_and_figures(ray_cluster: Any, models: dict[str, Path], tmp_path: Path) -> None:
    targets = [str(models["ft1"]), str(models["diverged"])]
    local = run_sweep(targets, str(models["base"]), _options(tmp_path / "local"))
    remote = run_sweep(targets, str(models["base"]), _options(tmp_path / "ray", "ray"))
    assert remote.engine == "ray" and remote.units == local.units == {"total": 4, "cached": 0, "run": 4, "retried": 0}
    assert _comparable(remote.to_dict()) == _comparable(local.to_dict())
    ray_journal = _journal(tmp_path / "ray")
    assert len(ray_journal) == 4 and all(j["worker"].startswith("ray:synth-") for j in ray_journal)
    assert HistoryStore(tmp_path / "ray" / "reports" / "history.sqlite").get(remote.run_id).provenance["engine"] == "ray"


def test_ray_actor_killed_mid_sweep_is_retried_and_nothing_is_lost(ray_cluster: Any, models: dict[str, Path], tmp_path: Path) -> None:
    killed: list[int] = []

    def kill_synth(event: SweepProgress) -> None:
        if not killed and event.done >= 1:
            pid = event.workers["synth-0"]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    targets = [str(models["ft1"]), str(models["ft2"])]
    options = _options(tmp_path, "ray", on_progress=kill_synth, max_inflight=3)
    report = run_sweep(targets, str(models["base"]), options)
    assert killed and report.units["total"] == 6 and report.units["run"] == 6
    assert report.units["retried"] >= 1
    journal = _journal(tmp_path)
    assert len(journal) == 6 and len({j["unit"] for j in journal}) == 6, "every unit recorded exactly once"
    assert any(j["attempts"] > 1 for j in journal)
    assert all(c.evals["smoke-en"]["provenance"]["cache"]["audio_misses"] == 0 for c in report.checkpoints)
    local = run_sweep(targets, str(models["base"]), _options(tmp_path / "local"))
    assert _comparable(report.to_dict()) == _comparable(local.to_dict())
