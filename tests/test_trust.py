"""Verdicts a user can trust: the rounding tolerance model, severities by intent, crashed rules, honest digests,
the report contract, and the loader verdict for pickled config objects (observed with coqui-tts itself)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_loader_agreement import coqui_loads

from xtts_qa.cache import file_digest
from xtts_qa.cli import main as cli_main
from xtts_qa.engine import check
from xtts_qa.reporting.provenance import content_hash
from xtts_qa.results import CheckReport, Severity, Status, validate_check_report
from xtts_qa.rules import CheckOptions, registry
from xtts_qa.rules.frozen import FrozenDrift
from xtts_qa.scan import aggregate, rounding_class, scan

pytest_plugins = ["pytester"]

# ---------------------------------------------------------------- the tolerance model, on tensors

_values = st.lists(st.floats(min_value=-60000.0, max_value=60000.0, allow_nan=False, width=32), min_size=1, max_size=64)
_weights = st.lists(st.floats(min_value=0.01, max_value=1.0), min_size=2, max_size=8)


@settings(max_examples=200, deadline=None)
@given(values=_values, dtype=st.sampled_from([torch.float16, torch.bfloat16]))
def test_half_precision_round_trip_is_rounding(values: list[float], dtype: torch.dtype) -> None:
    base = torch.tensor(values, dtype=torch.float32)
    kind, _ = rounding_class(base.to(dtype).float(), base)
    assert kind in ("identical", "float32", "float16", "bfloat16")
    kind_stored, _ = rounding_class(base.to(dtype), base)  # saved in half precision, compared as stored
    assert kind_stored in ("identical", "float32", "float16", "bfloat16")


@settings(max_examples=200, deadline=None)
@given(values=_values, weights=_weights)
def test_average_of_identical_tensors_is_rounding(values: list[float], weights: list[float]) -> None:
    base = torch.tensor(values, dtype=torch.float32)
    total = sum(weights)
    norm = [w / total for w in weights]  # weights summing to 1, as a correct merge uses
    merged = sum(w * base.clone() for w in norm)
    assert isinstance(merged, torch.Tensor)
    kind, ulps = rounding_class(merged, base)
    assert kind in ("identical", "float32"), (kind, ulps)


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.floats(min_value=0.01, max_value=10.0), min_size=4, max_size=64),
    rel=st.floats(min_value=1e-4, max_value=0.5),
    index=st.integers(min_value=0),
)
def test_change_beyond_rounding_is_changed(values: list[float], rel: float, index: int) -> None:
    base = torch.tensor(values, dtype=torch.float32)
    moved = base.clone()
    i = index % len(values)
    moved[i] = moved[i] * (1 + rel) + 1e-3  # one element trained: off every half-precision grid too
    kind, _ = rounding_class(moved, base)
    assert kind == "changed"


def test_nan_is_never_rounding() -> None:
    base = torch.ones(8)
    bad = base.clone()
    bad[3] = float("nan")
    assert rounding_class(bad, base)[0] == "changed"


def test_aggregate_separates_rounding_from_change() -> None:
    g = torch.Generator().manual_seed(0)
    base = {f"hifigan_decoder.t{i}": torch.randn(64, generator=g) for i in range(4)}
    cand = {k: v.clone() for k, v in base.items()}
    cand["hifigan_decoder.t0"] = base["hifigan_decoder.t0"].half().float()
    cand["hifigan_decoder.t1"] = 0.6 * base["hifigan_decoder.t1"] + 0.4 * base["hifigan_decoder.t1"]
    drift = aggregate(scan(cand, base), base)
    assert drift.rounding_only and drift.rounding == "float16" and drift.beyond_rounding == 0
    cand["hifigan_decoder.t2"] = base["hifigan_decoder.t2"] + 0.01
    drift = aggregate(scan(cand, base), base)
    assert not drift.rounding_only and drift.beyond_rounding == 1 and drift.examples[0] == "hifigan_decoder.t2"


# ---------------------------------------------------------------- the tolerance model, through the rules


def _rewrite(folder: Path, edit) -> None:
    blob = torch.load(folder / "model.pth", weights_only=True)
    blob["model"] = edit(blob["model"])
    (folder / "model.pth").unlink()
    torch.save(blob, folder / "model.pth")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_frozen_parts_rounded_through_half_precision_warn_not_error(family, tmp_path: Path, dtype: torch.dtype) -> None:
    fam, targets = family
    folder = shutil.copytree(targets["finetune"], tmp_path / "m")
    _rewrite(
        folder,
        lambda s: {
            k: (v.to(dtype).float() if v.is_floating_point() and not k.startswith("gpt.") else v) for k, v in s.items()
        },
    )
    report = check(folder, fam.base.folder)
    xq501 = [f for f in report.findings if f.code == "XQ501"]
    assert xq501 and all(f.severity is Severity.WARNING for f in xq501)
    assert all(
        str(dtype).replace("torch.", "") in f.message and "trained" not in f.message.replace("not trained", "")
        for f in xq501
    )
    assert report.exit_code == 0


def test_frozen_parts_trained_beyond_rounding_are_errors(family, tmp_path: Path) -> None:
    fam, targets = family
    folder = shutil.copytree(targets["finetune"], tmp_path / "m")
    g = torch.Generator().manual_seed(3)

    def nudge(state):
        key = next(
            k
            for k, v in state.items()
            if k.startswith("hifigan_decoder.waveform_decoder") and v.is_floating_point() and v.numel() > 100
        )
        state[key] = state[key] + 1e-3 * torch.randn(state[key].shape, generator=g)
        return state

    _rewrite(folder, nudge)
    report = check(folder, fam.base.folder)
    xq501 = [f for f in report.findings if f.code == "XQ501"]
    assert [f.severity for f in xq501] == [Severity.ERROR] and report.exit_code == 1
    assert xq501[0].details["beyond_rounding"] == 1


# ---------------------------------------------------------------- severities by intent


def test_every_rule_documents_a_severity_per_intent() -> None:
    for rule in registry().values():
        severities = rule.severities()
        assert set(severities) == {"inference", "finetune", "restore"}
        assert any(s is not None for s in severities.values()), rule.code


def test_restore_rules_do_not_apply_to_inference(family) -> None:
    fam, targets = family
    report = check(targets["finetune"], fam.base.folder, CheckOptions(intent="inference"))
    assert not {"XQ701", "XQ703"} & report.codes()
    skipped = {r.code: r.skip_reason for r in report.results if r.status is Status.SKIPPED}
    assert "does not apply to --intent inference" in skipped["XQ701"]


def test_compacted_export_restores_like_its_trainer_checkpoint(family) -> None:
    fam, targets = family
    report = check(targets["compacted-export"], fam.base.folder, CheckOptions(intent="restore"))
    notes = [f for f in report.findings if f.code == "XQ701"]
    assert report.exit_code == 0, [f.message for f in report.findings if f.severity is Severity.ERROR]
    assert notes and notes[0].severity is Severity.INFO and notes[0].details["lost"] == 0
    assert notes[0].details["from_init"] > 0 and notes[0].details["crash"] is None


def test_inference_model_as_restore_path_names_the_keyerror(family) -> None:
    fam, targets = family
    report = check(targets["inference-as-restore"], fam.base.folder, CheckOptions(intent="restore"))
    found = [f for f in report.findings if f.code == "XQ701"]
    assert found and found[0].severity is Severity.ERROR
    assert found[0].details["restored"] == 0 and found[0].details["crash"] == "step"
    assert "KeyError: 'step'" in found[0].message


# ---------------------------------------------------------------- a crashed rule is loud


@pytest.fixture
def crashing_rule(monkeypatch: pytest.MonkeyPatch):
    def boom(self, ctx):
        raise ZeroDivisionError("injected for the test")

    monkeypatch.setattr(FrozenDrift, "check", boom)
    return FrozenDrift


def test_crashed_rule_fails_the_check(family, crashing_rule, capsys: pytest.CaptureFixture[str]) -> None:
    fam, targets = family
    report = check(targets["finetune"], fam.base.folder)
    crashed = [r for r in report.results if r.status is Status.ERROR]
    assert [r.code for r in crashed] == ["XQ501"] and "ZeroDivisionError" in crashed[0].error
    assert report.exit_code == 2
    data = report.to_dict()
    validate_check_report(data)
    assert data["exit_code"] == 2 and CheckReport.from_dict(data).crashed[0].code == "XQ501"
    assert cli_main(["check", str(targets["finetune"]), "--base", str(fam.base.folder)]) == 2
    out = capsys.readouterr().out
    assert "crashed" in out and "CANNOT CHECK" in out and "HEALTHY" not in out.replace("UNHEALTHY", "")


def test_crashed_rule_fails_the_pytest_item(family, pytester: pytest.Pytester) -> None:
    fam, targets = family
    pytester.makeconftest(
        "from xtts_qa.rules.frozen import FrozenDrift\n"
        "def _boom(self, ctx):\n    raise ZeroDivisionError('injected for the test')\n"
        "FrozenDrift.check = _boom\n"
    )
    result = pytester.runpytest_subprocess(
        "-m",
        "health",
        f"--xtts-checkpoint={targets['finetune']}",
        f"--xtts-base={fam.base.folder}",
        "--xtts-select=XQ501,XQ502",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(
        ["*XQ501 frozen-weights-changed crashed*", "*ZeroDivisionError: injected for the test*"]
    )


# ---------------------------------------------------------------- digests


def test_same_size_same_mtime_swap_changes_the_digest(tmp_path: Path) -> None:
    a, b = tmp_path / "a.pth", tmp_path / "b.pth"
    a.write_bytes(b"x" * 4096)
    b.write_bytes(b"y" * 4096)
    target = tmp_path / "model.pth"
    shutil.copy2(a, target)
    first = file_digest(target)
    stat = target.stat()
    shutil.copyfile(b, tmp_path / "swap.pth")
    os.utime(tmp_path / "swap.pth", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(tmp_path / "swap.pth", target)  # rsync -a style: same size, same mtime, new inode
    assert target.stat().st_size == stat.st_size and target.stat().st_mtime_ns == stat.st_mtime_ns
    assert file_digest(target) != first
    with open(target, "r+b") as fh:  # rewritten in place (same inode), mtime put back like cp -p / touch -r
        fh.write(b"z" * 4096)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert file_digest(target) != file_digest(b) and file_digest(target) != first


def test_content_hash_covers_checkpoint_only_folders(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    (run / "checkpoint_10.pth").write_bytes(b"a" * 100)
    first = content_hash(run)
    (run / "checkpoint_10.pth").write_bytes(b"b" * 100)
    assert content_hash(run) != first


# ---------------------------------------------------------------- one report contract


def test_reports_round_trip_through_the_schema(family) -> None:
    fam, targets = family
    for name in ("finetune", "sequential-broken-dvae", "truncated-copy"):
        report = check(targets[name], fam.base.folder, CheckOptions(intent="finetune"))
        data = json.loads(json.dumps(report.to_dict()))
        validate_check_report(data)
        back = CheckReport.from_dict(data)
        assert back.to_dict() == data and back.exit_code == report.exit_code


def test_schema_rejects_a_malformed_report() -> None:
    with pytest.raises(ValueError, match="not a check report"):
        CheckReport.from_dict({"schema_version": 2, "kind": "check", "results": "nope"})


# ---------------------------------------------------------------- pickled config objects (coqui is the oracle)


def _with_pickled_config(folder: Path, module: str) -> None:
    """model.pth carrying the config as an XttsConfig object whose nested audio/args classes sit under ``module``."""
    from TTS.tts.configs import xtts_config
    from TTS.tts.configs.xtts_config import XttsConfig

    config = XttsConfig()
    config.load_json(str(folder / "config.json"))
    classes = (xtts_config.XttsAudioConfig, xtts_config.XttsArgs)
    saved = [c.__module__ for c in classes]
    try:
        for c in classes:
            c.__module__ = module
        blob = torch.load(folder / "model.pth", weights_only=True)
        blob["config"] = config
        (folder / "model.pth").unlink()
        torch.save(blob, folder / "model.pth")
    finally:
        for c, m in zip(classes, saved, strict=True):
            c.__module__ = m


@pytest.mark.slow
@pytest.mark.parametrize(
    ("module", "coqui_028_loads"), [("TTS.tts.configs.xtts_config", False), ("TTS.tts.models.xtts", True)]
)
def test_pickled_config_verdict_matches_coqui(family, tmp_path: Path, module: str, coqui_028_loads: bool) -> None:
    fam, targets = family
    folder = shutil.copytree(targets["finetune"], tmp_path / "m")
    _with_pickled_config(folder, module)
    report = check(folder, fam.base.folder)
    observed = coqui_loads(shutil.copytree(folder, tmp_path / "coqui-copy"))  # coqui may rewrite the file it loads
    assert report.loads_in_coqui is observed
    import importlib.metadata

    if importlib.metadata.version("coqui-tts") == "0.28.0":  # what was observed with the pinned coqui-tts
        assert observed is coqui_028_loads
    if not observed:
        assert "XQ007" in report.codes()
        assert report.exit_code != 0
        assert any("Unsupported global" in r for r in report.provenance["load_verdict_reasons"])


def test_unreadable_coqui_allowlist_is_unknown_not_loadable(
    family, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rule_cases import _config_object_new_path

    import xtts_qa.loadability as loadability

    fam, targets = family
    folder = _config_object_new_path(shutil.copytree(targets["finetune"], tmp_path / "m"), fam.base.folder)
    monkeypatch.setattr(loadability, "coqui_allowed_globals", lambda: None)  # coqui-tts could not be imported here
    report = check(folder, fam.base.folder)
    assert report.loads_in_coqui is None
    xq007 = [f for f in report.findings if f.code == "XQ007"]
    assert [f.severity for f in xq007] == [Severity.WARNING] and "unknown" in xq007[0].message
