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

#: a short suite run: 2 sentences in units of 1, generation capped at 40 codes (about 1.9 s of audio), tiny.en greedy
SENTENCES = 2


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


def _real_text_tokens(folder: Path) -> None:
    """Write the text-token count into config.json as released configs do (the tiny factory leaves 0 for coqui-tts
    to fill in from vocab.json, which the structural check's bounds reject)."""
    config = json.loads((folder / "config.json").read_text())
    if not config["model_args"].get("gpt_number_text_tokens"):
        rows = torch.load(folder / "model.pth", weights_only=True)["model"]["gpt.text_embedding.weight"].shape[0]
        config["model_args"]["gpt_number_text_tokens"] = int(rows)
        (folder / "config.json").write_text(json.dumps(config, indent=2))


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from xtts_qa.demo.factory import build_model_folder

    root = tmp_path_factory.mktemp("sweep-models")
    base = build_model_folder(root / "base", "tiny", seed=0).folder
    _real_text_tokens(base)
    return {
        "base": base,
        "ft1": _finetune(base, root / "ft1", 1),
        "ft2": _finetune(base, root / "ft2", 2),
        "diverged": _finetune(base, root / "diverged", 3, nan=True),
    }


def _options(tmp: Path, engine: str = "local", **kw: Any) -> SweepOptions:
    eval_options = EvalOptions(
        device="cpu",
        synth=SynthOptions(max_audio_tokens=40),
        asr=AsrOptions(model="tiny.en", beam_size=1, workers=1),
        progress=False,
        limit=SENTENCES,
        bootstrap_rounds=200,
        cache_root=tmp / "cache",
    )
    defaults: dict[str, Any] = {
        "engine": engine,
        "eval_options": eval_options,
        "batch_size": 1,
        "threads": 1,
        "report_dir": tmp / "reports",
        "history": tmp / "reports" / "history.sqlite",
    }
    return SweepOptions(**{**defaults, **kw})


def _journal(tmp: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in (tmp / "cache" / "sweeps").glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]


