"""``xtts-qa repair``: each repair's result passes the check and loads strictly in coqui-tts; what cannot be repaired
safely is refused with nothing written; TARGET and BASE are never written; repairing twice changes nothing; and the
results meant for training are accepted by coqui's real GPTTrainer / Trainer, whose DVAE then equals the base's."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xtts_qa.cli import main
from xtts_qa.errors import InputError
from xtts_qa.repair.apply import PROVENANCE_FILE, apply_repair
from xtts_qa.repair.plan import plan_repair
from xtts_qa.rules.base import registry

#: scenario -> (intent, actions the plan must use)
REPAIRABLE = {
    "finetune": ("inference", set()),
    "sequential-broken-dvae": ("finetune", {"copy-dvae-from-base"}),
    "saved-fp16": ("inference", {"restore-frozen-from-base", "cast-to-fp32"}),
    "speakers-metadata": ("inference", {"copy-speakers-from-base"}),
    "wrong-mel-stats": ("inference", {"restore-frozen-from-base", "copy-mel-stats-from-base"}),
    "decoder-trained": ("inference", {"restore-frozen-from-base"}),
    "trainer-run": ("inference", {"export-inference"}),
    "compacted-export": ("finetune", {"export-inference"}),
    "inference-as-restore": ("restore", {"make-restorable"}),
}
#: scenario -> the rule code the refusal must name
REFUSED = {
    "diverged-nan": "XQ601",
    "merge-cross-base": "XQ902",
    "vocab-reordered": "XQ204",
    "vocab-extended-not-resized": "XQ201",
    "config-v1-defaults": "XQ301",
    "truncated-copy": "XQ001",
    "pickle-exploit": "XQ003",
}


def _snapshot(folder: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under a folder: (size, mtime_ns, sha256)."""
    root = folder if folder.is_dir() else folder.parent
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def strict_load(folder: Path) -> torch.nn.Module:
    """coqui-tts's own inference loader, strict, on the folder's own files."""
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

    config = XttsConfig()
    config.load_json(str(folder / "config.json"))
    model = Xtts(config)
    speakers = folder / "speakers_xtts.pth"
    model.load_checkpoint(
        config,
        checkpoint_dir=str(folder),
        vocab_path=str(folder / "vocab.json"),
        speaker_file_path=str(speakers) if speakers.exists() else None,
        eval=True,
        strict=True,
    )
    return model


def _base_state(family) -> dict[str, torch.Tensor]:
    return torch.load(family[0].base.model, weights_only=True, mmap=True)["model"]


@pytest.mark.parametrize("name", sorted(REPAIRABLE))
def test_repair_result_passes_the_check_and_loads_strictly(family, tmp_path, name):
    fam, targets = family
    intent, actions = REPAIRABLE[name]
    plan = plan_repair(targets[name], fam.base.folder, intent)
    assert not plan.refusals, plan.refusals
    assert actions <= {s.action for s in plan.steps}
    result = apply_repair(plan, tmp_path / "out")
    assert result.after.exit_code == 0, [f"{f.code}: {f.message}" for f in result.after.findings]
    record = json.loads((result.out / PROVENANCE_FILE).read_text())
    assert record["target"] == str(targets[name]) and record["intent"] == intent
    assert record["inputs"]["base_model"]["digest"]
    if intent == "restore":
        blob = torch.load(result.out / "model.pth", weights_only=True, mmap=True)
        assert (
            blob["step"] == 0 and blob["epoch"] == 0 and blob["optimizer"] is None
        )  # honest: never trained by a Trainer
        assert any(k.startswith("dvae.") for k in blob["model"]) and any(
            k.startswith("xtts.gpt.") for k in blob["model"]
        )
    else:
        model = strict_load(result.out)
        base = _base_state(family)
        got = model.state_dict()
        frozen = [k for k in base if not k.startswith("gpt.")]
        if name != "finetune":  # restored or untouched frozen parts are the base's, bit for bit
            assert all(torch.equal(got[k], base[k]) for k in frozen)


def test_repaired_dvae_and_mel_stats_are_the_base_files(family, tmp_path):
    fam, targets = family
    result = apply_repair(plan_repair(targets["sequential-broken-dvae"], fam.base.folder, "finetune"), tmp_path / "o")
    assert (result.out / "dvae.pth").read_bytes() == fam.base.dvae.read_bytes()
    record = json.loads((result.out / PROVENANCE_FILE).read_text())
    assert record["finetune_args"]["restore_path"] is None
    assert record["finetune_args"]["dvae_checkpoint"] == str((result.out / "dvae.pth").resolve())


