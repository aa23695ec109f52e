"""Real coqui-tts Trainer artefacts: what coqui itself does with each one, and the check agreeing with it.

The artefacts come from ``xtts_qa.demo.trainer_runs`` (coqui's GPTTrainer + trainer.Trainer.fit on espeak-ng clips,
built once per cache). The observations were recorded while coqui ran; the tests read them, re-verify the cheap
ones on the files, then run ``xtts_qa.engine.check`` on every artefact and require its verdict to match.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import PERSISTENT_CACHE

pytestmark = pytest.mark.slow


def _state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True, mmap=True)


# ------------------------------------------------------------------------------------------ what coqui did


def test_run1_is_a_real_trainer_output(trainer_runs):
    obs = trainer_runs.observations["run1"]
    assert obs["steps"] >= 2
    assert trainer_runs.checkpoint.name.startswith("checkpoint_") and trainer_runs.checkpoint.is_file()
    assert trainer_runs.best_model.is_file() and list(trainer_runs.run1.glob("best_model_*.pth"))
    assert (trainer_runs.run1 / "config.json").is_file() and (trainer_runs.run1 / "trainer_0_log.txt").is_file()
    for name in ("checkpoint", "best_model"):
        desc = obs[name]
        assert {"config", "model", "optimizer", "step", "epoch"} <= set(desc["fields"]), name
        assert desc["has_optimizer"] and isinstance(desc["step"], int) and desc["step"] > 0
        assert desc["namespaces"] == [
            "dvae",
            "torch_mel_spectrogram_dvae",
            "torch_mel_spectrogram_style_encoder",
            "xtts",
        ]
        assert desc["same_key_set_as_base"]
    blob = _state(trainer_runs.best_model)
    assert blob["step"] == obs["best_model"]["step"] and "epoch" in blob
    assert any(k.startswith("xtts.gpt.") for k in blob["model"]) and any(k.startswith("dvae.") for k in blob["model"])


@pytest.mark.parametrize("run", ["run1", "run2_from_export", "run2_from_bad_export"])
def test_fine_tune_changes_only_gpt_tensors(trainer_runs, run):
    desc = trainer_runs.observations[run]["best_model"]
    assert desc["changed_vs_base"] > 0
    assert desc["changed_groups"] == ["gpt"] and desc["non_gpt_changed"] == []


def test_trainer_dvae_equals_base_after_a_normal_fine_tune(trainer_runs):
    for run in ("run1", "run2_from_export"):
        obs = trainer_runs.observations[run]
        assert obs["dvae_after_init_vs_base"]["identical"], run
        assert obs["dvae_after_fit_vs_base"]["identical"], run  # eval mode, not optimised
        assert obs["best_model"]["dvae_vs_base"]["identical"], run


def test_second_fine_tune_from_bad_export_keeps_a_random_dvae_silently(trainer_runs):
    obs = trainer_runs.observations["run2_from_bad_export"]
    assert not obs["dvae_after_init_vs_base"]["identical"]
    assert (
        obs["dvae_after_init_vs_base"]["differing_tensors"] > 0 and obs["dvae_after_init_vs_base"]["max_abs_diff"] > 0.1
    )
    assert not obs["best_model"]["dvae_vs_base"]["identical"]  # the random DVAE is saved into the checkpoint
    # coqui reports success and warns about nothing
    assert obs["dvae_restored_message"] and obs["warnings"] == []


def test_export_is_compacted_like_alltalk(trainer_runs):
    export = trainer_runs.export
    for name in ("model.pth", "config.json", "vocab.json", "dvae.pth", "mel_stats.pth"):
        assert (export / name).is_file(), name
    blob = _state(export / "model.pth")
    assert "optimizer" not in blob and {"step", "epoch", "config"} <= set(blob)
    assert not [k for k in blob["model"] if "dvae" in k]
    assert any(k.startswith("xtts.gpt.") for k in blob["model"])
    assert (export / "dvae.pth").read_bytes() == (trainer_runs.base / "dvae.pth").read_bytes()
    bad = _state(trainer_runs.export_bad_dvae / "dvae.pth")
    assert bad and all(k.startswith("dvae.") for k in bad)


def test_coqui_loads_every_artefact_strictly(trainer_runs):
    """Xtts.load_checkpoint(strict=True) is silent about all of them, the broken ones included."""
    loads = trainer_runs.observations["strict_load"]
    assert set(loads) >= {
        "run1_checkpoint",
        "run1_best_model",
        "export",
        "export_bad_dvae",
        "run2_from_bad_export",
        "merge_ok",
        "merge_scaled",
    }
    assert all(v["ok"] for v in loads.values()), {k: v for k, v in loads.items() if not v["ok"]}


def test_restore_from_export_restores_all_but_dvae_and_mel_buffers(trainer_runs):
    obs = trainer_runs.observations["restore_from_export"]
    restored, total = obs["restored_layers"]
    assert obs["ok"] and obs["partial_initialization"]
    assert 0 < restored < total and obs["missing_in_checkpoint_count"] == total - restored
    assert obs["missing_in_checkpoint"] == ["dvae", "torch_mel_spectrogram_dvae"]
    assert obs["restored_step"] == trainer_runs.observations["run1"]["best_model"]["step"]
    assert obs["dvae_vs_base"]["identical"]
    # the same model as a restore from the full best_model.pth (which restores strictly)
    assert obs["vs_restore_max_abs_diff"] == 0.0
    assert not obs["reference_restore"]["partial_initialization"]


def test_restore_from_inference_model_fails(trainer_runs):
    obs = trainer_runs.observations["restore_from_inference"]
    assert obs["ok"] is False and obs["exception_type"] == "KeyError" and "step" in obs["exception"]
    assert obs["restored_layers"][0] == 0 and obs["restored_layers"][1] > 0


def test_merges_frozen_tensors(trainer_runs):
    ok, scaled = trainer_runs.observations["merge_ok"], trainer_runs.observations["merge_scaled"]
    assert abs(sum(ok["weights"]) - 1) < 1e-9 and abs(sum(scaled["weights"]) - 1.3) < 1e-9
    # weights summing to 1: frozen tensors equal the base only up to float32 rounding, not bit-identically
    assert 0 < ok["frozen_max_abs_diff"] and ok["frozen_max_rel_diff"] < 1e-6
    assert ok["frozen_bit_identical"] < ok["frozen_tensors"]
    assert ok["int_buffers_now_float"]
    assert scaled["frozen_max_rel_diff"] == pytest.approx(0.3, rel=1e-3)
    assert scaled["gpt_norm_ratio_median"] == pytest.approx(1.3, rel=1e-3)
    assert ok["gpt_norm_ratio_median"] == pytest.approx(1.0, abs=1e-3)


def test_observations_file_matches(trainer_runs):
    assert json.loads(trainer_runs.observations_file.read_text()) == trainer_runs.observations
    assert trainer_runs.observations["versions"]["coqui-tts"] and trainer_runs.observations["dataset"]["clips"] >= 10


# ------------------------------------------------------------------------------------------ the check agrees


def _check(target: Path, base: Path, intent: str):
    from xtts_qa.engine import check
    from xtts_qa.rules import CheckOptions

    return check(target, base, CheckOptions(intent=intent))


def _errors(report) -> list[str]:
    return sorted({f.code for f in report.findings if f.severity.value == "error"})


def _describe(report) -> str:
    return "\n".join(f"{f.code} {f.severity.value} {f.message[:160]}" for f in report.findings)


@pytest.mark.parametrize(
    ("artefact", "intent"),
    [
        ("checkpoint", "restore"),
        ("best_model", "restore"),
        ("export", "restore"),
        ("export", "finetune"),
        ("merge_ok", "inference"),
    ],
)
def test_check_passes_what_coqui_handles(trainer_runs, artefact, intent):
    obs = trainer_runs.observations
    if artefact == "export" and intent == "restore":
        assert obs["restore_from_export"]["ok"] and obs["restore_from_export"]["vs_restore_max_abs_diff"] == 0.0
    if artefact == "merge_ok":
        assert obs["merge_ok"]["frozen_max_rel_diff"] < 1e-6
    report = _check(getattr(trainer_runs, artefact), trainer_runs.base, intent)
    assert report.exit_code == 0, _describe(report)
    assert report.loads_in_coqui


def test_check_flags_the_prefixed_dvae_export(trainer_runs):
    report = _check(trainer_runs.export_bad_dvae, trainer_runs.base, "finetune")
    assert "XQ401" in _errors(report), _describe(report)
    assert report.exit_code == 1


def test_check_flags_the_scaled_merge(trainer_runs):
    report = _check(trainer_runs.merge_scaled, trainer_runs.base, "inference")
    assert "XQ901" in _errors(report), _describe(report)


def test_check_flags_inference_model_as_restore_path(trainer_runs):
    assert trainer_runs.observations["restore_from_inference"]["exception_type"] == "KeyError"
    report = _check(trainer_runs.base / "model.pth", trainer_runs.base, "restore")
    assert "XQ701" in _errors(report), _describe(report)


def test_check_names_the_random_dvae_of_the_second_fine_tune(trainer_runs):
    assert not trainer_runs.observations["run2_from_bad_export"]["dvae_after_init_vs_base"]["identical"]
    report = _check(trainer_runs.run2_from_bad_export / "best_model.pth", trainer_runs.base, "restore")
    dvae_errors = [f for f in report.findings if f.severity.value == "error" and "dvae" in f.name]
    assert dvae_errors, _describe(report)
    assert "XQ402" in {f.code for f in dvae_errors}  # its DVAE differs from the base's


def test_check_passes_the_good_second_fine_tune(trainer_runs):
    assert trainer_runs.observations["run2_from_export"]["dvae_after_init_vs_base"]["identical"]
    report = _check(trainer_runs.run2_from_export / "best_model.pth", trainer_runs.base, "restore")
    assert report.exit_code == 0, _describe(report)


# ------------------------------------------------------------------------------------------ the cache


def test_second_call_reuses_the_cache(trainer_runs, monkeypatch):
    from xtts_qa.demo import trainer_runs as gen

    def no_training(work):
        raise AssertionError("the cache was not reused")

    mtimes = {p: p.stat().st_mtime_ns for p in trainer_runs.root.rglob("*") if p.is_file()}
    monkeypatch.setattr(gen, "_build_all", no_training)
    again = gen.trainer_artefacts(PERSISTENT_CACHE / "trainer_runs")
    assert again == trainer_runs
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes


def _fake_build(calls: list[Path]):
    """A stand-in for the expensive part that writes one file per artefact, to exercise the cache protocol."""
    from xtts_qa.demo.trainer_runs import TrainerArtefacts, _file_sizes

    names = [f for f in TrainerArtefacts.__dataclass_fields__ if f not in ("root", "observations")]

    def build(work: Path) -> dict:
        calls.append(work)
        for name in names:
            (work / name).write_text(name)
        (work / "observations.json").write_text(json.dumps({"fake": len(calls)}))
        return {
            "paths": {n: ("observations.json" if n == "observations_file" else n) for n in names},
            "files": _file_sizes(work),
        }

    return build


def test_incomplete_or_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    from xtts_qa.demo import trainer_runs as gen

    calls: list[Path] = []
    monkeypatch.setattr(gen, "_build_all", _fake_build(calls))
    key = tmp_path / gen.cache_key()
    # a plain folder left where the cache should be (no manifest): rebuilt
    key.mkdir()
    (key / "base").mkdir()
    first = gen.trainer_artefacts(tmp_path)
    assert len(calls) == 1 and key.is_symlink() and first.observations == {"fake": 1}
    assert gen.trainer_artefacts(tmp_path) == first and len(calls) == 1
    # a file of a complete generation truncated: rebuilt, the damaged folder removed
    first.best_model.write_text("")
    second = gen.trainer_artefacts(tmp_path)
    assert len(calls) == 2 and second.observations == {"fake": 2} and not first.root.exists()
    assert [p.name for p in tmp_path.iterdir() if p.is_dir() and not p.is_symlink()] == [second.root.name]


def test_killed_build_leaves_no_cache(tmp_path, monkeypatch):
    from xtts_qa.demo import trainer_runs as gen

    def dies(work: Path) -> dict:
        (work / "half").write_text("written before the failure")
        raise KeyboardInterrupt

    monkeypatch.setattr(gen, "_build_all", dies)
    with pytest.raises(KeyboardInterrupt):
        gen.trainer_artefacts(tmp_path)
    assert not (tmp_path / gen.cache_key()).exists()
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]


def test_observe_trainer_start_sees_the_dvae_coqui_really_loads(trainer_runs, tmp_path):
    """The public probe issue 12 uses to prove repairs: a GPTTrainer built from each export, as the recipe does."""
    from xtts_qa.demo.trainer_runs import observe_trainer_start

    good = observe_trainer_start(trainer_runs.export / "model.pth", trainer_runs.base, tmp_path / "good.log")
    bad = observe_trainer_start(trainer_runs.export_bad_dvae / "model.pth", trainer_runs.base, tmp_path / "bad.log")
    assert good["dvae_vs_base"]["identical"] and good["dvae_restored_message"]
    assert not bad["dvae_vs_base"]["identical"] and bad["dvae_restored_message"]
    # the DVAE stays randomly initialised, as in the recorded second fine-tune (same tensors differ, other values)
    fit = trainer_runs.observations["run2_from_bad_export"]["dvae_after_init_vs_base"]
    assert bad["dvae_vs_base"]["differing_tensors"] == fit["differing_tensors"] > 0