def _comparable(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Everything a user judges (verdicts, findings, metrics, gates), without timings and paths."""
    out = []
    for c in report["checkpoints"]:
        out.append(
            {
                "label": c["label"],
                "exit_code": c["exit_code"],
                "check_exit_code": c["check_exit_code"],
                "findings": sorted((f["code"], f["severity"], f["message"]) for f in c["findings"]),
                "metrics": c["metrics"],
                "gates": c["gates"],
            }
        )
    return out


@pytest.fixture(scope="session")
def local_single(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """A local sweep of a healthy fine-tune and a diverged one (the reference the Ray engine must match)."""
    tmp = tmp_path_factory.mktemp("local-single")
    return run_sweep([str(models["ft1"]), str(models["diverged"])], str(models["base"]), _options(tmp)), tmp


@pytest.fixture(scope="session")
def local_pair(
    models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Any, Path, list[SweepProgress], list[dict[str, Any]]]:
    """A local sweep of two fine-tunes, interrupted (Ctrl-C on the driver) after 3 of its 6 units, then run again."""
    tmp = tmp_path_factory.mktemp("local-pair")
    seen: list[SweepProgress] = []

    def interrupt(event: SweepProgress) -> None:
        seen.append(event)
        if event.done == 3:
            raise KeyboardInterrupt

    targets = [str(models["ft1"]), str(models["ft2"])]
    with pytest.raises(KeyboardInterrupt):
        run_sweep(targets, str(models["base"]), _options(tmp, on_progress=interrupt))
    before = _journal(tmp)
    assert not (tmp / "reports" / "history.sqlite").exists(), "an interrupted sweep records no run"
    return run_sweep(targets, str(models["base"]), _options(tmp)), tmp, seen, before


# -- local engine ---------------------------------------------------------------------------------------------------
def test_local_sweep_checks_everything_evaluates_the_healthy_and_records_once(
    local_single: tuple[Any, Path], models: dict[str, Path]
) -> None:
    report, tmp = local_single
    by_label = {c.label: c for c in report.checkpoints}
    assert by_label["diverged"].check["exit_code"] == 1 and not by_label["diverged"].evals
    assert any(f["severity"] == "error" for r in by_label["diverged"].check["results"] for f in r["findings"])
    ft1 = by_label["ft1"]
    assert ft1.check["exit_code"] == 0 and set(ft1.evals) == {"smoke-en"}
    ev = ft1.evals["smoke-en"]
    assert len(ev["sentences"]) == SENTENCES and ev["metrics"]["base"] is not None
    assert all(s["transcript"] is not None for s in ev["sentences"])
    assert ev["provenance"]["cache"]["audio_misses"] == 0 and ev["provenance"]["cache"]["transcript_misses"] == 0
    # 2 models (ft1, base) x 2 sentences, one per unit; the diverged checkpoint is never synthesised
    assert report.units == {"total": 4, "cached": 0, "run": 4, "retried": 0}
    journal = _journal(tmp)
    assert len(journal) == 4 and len({j["unit"] for j in journal}) == 4
    assert {(j["model"], j["role"]) for j in journal} == {
        (str(models["ft1"]), "candidate"),
        (str(models["base"]), "base"),
    }
    # one run in the history, written by the driver: the check of both, the evaluation of one
    store = HistoryStore(tmp / "reports" / "history.sqlite")
    assert store.count() == 1
    stored = store.get(report.run_id)
    assert stored.source == "sweep" and [c.checkpoint for c in stored.checks] == ["ft1", "diverged"]
    assert [(e.checkpoint, e.suite) for e in stored.evals] == [("ft1", "smoke-en")]
    assert stored.provenance["engine"] == "local" and stored.exit_code == report.exit_code == 1
    assert Path(str(report.report)).is_file()


def test_a_repeated_sweep_runs_nothing_and_gives_the_same_figures(
    local_single: tuple[Any, Path], models: dict[str, Path]
) -> None:
    report, tmp = local_single
    options = replace(_options(tmp), report_dir=None, history=None)
    again = run_sweep([str(models["ft1"]), str(models["diverged"])], str(models["base"]), options)
    assert again.units == {"total": 4, "cached": 4, "run": 0, "retried": 0}
    assert _comparable(again.to_dict()) == _comparable(report.to_dict())
    assert len(_journal(tmp)) == 4 and again.run_id == ""


def test_interrupted_driver_reruns_only_the_missing_units(
    local_pair: tuple[Any, Path, list[SweepProgress], list[dict[str, Any]]],
) -> None:
    report, tmp, seen, before = local_pair
    assert [e.done for e in seen] == [1, 2, 3] and seen[-1].total == 6 and seen[0].eta_s is not None
    assert len(before) == 3
    assert report.units == {"total": 6, "cached": 3, "run": 3, "retried": 0}
    journal = _journal(tmp)
    assert len(journal) == 6 and len({j["unit"] for j in journal}) == 6, "every unit recorded exactly once"
    assert {j["unit"] for j in journal[3:]}.isdisjoint({j["unit"] for j in before})
    assert all(set(c.evals) == {"smoke-en"} for c in report.checkpoints)
    assert all(c.evals["smoke-en"]["provenance"]["cache"]["audio_misses"] == 0 for c in report.checkpoints)
    assert HistoryStore(tmp / "reports" / "history.sqlite").count() == 1


def test_cli_json_document_and_no_eval(
    models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "-q",
            "sweep",
            str(models["ft1"]),
            str(models["diverged"]),
            "--base",
            str(models["base"]),
            "--no-eval",
            "--reports",
            str(tmp_path / "reports"),
            "--json",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 == doc["exit_code"] and doc["kind"] == "sweep" and doc["engine"] == "local"
    assert [c["target"] for c in doc["checkpoints"]] == [str(models["ft1"]), str(models["diverged"])]
    assert [c["exit_code"] for c in doc["checkpoints"]] == [0, 1]
    assert not any(c["evaluated"] for c in doc["checkpoints"]) and doc["units"]["total"] == 0
    assert any(f["severity"] == "error" for f in doc["checkpoints"][1]["findings"])
    assert HistoryStore(tmp_path / "reports" / "history.sqlite").get(doc["run_id"]).checks[1].exit_code == 1


def test_bad_input_is_one_line_exit_2(
    models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope"
    assert main(["sweep", str(missing), "--base", str(models["base"]), "--no-record"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("xtts-qa: error: ") and str(missing) in err[-1] and "Fix:" in err[-1]
    assert main(["sweep", str(models["ft1"]), "--batch-size", "0", "--no-record"]) == 2
    assert "--batch-size" in capsys.readouterr().err


# -- Ray engine (local 2-CPU cluster, one per test session) ---------------------------------------------------------
@pytest.fixture(scope="session")
def ray_cluster() -> Any:
    ray = pytest.importorskip(
        "ray", reason="the ray extra is not installed (pip install -e '.[ray]'; scripts/bootstrap.sh does)"
    )
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


def test_ray_and_local_give_the_same_verdicts_and_figures(
    ray_cluster: Any, local_single: tuple[Any, Path], models: dict[str, Path], tmp_path: Path
) -> None:
    local, _ = local_single
    remote = run_sweep([str(models["ft1"]), str(models["diverged"])], str(models["base"]), _options(tmp_path, "ray"))
    assert remote.engine == "ray" and remote.units == local.units == {"total": 4, "cached": 0, "run": 4, "retried": 0}
    assert _comparable(remote.to_dict()) == _comparable(local.to_dict())
    journal = _journal(tmp_path)
    assert len(journal) == 4 and all(j["worker"].startswith("ray:synth-") for j in journal)
    assert HistoryStore(tmp_path / "reports" / "history.sqlite").get(remote.run_id).provenance["engine"] == "ray"


def test_ray_actor_killed_mid_sweep_is_retried_and_nothing_is_lost(
    ray_cluster: Any, local_pair: tuple[Any, ...], models: dict[str, Path], tmp_path: Path
) -> None:
    killed: list[int] = []

    def kill_synth(event: SweepProgress) -> None:
        if not killed and event.done >= 1:
            pid = event.workers["synth-0"]
            os.kill(pid, signal.SIGKILL)  # the synthesis actor, mid-way through the units queued on it
            killed.append(pid)

    targets = [str(models["ft1"]), str(models["ft2"])]
    report = run_sweep(targets, str(models["base"]), _options(tmp_path, "ray", on_progress=kill_synth, max_inflight=3))
    assert killed and report.units["total"] == 6 and report.units["run"] == 6 and report.units["retried"] >= 1
    journal = _journal(tmp_path)
    assert len(journal) == 6 and len({j["unit"] for j in journal}) == 6, "every unit recorded exactly once"
    assert any(j["attempts"] > 1 for j in journal)
    assert any(f"pid {killed[0]}" not in j["worker"] for j in journal if j["attempts"] > 1), (
        "retried on the restarted actor"
    )
    assert all(c.evals["smoke-en"]["provenance"]["cache"]["audio_misses"] == 0 for c in report.checkpoints)
    assert _comparable(report.to_dict()) == _comparable(local_pair[0].to_dict())
