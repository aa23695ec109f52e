"""A hostile-input corpus, generated at test time, run through the ``xtts-qa check`` CLI under resource caps.

Every case must exit 0, 1 or 2 as documented, print no traceback, stay under the caps (2 GB of address space
beyond what the interpreter and its libraries map at start-up, 60 s of CPU for the whole corpus), write nothing
outside the cache folder, and never say HEALTHY (exit 0) for a checkpoint that coqui-tts's own
``Xtts.load_checkpoint(strict=True)`` cannot load: the real loader is the oracle.

The corpus runs in one driver process (``xtts_qa.cli.main``, the console script's entry point, once per case) so
that it pays the torch import once; one case also runs through the installed ``xtts-qa`` script itself, and the
permission-denied cases run the driver as ``nobody`` (setpriv), since root reads every file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from test_loader_agreement import coqui_loads

from xtts_qa.safeload import load_torch

EXTRA_ADDRESS_SPACE = 2_000_000_000
CPU_SECONDS = 60
XTTS_QA = Path(sys.executable).parent / "xtts-qa"

_DRIVER = r"""
import io, json, os, resource, sys, time, contextlib
cases = json.load(open(sys.argv[1]))
import torch, TTS.tts.models.xtts  # what a check may import, mapped before the caps are set
from xtts_qa.cli import main
vm = int([l.split()[1] for l in open("/proc/self/status") if l.startswith("VmSize")][0]) * 1024
cap = vm + int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
used = resource.getrusage(resource.RUSAGE_SELF).ru_utime + resource.getrusage(resource.RUSAGE_SELF).ru_stime
cpu = int(used) + int(sys.argv[4])
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
results = {}
base_env = dict(os.environ)
for case in cases:
    os.environ.clear(); os.environ.update(base_env); os.environ.update(case["env"])
    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(["-q", "check", case["target"], "--json", *case["args"]])
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 2
        except BaseException as exc:
            import traceback; traceback.print_exc(); rc = -1
    try:
        report = json.loads(out.getvalue())
        codes = sorted({f["code"] for r in report["results"] for f in r["findings"]})
    except ValueError:
        report, codes = None, []
    results[case["name"]] = {"rc": rc, "stderr": err.getvalue()[-3000:], "seconds": time.perf_counter() - started,
                             "report": report is not None, "codes": codes, "stdout": out.getvalue()[-20000:]}
