"""``xtts-qa merge``: the result passes the check and loads strictly in coqui-tts, everything outside gpt.* is the
base's bit for bit (unlike the naive merge people script, observed on real Trainer output), a merge of a model with
itself is that model, and weights not summing to 1, other bases, vocabularies and configs are refused."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest
import torch
from test_repair import strict_load

from xtts_qa.cache import file_digest
from xtts_qa.cli import main
from xtts_qa.errors import InputError, UsageError
from xtts_qa.merge import PROVENANCE_FILE, MergeOptions, merge, merge_weights
from xtts_qa.safeload import load_torch


def _inference_state(path: Path) -> dict[str, torch.Tensor]:
    """A model's tensors in the inference namespace, as coqui's loader sees them."""
    from xtts_qa.checkpoint import open_bundle

    bundle = open_bundle(path)
    assert bundle.checkpoint is not None
    return bundle.checkpoint.tensors


def _assert_frozen_is_base(out: Path, base: Path) -> None:
    merged = load_torch(out / "model.pth")["model"]
    ref = load_torch(base / "model.pth")["model"]
    assert list(merged) == list(ref)
    for key, value in ref.items():
        if not key.startswith("gpt.") or not value.is_floating_point():
            assert merged[key].dtype == value.dtype and torch.equal(merged[key], value), key
    for name in ("config.json", "vocab.json", "dvae.pth", "mel_stats.pth", "speakers_xtts.pth"):
        assert (out / name).read_bytes() == (base / name).read_bytes(), name


@pytest.mark.parametrize(
    ("method", "weights"), [("average", ["0.3", "0.7"]), ("task-vector", ["0.25", "0.75"]), ("average", [])]
)
def test_merge_of_a_model_with_itself_is_the_model(family, tmp_path, method, weights):
    fam, targets = family
    ft = targets["finetune"]
    result = merge([ft, ft], fam.base.folder, weights, tmp_path / "m", MergeOptions(method=method))
    assert result.after.exit_code == 0
    merged = load_torch(result.out / "model.pth")["model"]
    original = load_torch(ft / "model.pth")["model"]
    assert merged.keys() == original.keys()
    assert all(merged[k].dtype == original[k].dtype and torch.equal(merged[k], original[k]) for k in original)


def test_three_way_merge_is_the_weighted_gpt_average_and_the_base_elsewhere(family, tmp_path):
    fam, targets = family
    inputs = [targets["finetune"], targets["trainer-run"], targets["compacted-export"]]  # three key layouts
    result = merge(inputs, fam.base.folder, ["0.5", "0.3", "0.2"], tmp_path / "m")
    assert result.after.exit_code == 0, [f"{f.code}: {f.message}" for f in result.after.findings]
    assert result.merged > 0 and result.copied > 0
    _assert_frozen_is_base(result.out, fam.base.folder)
    states = [_inference_state(p) for p in inputs]
    merged = load_torch(result.out / "model.pth")["model"]
    for key in [k for k in merged if k.startswith("gpt.") and merged[k].is_floating_point()]:
        want = sum(w * s[key].double() for w, s in zip((0.5, 0.3, 0.2), states, strict=True)).float()
        _assert_within_one_ulp(merged[key], want, key)
    strict_load(result.out)
    record = json.loads((result.out / PROVENANCE_FILE).read_text())
    assert record["method"] == "average" and record["weights_used"] == [0.5, 0.3, 0.2]
    assert [i["model_digest"] for i in record["inputs"]] == [file_digest(_model(p)) for p in inputs]
    assert record["base"]["model_digest"] == file_digest(fam.base.model)
    assert record["versions"]["torch"] == importlib.metadata.version("torch")


def _assert_within_one_ulp(got: torch.Tensor, want: torch.Tensor, key: str) -> None:
    """float64 sums rounded once to float32: equal to the reference up to the last bit (FMA vs separate multiply)."""
    assert got.dtype == want.dtype, key
    assert bool(((got.double() - want.double()).abs() <= want.double().abs() * 2.0**-23 + 1e-30).all()), key


def _model(path: Path) -> Path:
    return path / "model.pth" if path.is_dir() else path


def test_weights_must_sum_to_one_unless_normalised(family, tmp_path, capsys):
    fam, targets = family
    ft = targets["finetune"]
    with pytest.raises(UsageError, match="sum to 1.2"):
        merge([ft, ft], fam.base.folder, ["0.5", "0.7"], tmp_path / "m")
    assert not (tmp_path / "m").exists()
    assert (
        main(
            [
                "-q",
                "merge",
                str(ft),
                str(ft),
                "--base",
                str(fam.base.folder),
                "--weights",
                "0.5,0.7",
                "--out",
                str(tmp_path / "cli"),
            ]
        )
        == 2
    )
    assert "XQ901" in capsys.readouterr().err and not (tmp_path / "cli").exists()
    assert merge_weights(["0.5", "0.7"], 2, normalise=True) == pytest.approx([0.5 / 1.2, 0.7 / 1.2])
    result = merge([ft, ft], fam.base.folder, ["1", "3"], tmp_path / "n", MergeOptions(normalise=True))
    assert result.weights == (0.25, 0.75) and result.after.exit_code == 0
    with pytest.raises(UsageError, match="one weight per input"):
        merge_weights(["1"], 2)
    with pytest.raises(UsageError, match="at least two"):
        merge([ft], fam.base.folder, [], tmp_path / "one")


def test_inputs_from_another_base_are_refused(family, tmp_path):
    fam, _ = family
    other_ft = fam.folder("merge-input-other-base", fam.finetune(31, files=fam.other), support_from=fam.other).folder
    ours = fam.folder("merge-input-ours", fam.finetune(32)).folder
    with pytest.raises(InputError, match="not a fine-tune of the base.*XQ902"):
        merge([ours, other_ft], fam.base.folder, [], tmp_path / "m")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        ("vocab-reordered", "vocab.json differs"),
        ("config-v1-defaults", "another architecture"),
        ("diverged-nan", "XQ601"),
    ],
)
def test_mismatched_vocab_config_or_broken_inputs_are_refused(family, tmp_path, scenario, message, capsys):
    fam, targets = family
    with pytest.raises(InputError, match=message):
        merge([targets["finetune"], targets[scenario]], fam.base.folder, [], tmp_path / "m")
    assert (
        main(
            [
                "-q",
                "merge",
                str(targets["finetune"]),
                str(targets[scenario]),
                "--base",
                str(fam.base.folder),
                "--out",
                str(tmp_path / "cli"),
            ]
        )
        == 2
    )
    assert not (tmp_path / "m").exists() and not (tmp_path / "cli").exists()


def test_merge_never_overwrites(family, tmp_path, capsys):
    fam, targets = family
    out = tmp_path / "m"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    ft = targets["finetune"]
    assert main(["-q", "merge", str(ft), str(ft), "--base", str(fam.base.folder), "--out", str(out)]) == 2
    assert (out / "notes.txt").read_text() == "mine"
    assert main(["-q", "merge", str(ft), str(ft), "--base", str(fam.base.folder), "--out", str(ft / "merged")]) == 2
    assert "overlaps" in capsys.readouterr().err and not (ft / "merged").exists()


@pytest.mark.slow
def test_merge_of_real_trainer_fine_tunes(trainer_runs, tmp_path):
    """Two real fine-tunes (coqui GPTTrainer + Trainer.fit): a compacted export of run 1 and run 2's best_model.pth.
    The naive float32 average the generator made of the same models leaves frozen tensors off the base and turns
    integer buffers into floats (observed); ours keeps them bit-identical and passes the check."""
    naive = trainer_runs.observations["merge_ok"]
    assert naive["frozen_bit_identical"] < naive["frozen_tensors"] and naive["int_buffers_now_float"]
    inputs = [trainer_runs.export, trainer_runs.run2_from_export / "best_model.pth"]
    result = merge(inputs, trainer_runs.base, ["0.6", "0.4"], tmp_path / "m")
    assert result.after.exit_code == 0, [f"{f.code}: {f.message}" for f in result.after.findings]
    _assert_frozen_is_base(result.out, trainer_runs.base)
    strict_load(result.out)
    a, b = (_inference_state(p) for p in inputs)
    merged = load_torch(result.out / "model.pth")["model"]
    changed = [k for k in merged if k.startswith("gpt.") and not torch.equal(a[k], b[k])]
    assert changed  # the two fine-tunes really differ
    for key in changed:
        _assert_within_one_ulp(merged[key], (0.6 * a[key].double() + 0.4 * b[key].double()).float(), key)
    with pytest.raises(UsageError):
        merge(inputs, trainer_runs.base, ["0.7", "0.6"], tmp_path / "scaled")
