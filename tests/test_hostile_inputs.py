"""Hostile and broken inputs, one mechanism at a time: the resource contract, the error boundary, payload types,
self-verifying caches, bounded YAML, and no option injection into espeak-ng."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch
import yaml

from xtts_qa import architecture
from xtts_qa.architecture import ConfigOutOfRange, expected_architecture
from xtts_qa.checkpoint import _classify, open_bundle
from xtts_qa.demo.factory import model_args_for
from xtts_qa.errors import InputError, UsageError
from xtts_qa.evaluation.artifact_cache import EvalCache
from xtts_qa.inputs import read_json, require_regular_file
from xtts_qa.limits import MAX_NESTING, MODEL_ARG_RANGES, TensorBudget, model_args_problems, tensor_problem
from xtts_qa.safeload import load_torch
from xtts_qa.safeyaml import YamlTooLarge, load_yaml, load_yaml_text

if TYPE_CHECKING:
    from xtts_qa.evaluation.references import Reference

# -- the resource contract: tensor metadata ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda: torch.empty(3, 4, device="meta"), "meta tensor"),
        (lambda: torch.randn(3, 4).to_sparse(), "sparse_coo layout"),
        (lambda: torch.randn(3, 4).to_sparse_csr(), "sparse_csr layout"),
        (lambda: torch.quantize_per_tensor(torch.randn(3, 4), 0.1, 0, torch.qint8), "quantized"),
        (lambda: torch.ones(1).expand(10**6, 10**6), "more than the limit"),
        (lambda: torch.ones(1, dtype=torch.float16).expand(2**15, 2**15), "more than the limit"),
        (lambda: torch.ones(1, dtype=torch.float16).expand(2**11, 2**10), "storage holds 1"),
    ],
    ids=["meta", "sparse", "csr", "quantized", "1e12-stride0", "fp16-2^30", "fp16-2^21-expanded"],
)
def test_tensors_coqui_cannot_load_or_we_refuse_to_scan(make, needle: str) -> None:
    reason = tensor_problem(make())
    assert reason and needle in reason


def test_ordinary_and_small_expanded_tensors_pass() -> None:
    assert tensor_problem(torch.randn(6681, 8)) is None
    assert tensor_problem(torch.ones(1).expand(1024)) is None  # loads fine in load_state_dict (copy_ of a view)
    assert tensor_problem(torch.zeros(0, 5)) is None
    assert tensor_problem(torch.ones(3, dtype=torch.int64)) is None  # int buffers exist (num_batches_tracked)


def test_the_meta_tensor_file_is_kept_out_of_the_scan(tmp_path: Path) -> None:
    state = {
        "gpt.a": torch.ones(4),
        "gpt.b": torch.empty(4, device="meta"),
        "xtts.gpt.c": torch.ones(1).expand(10**6, 10**6),
    }
    ckpt = _classify({"model": state})
    assert set(ckpt.tensors) == {"gpt.a"}
    assert set(ckpt.tensor_problems) == {"gpt.b", "gpt.c"} and "meta" in ckpt.tensor_problems["gpt.b"]
    assert set(ckpt.raw_keys) == set(state)  # still accounted for as stored keys


def test_many_views_of_one_storage_are_refused_beyond_the_budget() -> None:
    big = torch.zeros(1000, 1000)
    budget = TensorBudget()
    verdicts = [budget.admit(big) for _ in range(10)]
    assert verdicts[0] is None and verdicts[1] is None  # tied weights share a storage
    assert any(v and "aliased" in v for v in verdicts)


def test_released_xtts_v2_sizes_sit_inside_the_model_args_ranges() -> None:
    full = model_args_for("full")
    assert model_args_problems(full) == []
    for name, value in {
        "gpt_layers": 30,
        "gpt_n_model_channels": 1024,
        "gpt_n_heads": 16,
        "gpt_number_text_tokens": 6681,
        "gpt_num_audio_tokens": 1026,
    }.items():
        lo, hi = MODEL_ARG_RANGES[name]
        assert lo <= value and value * 4 <= hi, name  # comfortably inside: room for fine-tunes 4x larger


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (100_000, "gpt_layers = 100000 is outside the allowed range 0-128"),
        (10**400, "about 10^400"),
        ("30", "is a str, not an integer"),
        (-1, "outside the allowed range"),
        (float("nan"), "not a whole number"),
    ],
)
def test_model_args_out_of_range_are_refused_before_building(value, needle: str) -> None:
    args = {**model_args_for("tiny"), "gpt_layers": value}
    with pytest.raises(ConfigOutOfRange) as err:
        expected_architecture(args, 100)
    assert needle in str(err.value)


# -- self-verifying architecture cache; an unusable cache is the environment's problem -----------------------


def test_poisoned_architecture_entries_are_rebuilt_and_reported_once(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setenv("XTTS_QA_CACHE", str(tmp_path))
    first = expected_architecture(model_args_for("tiny"), 91)
    (entry,) = (tmp_path / "arch").iterdir()
    good = json.loads(entry.read_text())
    poisons = [
        {**good, "payload": {**good["payload"], "text_tokens": 5}},  # checksum no longer matches
        {**good, "key": "someone-else"},  # a copy of another entry
        {**good, "format": 1},
        {"format": 3, "payload": "x" * 10},
    ]
    for poison in poisons:
        entry.write_text(json.dumps(poison))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="xtts_qa"):
            assert expected_architecture(model_args_for("tiny"), 91) == first
        assert json.loads(entry.read_text())["sha256"] == good["sha256"]  # rewritten
    entry.write_text("[" * 100_000 + "]" * 100_000)  # deeply nested: a RecursionError inside json
    assert expected_architecture(model_args_for("tiny"), 91) == first


def test_a_file_where_the_cache_folder_should_be_builds_in_memory(tmp_path: Path, monkeypatch, caplog) -> None:
    (tmp_path / "cache").write_text("a file")
    monkeypatch.setenv("XTTS_QA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(architecture, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="xtts_qa"):
        arch = expected_architecture(model_args_for("tiny"), 92)
        expected_architecture(model_args_for("tiny"), 92)
    assert arch.text_tokens == 92
    warnings = [r.getMessage() for r in caplog.records if "cache" in r.getMessage()]
    assert len(warnings) == 1 and "XTTS_QA_CACHE" in warnings[0]


def test_a_full_disk_is_not_the_models_fault(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XTTS_QA_CACHE", str(tmp_path))

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(architecture, "atomic_write_bytes", full)
    assert expected_architecture(model_args_for("tiny"), 93).text_tokens == 93


def test_a_read_only_cache_as_another_user(family) -> None:
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root to run the check as nobody (root writes into read-only folders)")
    import tempfile

    fam, targets = family
    top = Path(tempfile.mkdtemp(prefix="xtts_qa_ro_"))  # pytest's own tmp folders are closed to other users
    try:
        model = Path(shutil.copytree(targets["finetune"], top / "m"))
        cache = top / "ro-cache"
        cache.mkdir()
        for p in (top, model):
            os.chmod(p, 0o755)
        os.chmod(cache, 0o555)
        env = {**os.environ, "XTTS_QA_CACHE": str(cache), "HOME": str(cache)}
        done = subprocess.run(
            [
                "setpriv",
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                str(Path(sys.executable).parent / "xtts-qa"),
                "check",
                str(model),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            cwd="/",
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert "Traceback" not in done.stderr and "XTTS_QA_CACHE" in done.stderr  # one warning naming the fix
    finally:
        shutil.rmtree(top, ignore_errors=True)


# -- payload types and config shapes -------------------------------------------------------------------------


@pytest.fixture()
def model_copy(family, tmp_path: Path) -> Path:
    fam, targets = family
    return Path(shutil.copytree(targets["finetune"], tmp_path / "m"))


@pytest.mark.parametrize("name", ["dvae.pth", "mel_stats.pth", "speakers_xtts.pth"])
@pytest.mark.parametrize("payload", [None, "text", [1, 2]], ids=["none", "str", "list"])
def test_none_or_wrong_type_support_files_count_as_missing(model_copy: Path, name: str, payload) -> None:
    (model_copy / name).unlink()
    torch.save(payload, model_copy / name)
    role = {"dvae.pth": "dvae", "mel_stats.pth": "mel_stats", "speakers_xtts.pth": "speakers"}[name]
    bundle = open_bundle(model_copy)
    problem = bundle.problem(role)
    assert problem is not None and problem.kind == "missing" and "as good as a missing file" in problem.problem
    if role != "speakers":  # the fine-tune needs dvae.pth and mel_stats.pth: as if absent
        from xtts_qa.engine import check
        from xtts_qa.rules import CheckOptions

        report = check(model_copy, None, CheckOptions(intent="finetune"))
        assert "XQ702" in report.codes() and report.exit_code == 1


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("null", "holds a JSON null"),
        ('{"model_args": [1]}', "model_args is a JSON array"),
        ('{"model_args": {}, "languages": 5}', "languages is a JSON number"),
        ('{"model_args": {}, "languages": [1]}', "languages must list"),
        ("[" * 100_000 + "]" * 100_000, "nests more than"),
    ],
)
def test_config_json_that_xttsconfig_cannot_load(model_copy: Path, text: str, needle: str) -> None:
    (model_copy / "config.json").unlink()
    (model_copy / "config.json").write_text(text)
    bundle = open_bundle(model_copy)
    problem = bundle.problem("config")
    assert bundle.config is None and problem is not None and needle in problem.problem


def test_a_self_referential_pickled_config_is_a_one_line_problem(model_copy: Path) -> None:
    state = load_torch(model_copy / "model.pth", mmap=False)["model"]
    config: dict = {}
    config["again"] = config
    (model_copy / "model.pth").unlink()
    torch.save({"model": state, "config": config}, model_copy / "model.pth")
    problem = open_bundle(model_copy).problem("model")
    assert problem is not None and "contains itself" in problem.problem


def test_numpy_and_legacy_pickles_name_the_refused_global(tmp_path: Path) -> None:
    for legacy in (False, True):
        path = tmp_path / f"np{legacy}.pth"
        torch.save({"model": {"a": np.ones(3)}}, path, _use_new_zipfile_serialization=not legacy)
        with pytest.raises(InputError) as err:
            load_torch(path)
        assert "numpy" in err.value.problem and "unknown" not in err.value.problem


# -- the error boundary: filesystem oddities -----------------------------------------------------------------


def test_fifos_and_devices_are_refused_without_opening_them(tmp_path: Path) -> None:
    fifo = tmp_path / "config.json"
    os.mkfifo(fifo)  # opening it would block forever
    with pytest.raises(InputError, match="FIFO"):
        read_json(fifo)
    with pytest.raises(InputError, match="character device"):
        load_torch(Path("/dev/zero"))
    loop = tmp_path / "loop.json"
    loop.symlink_to(loop)
    with pytest.raises(InputError, match="symbolic link loop"):
        require_regular_file(loop)
    with pytest.raises(InputError, match="too long"):
        read_json(tmp_path / ("x" * 5000))


def test_permission_denied_is_an_input_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads mode-000 files; tests/test_hostile_corpus.py covers this as nobody")
    path = tmp_path / "config.json"
    path.write_text("{}")
    os.chmod(path, 0)
    with pytest.raises(InputError, match="permission denied"):
        read_json(path)


# -- bounded YAML and the suite schema ------------------------------------------------------------------------


def _laughs(levels: int = 9) -> str:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    prev = "a"
    for name in "bcdefghijk"[: levels - 1]:
        text += f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]\n"
        prev = name
    return text


def test_billion_laughs_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(_laughs())
    assert len(path.read_bytes()) < 1000
    with pytest.raises(InputError, match="expands to more than"):
        load_yaml(path)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("a: &a [*a]", "recursive alias"),
        ("[" * 50_000 + "]" * 50_000, f"more than {MAX_NESTING} levels"),
    ],
)
def test_recursive_and_deep_yaml(text: str, needle: str) -> None:
    with pytest.raises(YamlTooLarge, match=needle):
        load_yaml_text(text)


def test_ordinary_yaml_with_aliases_still_loads() -> None:
    assert load_yaml_text("x: &x {a: 1}\ny: *x") == {"x": {"a": 1}, "y": {"a": 1}}
    with pytest.raises(yaml.YAMLError):
        load_yaml_text("a: [")


def _suite(tmp_path: Path, sentences: list) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(
        yaml.safe_dump({"name": "s", "reference": {"espeak": {"text": "Hello there."}}, "sentences": sentences})
    )
    return path


@pytest.mark.parametrize("text", ["   ", "\n\t", "x" * 10_000])
def test_whitespace_only_or_huge_sentences_break_the_schema(tmp_path: Path, text: str) -> None:
    from xtts_qa.evaluation.suite import load_suite

    with pytest.raises(InputError) as err:
        load_suite(_suite(tmp_path, [{"id": "a", "text": text}]))
    assert "sentences/0/text" in str(err.value) and len(str(err.value)) < 400  # never repeats the value


# -- no option injection ----------------------------------------------------------------------------------------


@pytest.fixture()
def espeak_shim(tmp_path: Path, monkeypatch) -> Path:
    """espeak-ng on PATH behind a wrapper that logs every argument it is given, then runs the real one."""
    real = shutil.which("espeak-ng")
    if real is None:
        pytest.skip("espeak-ng is not installed (scripts/bootstrap.sh installs it)")
    shim = tmp_path / "shim"
    shim.mkdir()
    log = tmp_path / "argv.log"
    (shim / "espeak-ng").write_text(
        f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a" >> {log}; done\nexec {real} "$@"\n'
    )
    os.chmod(shim / "espeak-ng", 0o755)
    monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")
    return log


def _unused_reference(tmp_path: Path) -> Reference:
    """A speaker reference for a command backend whose template has no ``{reference}`` (the file is never read)."""
    from xtts_qa.evaluation.audio import Clip
    from xtts_qa.evaluation.references import REFERENCE_RATE, Reference

    path = tmp_path / "unused.wav"
    return Reference("narrator", path, str(path), "unused", Clip(np.zeros(1, dtype=np.float32), REFERENCE_RATE))


def _espeak_reference(text: str, out: Path) -> bytes:
    subprocess.run(
        [shutil.which("espeak-ng") or "espeak-ng", "-v", "en-us", "-w", str(out), "--", text],
        check=True,
        capture_output=True,
    )
    return out.read_bytes()


def test_command_backend_never_passes_sentence_text_as_an_option(tmp_path: Path, espeak_shim: Path) -> None:
    import soundfile as sf

    from xtts_qa.evaluation.suite import Sentence
    from xtts_qa.evaluation.synth import CommandBackend, SynthRequest

    ref = _unused_reference(tmp_path)

    victim = tmp_path / "x.wav"
    backend = CommandBackend("espeak")  # the default template
    outputs = {
        text: backend.synthesize(SynthRequest(Sentence("a", text, "en", "narrator"), ref, 1))
        for text in ["-f/etc/hostname", f"-w{victim}"]
    }
    logged = espeak_shim.read_text().splitlines()
    assert not [a for a in logged if "hostname" in a or str(victim) in a], logged  # espeak-ng never saw the text
    assert not victim.exists()
    for text, out in outputs.items():
        _espeak_reference(text, tmp_path / "expected.wav")
        expected, rate = sf.read(str(tmp_path / "expected.wav"), dtype="float32")
        assert out.sample_rate == rate and np.array_equal(out.samples, expected)  # speech of the text itself


def test_a_bare_text_placeholder_refuses_option_like_sentences(tmp_path: Path) -> None:
    from xtts_qa.evaluation.suite import Sentence
    from xtts_qa.evaluation.synth import CommandBackend, SynthRequest

    ref = _unused_reference(tmp_path)

    bare = CommandBackend("espeak", "espeak-ng -v {voice} -w {out} {text}")
    with pytest.raises(UsageError, match="after `--`"):
        bare.synthesize(SynthRequest(Sentence("a", "-f/etc/hostname", "en", "n"), ref, 1))
    safe = CommandBackend("espeak", "espeak-ng -v {voice} -w {out} -- {text}")
    out = safe.synthesize(SynthRequest(Sentence("a", "-f/etc/hostname", "en", "n"), ref, 1))
    assert out.samples.size > 0


def test_reference_generator_never_passes_text_as_an_option(tmp_path: Path, espeak_shim: Path) -> None:
    from xtts_qa.evaluation.references import _espeak
    from xtts_qa.evaluation.suite import SpeakerSpec

    victim = tmp_path / "ref-victim.wav"
    spec = SpeakerSpec("n", None, "en-us", f"-w{victim}")
    path = _espeak(spec, EvalCache(tmp_path / "cache"))
    assert not victim.exists()
    assert not [a for a in espeak_shim.read_text().splitlines() if str(victim) in a]
    assert path.read_bytes() == _espeak_reference(f"-w{victim}", tmp_path / "expected.wav")


# -- the evaluation cache verifies its entries ------------------------------------------------------------------


@pytest.mark.parametrize("bad", [[1, 2], "text", {"text": 5}, {"vector": "x"}, None])
def test_eval_cache_entries_of_the_wrong_type_are_misses(tmp_path: Path, bad, caplog) -> None:
    cache = EvalCache(tmp_path)
    cache.put_json("text", "k", {"text": "hello", "language_id": None})
    assert cache.get_json("text", "k") == {"text": "hello", "language_id": None}
    path = tmp_path / "text" / "k" / "k.json"
    path.write_text(json.dumps(bad))  # a hand-edited entry (no envelope)
    assert cache.get_json("text", "k") is None
    envelope = json.loads(json.dumps({"format": 1, "key": "k", "value": bad}))
    from xtts_qa.evaluation import artifact_cache as cache_module

    envelope["sum"] = cache_module._checksum(bad)
    path.write_text(json.dumps(envelope))  # well-formed envelope, wrong shape for a transcript
    assert cache.get_json("text", "k") is None
    cache.put_json("embeddings", "e", {"vector": [0.5, 1]})
    moved = tmp_path / "embeddings" / "e" / "e.json"
    (tmp_path / "embeddings" / "f").mkdir()
    shutil.copy(moved, tmp_path / "embeddings" / "f" / "f.json")  # an entry copied under another key
    assert cache.get_json("embeddings", "f") is None and cache.get_json("embeddings", "e") == {"vector": [0.5, 1]}


def test_file_modes_are_untouched_by_reading(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{}")
    before = os.stat(path)
    read_json(path)
    after = os.stat(path)
    assert (before.st_mtime_ns, stat.S_IMODE(before.st_mode)) == (after.st_mtime_ns, stat.S_IMODE(after.st_mode))