json.dump(results, open(sys.argv[2], "w"))
"""


@dataclass(frozen=True)
class Case:
    """One hostile input: how to make it, and the exit codes the README documents for it."""

    name: str
    make: Callable[[Path, dict[str, torch.Tensor]], Path]  # (folder copy, clean state) -> target
    expect: frozenset[int]
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    codes: frozenset[str] = frozenset()  # findings the report must contain


def _save_state(folder: Path, state: dict, **top) -> Path:
    (folder / "model.pth").unlink()
    torch.save({"model": state, **top}, folder / "model.pth")
    return folder


def _with(key: str, make: Callable[[torch.Tensor], object]) -> Callable[[Path, dict], Path]:
    return lambda folder, state: _save_state(folder, {**state, key: make(state[key])})


def _replace(name: str, writer: Callable[[Path], None]) -> Callable[[Path, dict], Path]:
    def make(folder: Path, state: dict) -> Path:
        path = folder / name
        if path.exists() or path.is_symlink():
            path.unlink()
        writer(path)
        return folder

    return make


def _json_edit(edit: Callable[[dict], str]) -> Callable[[Path, dict], Path]:
    def make(folder: Path, state: dict) -> Path:
        data = json.loads((folder / "config.json").read_text())
        (folder / "config.json").unlink()
        (folder / "config.json").write_text(edit(data))
        return folder

    return make


def _args(**changes) -> Callable[[dict], str]:
    def edit(data: dict) -> str:
        data["model_args"].update(changes)
        return json.dumps(data)

    return edit


def _aliased(folder: Path, state: dict) -> Path:
    big = max(state.values(), key=lambda t: t.numel())
    views = {f"gpt.alias.{i}": big for i in range(3000)}  # 3000 views of the largest storage
    return _save_state(folder, {**state, **views})


def _self_referential_config(folder: Path, state: dict) -> Path:
    config: dict = {"model_args": {}}
    config["self"] = config
    return _save_state(folder, state, config=config)


def _deep_config(folder: Path, state: dict) -> Path:
    deep: list = []
    for _ in range(20_000):
        deep = [deep]
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    try:
        return _save_state(folder, state, config={"model_args": deep})
    finally:
        sys.setrecursionlimit(limit)


def _pickle_payload(folder: Path, state: dict) -> Path:
    import pickle

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {folder / 'PWNED'}",))

    (folder / "model.pth").unlink()
    torch.save({"model": state, "extra": Payload()}, folder / "model.pth", pickle_module=pickle)
    return folder


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _long_pointer(folder: Path, state: dict) -> Path:
    (folder / "vocab.json").unlink()
    return _json_edit(lambda d: json.dumps({**d, "model_args": {**d["model_args"], "tokenizer_file": "v" * 5000}}))(
        folder, state
    )


def _none(path: Path) -> None:
    torch.save(None, path)


CASES = [
    Case("healthy-control", lambda f, s: f, frozenset({0})),
    Case(
        "meta-tensor",
        _with("gpt.text_embedding.weight", lambda t: torch.empty(t.shape, device="meta")),
        frozenset({1}),
        codes=frozenset({"XQ604"}),
    ),
    Case(
        "sparse-tensor",
        _with("gpt.text_embedding.weight", lambda t: t.to_sparse()),
        frozenset({1}),
        codes=frozenset({"XQ604"}),
    ),
    Case(
        "quantized-tensor",
        _with("gpt.text_head.weight", lambda t: torch.quantize_per_tensor(t, 0.1, 0, torch.qint8)),
        frozenset({1}),
        codes=frozenset({"XQ604"}),
    ),
    Case(
        "int64-in-float-slot",
        _with("gpt.text_head.weight", lambda t: t.long()),
        frozenset({1}),
        codes=frozenset({"XQ605"}),
    ),
    Case(
        "stride0-1e12-elements",
        _with("gpt.text_head.bias", lambda t: torch.ones(1).expand(10**6, 10**6)),
        frozenset({1}),
        codes=frozenset({"XQ604"}),
    ),
    Case(
        "fp16-2^30-elements",
        _with("gpt.text_head.bias", lambda t: torch.ones(1, dtype=torch.float16).expand(2**15, 2**15)),
        frozenset({1}),
        codes=frozenset({"XQ604"}),
    ),
    Case("3000-aliases-of-one-storage", _aliased, frozenset({1}), codes=frozenset({"XQ604"})),
    Case(
        "nested-tensor",
        _with("gpt.text_head.bias", lambda t: torch.nested.nested_tensor([torch.ones(2), torch.ones(3)])),
        frozenset({1, 2}),
    ),
    Case("model-none", _replace("model.pth", _none), frozenset({2})),
    Case("self-referential-config", _self_referential_config, frozenset({2})),
    Case("20k-deep-config-object", _deep_config, frozenset({2})),
    Case(
        "numpy-pickle",
        _with("gpt.text_head.bias", lambda t: __import__("numpy").ones(3)),
        frozenset({2}),
        codes=frozenset({"XQ003"}),
    ),
    Case("code-pickle", _pickle_payload, frozenset({2}), codes=frozenset({"XQ003"})),
    Case(
        "config-null",
        _replace("config.json", lambda p: p.write_text("null")),
        frozenset({2}),
        codes=frozenset({"XQ001"}),
    ),
    Case(
        "config-200k-deep",
        _replace("config.json", lambda p: p.write_text("[" * 200_000 + "]" * 200_000)),
        frozenset({2}),
    ),
    Case(
        "model-args-string",
        _json_edit(lambda d: json.dumps({**d, "model_args": "abc"})),
        frozenset({2}),
        codes=frozenset({"XQ001"}),
    ),
    Case(
        "languages-int",
        _json_edit(lambda d: json.dumps({**d, "languages": 5})),
        frozenset({2}),
        codes=frozenset({"XQ001"}),
    ),
    Case("gpt-layers-1e5", _json_edit(_args(gpt_layers=100_000)), frozenset({1}), codes=frozenset({"XQ006"})),
    Case(
        "gpt-layers-1e400",
        _json_edit(lambda d: json.dumps(d).replace('"gpt_layers": 1', '"gpt_layers": 1' + "0" * 400)),
        frozenset({1}),
        codes=frozenset({"XQ006"}),
    ),
    Case("5000-char-pointer", _long_pointer, frozenset({1})),
    Case(
        "vocab-200k-deep",
        _replace("vocab.json", lambda p: p.write_text('{"a":' * 200_000 + "1" + "}" * 200_000)),
        frozenset({2}),
    ),
    Case("vocab-binary", _replace("vocab.json", lambda p: p.write_bytes(bytes(range(256)) * 4)), frozenset({2})),
    Case(
        "dvae-none-finetune",
        _replace("dvae.pth", _none),
        frozenset({1}),
        args=("--intent", "finetune"),
        codes=frozenset({"XQ702"}),
    ),
    Case(
        "mel-stats-none-finetune",
        _replace("mel_stats.pth", _none),
        frozenset({1}),
        args=("--intent", "finetune"),
        codes=frozenset({"XQ702"}),
    ),
    Case("speakers-none", _replace("speakers_xtts.pth", _none), frozenset({0, 1})),
    Case(
        "mel-stats-meta",
        _replace("mel_stats.pth", lambda p: torch.save(torch.empty(80, device="meta"), p)),
        frozenset({2}),
        codes=frozenset({"XQ001"}),
    ),
    Case("config-fifo", _replace("config.json", _fifo), frozenset({2}), codes=frozenset({"XQ001"})),
    Case(
        "model-char-device",
        _replace("model.pth", lambda p: p.symlink_to("/dev/zero")),
        frozenset({2}),
        codes=frozenset({"XQ001"}),
    ),
    Case("vocab-symlink-loop", _replace("vocab.json", lambda p: p.symlink_to(p)), frozenset({1, 2})),
    Case("model-is-a-folder", _replace("model.pth", lambda p: p.mkdir()), frozenset({2})),
    Case("cache-is-a-file", lambda f, s: f, frozenset({0}), env=(("XTTS_QA_CACHE", "{cache_file}"),)),
]


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = os.lstat(p)
            out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


def _copy_model(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for f in src.iterdir():
        os.link(f, dst / f.name)  # mutations unlink before writing, so the fixture is never touched
    return dst


def _run_driver(cases: list[dict], work: Path, env: dict[str, str], user: str | None = None) -> dict:
    spec, out = work / "cases.json", work / "results.json"
    spec.write_text(json.dumps(cases))
    driver = work / "driver.py"
    driver.write_text(_DRIVER)
    cmd = [sys.executable, str(driver), str(spec), str(out), str(EXTRA_ADDRESS_SPACE), str(CPU_SECONDS)]
    if user:
        cmd = ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups", *cmd]
    done = subprocess.run(cmd, cwd=work / "cwd", env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"driver died (caps exceeded?): rc {done.returncode}\n{done.stderr[-3000:]}"
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def corpus(family, tmp_path_factory):
    fam, targets = family
    root = tmp_path_factory.mktemp("hostile")
    state = load_torch(targets["finetune"] / "model.pth", mmap=False)["model"]
    (root / "cwd").mkdir()
    home, cache, tmp = root / "home", root / "cache", root / "tmp"
    for d in (home, cache, tmp):
        d.mkdir()
    (root / "cache-file").write_text("not a folder")
    made = []
    for case in CASES:
        folder = _copy_model(targets["finetune"], root / "models" / case.name)
        target = case.make(folder, state)
        env = {k: v.format(cache_file=root / "cache-file") for k, v in case.env}
        made.append({"name": case.name, "target": str(target), "args": list(case.args), "env": env})
    env = {**os.environ, "HOME": str(home), "XTTS_QA_CACHE": str(cache), "TMPDIR": str(tmp)}
    models_before = _snapshot(root / "models")
    results = _run_driver(made, root, env)
    if os.environ.get("XTTS_QA_CORPUS_DUMP"):
        Path(os.environ["XTTS_QA_CORPUS_DUMP"]).write_text(json.dumps(results, indent=1))
    return root, made, results, models_before, env


def test_every_case_exits_as_documented_without_a_traceback(corpus) -> None:
    root, made, results, _, _ = corpus
    wrong = {}
    for case in CASES:
        r = results[case.name]
        lines = [line for line in r["stderr"].splitlines() if line.strip()]
        if r["rc"] not in case.expect or "Traceback" in r["stderr"]:
            wrong[case.name] = (r["rc"], sorted(case.expect), r["stderr"][-600:])
        elif not case.codes <= set(r["codes"]):
            wrong[case.name] = ("missing findings", sorted(case.codes - set(r["codes"])), r["codes"])
        elif r["rc"] == 2 and not r["report"]:  # the promised one line naming the file
            assert len(lines) == 1 and lines[0].startswith("xtts-qa: "), (case.name, lines)
        elif r["rc"] == 2:  # the report ran and names the unreadable or refused file
            assert {"XQ001", "XQ003"} & set(r["codes"]), (case.name, r["codes"])
    assert not wrong, wrong


def test_no_case_is_healthy_when_coqui_cannot_load_it(corpus) -> None:
    root, made, results, _, _ = corpus
    healthy = [m for m in made if results[m["name"]]["rc"] == 0]
    assert {m["name"] for m in healthy} >= {"healthy-control", "cache-is-a-file"}
    for m in healthy:
        folder = Path(m["target"])
        copy = shutil.copytree(folder, root / "oracle" / m["name"], symlinks=True)  # coqui may rewrite legacy files
        assert coqui_loads(copy), f"{m['name']}: xtts-qa says HEALTHY but Xtts.load_checkpoint(strict=True) fails"


def test_nothing_is_written_outside_the_cache(corpus) -> None:
    root, made, results, models_before, env = corpus
    assert _snapshot(root / "models") == models_before, "a user's file was written"
    # the one thing a check writes is its run record: reports/ in the working folder (never beside the model)
    extra = [p for p in (root / "cwd").iterdir() if p.name != "reports"]
    assert not extra, extra
    records = list((root / "cwd" / "reports").glob("*/summary.json"))
    assert records, "every check files a run record"
    for summary in records:
        assert json.loads(summary.read_text())["kind"] == "run"
    # the PulseAudio client library (loaded with the audio stack) leaves its runtime link in ~/.config/pulse
    written = [p for p in Path(env["HOME"]).rglob("*") if p.is_file() and "pulse" not in p.parts]
    assert not written, written
    assert not [p for p in Path(env["TMPDIR"]).iterdir() if not p.name.startswith("pulse-")], list(
        Path(env["TMPDIR"]).iterdir()
    )
    assert not (root / "models" / "code-pickle" / "PWNED").exists()


def test_each_case_is_quick(corpus) -> None:
    root, made, results, _, _ = corpus
    slow = {name: round(r["seconds"], 1) for name, r in results.items() if r["seconds"] > 20}
    assert not slow, slow  # generous: the caps above are the contract, this only catches a hang on one case


def test_the_installed_script_refuses_a_meta_tensor(corpus) -> None:
    root, made, results, _, env = corpus
    target = next(m["target"] for m in made if m["name"] == "meta-tensor")
    done = subprocess.run(
        [str(XTTS_QA), "check", target, "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=root / "cwd",
        timeout=300,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    assert report["loads_in_coqui"] is False
    assert "XQ604" in json.dumps(report)


def test_permission_denied_as_an_unprivileged_user(family) -> None:
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip(
            "needs root to drop to nobody with setpriv (as another user, chmod 000 files are simply unreadable)"
        )
    fam, targets = family
    root = Path(tempfile.mkdtemp(prefix="xtts_qa_perm_"))
    try:
        os.chmod(root, 0o755)
        for d in ("cwd", "home", "cache", "tmp"):
            (root / d).mkdir()
            os.chmod(root / d, 0o777)
        made = []
        for role in ("config.json", "model.pth", "vocab.json", "dvae.pth"):
            folder = root / "models" / role
            shutil.copytree(targets["finetune"], folder)
            os.chmod(root / "models", 0o755)
            os.chmod(folder, 0o755)
            os.chmod(folder / role, 0o000)
            made.append({"name": role, "target": str(folder), "args": [], "env": {}})
        locked = root / "models" / "locked-folder"
        shutil.copytree(targets["finetune"], locked)
        os.chmod(locked, 0o000)
        made.append({"name": "locked-folder", "target": str(locked), "args": [], "env": {}})
        env = {
            **os.environ,
            "HOME": str(root / "home"),
            "XTTS_QA_CACHE": str(root / "cache"),
            "TMPDIR": str(root / "tmp"),
        }
        os.chmod(root, 0o777)  # the driver writes its results here
        results = _run_driver(made, root, env, user="nobody")
        for name, r in results.items():
            assert r["rc"] == 2 and "Traceback" not in r["stderr"], (name, r)
            assert "permission denied" in r["stderr"] + r["stdout"], (name, r["stderr"], r["stdout"][-500:])
    finally:
        shutil.rmtree(root, ignore_errors=True)  # root removes files whatever their mode