def test_fp16_repair_says_precision_is_not_recovered(family):
    fam, targets = family
    plan = plan_repair(targets["saved-fp16"], fam.base.folder)
    cast = [s for s in plan.steps if s.action == "cast-to-fp32"]
    assert cast and "NOT recovered" in cast[0].what


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_unsafe_repairs_are_refused_and_nothing_is_written(family, tmp_path, name):
    fam, targets = family
    plan = plan_repair(targets[name], fam.base.folder)
    assert any(r.startswith(REFUSED[name]) for r in plan.refusals), plan.refusals
    with pytest.raises(InputError, match="cannot be repaired safely"):
        apply_repair(plan, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_refusal_exits_2_and_names_the_rule(family, tmp_path, capsys):
    fam, targets = family
    assert (
        main(
            [
                "-q",
                "repair",
                str(targets["diverged-nan"]),
                "--base",
                str(fam.base.folder),
                "--out",
                str(tmp_path / "cli"),
            ]
        )
        == 2
    )
    assert not (tmp_path / "cli").exists()
    out = capsys.readouterr().out
    assert "XQ601" in out and "trained GPT weights" in out and "nothing written" in out


def test_every_declared_repair_action_exists():
    from xtts_qa.repair.actions import ACTIONS

    declared = {code: rule.repair for code, rule in registry().items() if rule.repair}
    assert declared, "rules declare no repair actions"
    assert set(declared.values()) <= set(ACTIONS), set(declared.values()) - set(ACTIONS)
    assert {"XQ401", "XQ402", "XQ501", "XQ502", "XQ602", "XQ801", "XQ802", "XQ701"} <= set(declared)
    # what cannot be repaired safely has no action
    assert not {"XQ201", "XQ204", "XQ901", "XQ902", "XQ003"} & set(declared)


def test_dry_run_prints_the_plan_and_writes_nothing(family, tmp_path, capsys):
    fam, targets = family
    before = _snapshot(targets["sequential-broken-dvae"])
    code = main(
        [
            "-q",
            "repair",
            str(targets["sequential-broken-dvae"]),
            "--base",
            str(fam.base.folder),
            "--intent",
            "finetune",
            "--out",
            str(tmp_path / "out"),
            "--dry-run",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "[copy-dvae-from-base]" in out and "XQ401" in out and str(fam.base.dvae) in out
    assert not (tmp_path / "out").exists()
    assert _snapshot(targets["sequential-broken-dvae"]) == before
    assert (
        main(
            [
                "-q",
                "repair",
                str(targets["sequential-broken-dvae"]),
                "--base",
                str(fam.base.folder),
                "--dry-run",
                "--json",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["steps"] and data["refusals"] == []


def test_cli_repair_prints_before_and_after(family, tmp_path, capsys):
    fam, targets = family
    code = main(
        [
            "-q",
            "repair",
            str(targets["speakers-metadata"]),
            "--base",
            str(fam.base.folder),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    before = next(line for line in out.splitlines() if line.strip().startswith("before"))
    after = next(line for line in out.splitlines() if line.strip().startswith("after"))
    assert "UNHEALTHY" in before and "XQ801" in before and "HEALTHY" in after and "XQ801" not in after


def test_out_folder_rules(family, tmp_path, capsys):
    fam, targets = family
    src = targets["speakers-metadata"]
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    args = ["-q", "repair", str(src), "--base", str(fam.base.folder), "--out", str(out)]
    assert main(args) == 2
    assert "not empty" in capsys.readouterr().err and (out / "keep.txt").read_text() == "user data"
    assert main(args + ["--force"]) == 0
    assert not (out / "keep.txt").exists() and (out / "model.pth").is_file()
    assert main(["-q", "repair", str(src), "--base", str(fam.base.folder), "--out", str(src / "fixed")]) == 2
    assert "overlaps" in capsys.readouterr().err and not (src / "fixed").exists()
    assert main(["-q", "repair", str(src), "--base", str(fam.base.folder)]) == 2  # no --out, no --dry-run
    assert not list(tmp_path.glob(".out.*"))  # no temporary folders left behind


_TARGETS = sorted(n for n in REPAIRABLE if n != "finetune")


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(_TARGETS))
def test_repair_never_writes_inputs_and_is_idempotent(family, tmp_path_factory, name):
    fam, targets = family
    intent = REPAIRABLE[name][0]
    target = targets[name]
    before_target, before_base = _snapshot(target), _snapshot(fam.base.folder)
    work = tmp_path_factory.mktemp("idem")
    first = apply_repair(plan_repair(target, fam.base.folder, intent), work / "first")
    assert _snapshot(target) == before_target and _snapshot(fam.base.folder) == before_base
    again = plan_repair(first.out, fam.base.folder, intent)
    assert again.steps == [] and again.refusals == []
    second = apply_repair(again, work / "second")
    a = {k: v[2] for k, v in _snapshot(first.out).items() if k != PROVENANCE_FILE}
    b = {k: v[2] for k, v in _snapshot(second.out).items() if k != PROVENANCE_FILE}
    assert a == b
    shutil.rmtree(work)


# ------------------------------------------------------------------------ real coqui Trainer runs (slow)


@pytest.mark.slow
def test_finetune_repair_of_a_prefixed_dvae_export_trains_with_the_base_dvae(trainer_runs, tmp_path):
    """AllTalk's export with a dvae.-prefixed dvae.pth: coqui's Trainer keeps a random DVAE (observed by the
    generator); after repair --intent finetune, a real GPTTrainer + Trainer.fit() from it holds the base's DVAE."""
    from xtts_qa.demo.trainer_runs import _fit  # the generator's recipe fine-tune (few steps, tiny dims)

    assert not trainer_runs.observations["run2_from_bad_export"]["dvae_after_init_vs_base"]["identical"]
    plan = plan_repair(trainer_runs.export_bad_dvae, trainer_runs.base, "finetune")
    assert any("dvae.pth" in s.what for s in plan.steps)  # the export's support files come from the base
    result = apply_repair(plan, tmp_path / "fixed")
    assert result.after.exit_code == 0
    assert (result.out / "dvae.pth").read_bytes() == (trainer_runs.base / "dvae.pth").read_bytes()
    strict_load(result.out)
    _, observed = _fit(
        tmp_path / "run",
        trainer_runs.base,
        trainer_runs.dataset,
        xtts_checkpoint=result.out / "model.pth",
        support=result.out,
    )
    assert observed["steps"] >= 1
    assert observed["dvae_after_init_vs_base"]["identical"] and observed["dvae_after_fit_vs_base"]["identical"]


@pytest.mark.slow
def test_restore_repair_of_an_inference_model_is_restored_by_the_trainer(trainer_runs, tmp_path):
    """The base's inference model.pth as restore_path fails in coqui (KeyError 'step', observed by the generator);
    repaired with --intent restore, the real Trainer restores every layer, from step 0, with the base's DVAE."""
    from xtts_qa.demo.trainer_runs import observe_restore

    assert not trainer_runs.observations["restore_from_inference"].get("ok")
    plan = plan_repair(trainer_runs.base / "model.pth", trainer_runs.base, "restore")
    assert "make-restorable" in {s.action for s in plan.steps}
    result = apply_repair(plan, tmp_path / "restorable")
    assert result.after.exit_code == 0, [f"{f.code}: {f.message}" for f in result.after.findings]
    _, observed = observe_restore(result.out / "model.pth", trainer_runs.base, tmp_path / "restore")
    assert observed["ok"], observed
    assert observed["restored_step"] == 0 and not observed["partial_initialization"]
    assert observed["dvae_vs_base"]["identical"]


@pytest.mark.slow
def test_trainer_checkpoint_repaired_into_a_clean_inference_export(trainer_runs, tmp_path):
    plan = plan_repair(trainer_runs.checkpoint, trainer_runs.base, "inference")
    assert "export-inference" in {s.action for s in plan.steps}
    result = apply_repair(plan, tmp_path / "export")
    assert result.after.exit_code == 0
    blob = torch.load(result.out / "model.pth", weights_only=True, mmap=True)
    assert set(blob) == {"model"} and not [k for k in blob["model"] if "dvae" in k or k.startswith("xtts.")]
    for name in ("dvae.pth", "mel_stats.pth", "vocab.json"):
        assert (result.out / name).read_bytes() == (trainer_runs.base / name).read_bytes()
    model = strict_load(result.out)
    trained = torch.load(trainer_runs.checkpoint, weights_only=True, mmap=True)["model"]
    state = model.state_dict()
    assert all(torch.equal(state[k[len("xtts.") :]], v) for k, v in trained.items() if k.startswith("xtts.gpt."))


def test_restore_repair_keeps_the_step_and_epoch_an_export_really_has(family, tmp_path):
    fam, targets = family
    plan = plan_repair(targets["compacted-export"], fam.base.folder, "restore")
    result = apply_repair(plan, tmp_path / "r")
    assert result.after.exit_code == 0, [f"{f.code}: {f.message}" for f in result.after.findings]
    stored = torch.load(targets["compacted-export"] / "model.pth", weights_only=True, mmap=True)
    blob = torch.load(result.out / "model.pth", weights_only=True, mmap=True)
    assert (blob["step"], blob["epoch"]) == (stored["step"], stored["epoch"])
    assert {k.split(".")[0] for k in blob["model"]} == {
        "xtts",
        "dvae",
        "torch_mel_spectrogram_style_encoder",
        "torch_mel_spectrogram_dvae",
    }
    dvae = torch.load(fam.base.dvae, weights_only=True)
    assert all(torch.equal(blob["model"][f"dvae.{k}"], v) for k, v in dvae.items())
