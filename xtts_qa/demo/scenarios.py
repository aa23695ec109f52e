"""The failure catalogue as reproducible model folders: a healthy family and each way checkpoints break.

Every scenario starts from a seeded base model built by :mod:`xtts_qa.demo.factory` and applies what the
real-world mistake does to the files (a prefixed dvae.pth, an averaging merge with weights summing to 1.2, ...).
Each declares the rule codes that must fire (at error severity) and whether coqui-tts's strict loader accepts it.
"""

from __future__ import annotations

import json
import logging
import pickle
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from xtts_qa.cache import link_or_copy
from xtts_qa.demo.factory import (
    ModelFiles,
    build_dvae,
    build_model_folder,
    save_inference,
    save_trainer,
    trainer_mel_tensors,
)
from xtts_qa.results import CheckReport, Severity
from xtts_qa.safeload import load_torch

log = logging.getLogger("xtts_qa")

__all__ = ["Family", "Scenario", "SCENARIOS", "scenario", "build_family"]

_SUPPORT = ("config", "vocab", "dvae", "mel_stats", "speakers")


class Family:
    """A base model (seed 0), an unrelated base (seed 1) and helpers to derive checkpoints from them."""

    def __init__(self, root: Path, size: str = "tiny") -> None:
        self.root = root
        self.size = size
        self.base = self._ensure(root / "base", 0)
        self._other: ModelFiles | None = None

    def _ensure(self, folder: Path, seed: int) -> ModelFiles:
        marker = folder / ".complete"
        if not marker.exists():
            if folder.exists():
                shutil.rmtree(folder)
            build_model_folder(folder, self.size, seed)
            marker.write_text("ok")
        return ModelFiles(folder)

    @property
    def other(self) -> ModelFiles:
        """An unrelated base model (different seed): the ingredient of a cross-base merge."""
        if self._other is None:
            self._other = self._ensure(self.root / "other-base", 1)
        return self._other

    def state(self, files: ModelFiles | None = None) -> dict[str, torch.Tensor]:
        """A model's state dict (inference namespace), loaded into memory."""
        return {k: v.clone() for k, v in load_torch((files or self.base).model, mmap=False)["model"].items()}

    def finetune(self, seed: int, scale: float = 1e-2, files: ModelFiles | None = None) -> dict[str, torch.Tensor]:
        """A simulated GPT fine-tune: every float gpt.* tensor moved by seeded noise; nothing else touched."""
        state = self.state(files)
        g = torch.Generator().manual_seed(1000 + seed)
        for k, v in state.items():
            if k.startswith("gpt.") and v.is_floating_point():
                state[k] = v + scale * v.std().clamp_min(1e-3) * torch.randn(v.shape, generator=g)
        return state

    def folder(
        self, name: str, state: dict[str, torch.Tensor] | None = None, *, support_from: ModelFiles | None = None
    ) -> ModelFiles:
        """A new model folder with ``state`` as model.pth and the base's support files hard-linked in."""
        files = ModelFiles(self.root / name)
        if files.folder.exists():
            shutil.rmtree(files.folder)
        files.folder.mkdir(parents=True)
        src = support_from or self.base
        for role in _SUPPORT:
            link_or_copy(getattr(src, role), getattr(files, role))
        if state is not None:
            save_inference(state, files.model)
        return files


def _average(
    states: list[dict[str, torch.Tensor]], weights: list[float], *, cast_ints: bool = True
) -> dict[str, torch.Tensor]:
    """A naive merge script: weighted sum of every tensor (ints turned to floats when ``cast_ints``)."""
    out = {}
    for k in states[0]:
        if not states[0][k].is_floating_point() and not cast_ints:
            out[k] = states[0][k].clone()
            continue
        out[k] = sum((w * s[k].float() for s, w in zip(states, weights, strict=True)), torch.zeros(()))
    return out


@dataclass(frozen=True)
class Scenario:
    """One catalogued situation.

    Attributes:
        name: short id (also the folder name).
        story: what the user did, in their words.
        expect: codes that must report an error.
        notes: codes that must report, at warning or info severity only (a true but harmless observation).
        forbid: codes that must not fire (a misdiagnosis).
        loads: whether ``Xtts.load_checkpoint(strict=True)`` accepts it.
        intent: the --intent to check with.
        with_base: whether to check against the family's base.
        healthy: True when the check must find no error at all.
        exit_code: the exit code ``xtts-qa check`` must give.
    """

    name: str
    story: str
    build: Callable[[Family], Path]
    expect: frozenset[str] = field(default_factory=frozenset)
    forbid: frozenset[str] = field(default_factory=frozenset)
    notes: frozenset[str] = field(default_factory=frozenset)
    loads: bool = True
    intent: str = "inference"
    with_base: bool = True
    exit_code: int | None = None

    @property
    def healthy(self) -> bool:
        return not self.expect

    @property
    def expected_exit(self) -> int:
        return self.exit_code if self.exit_code is not None else (1 if self.expect else 0)

    def mismatches(self, report: CheckReport) -> list[str]:
        """How ``report`` departs from this scenario's catalogue entry (empty: it behaved as catalogued)."""
        errors = {f.code for f in report.findings if f.severity is Severity.ERROR}
        lesser = {f.code for f in report.findings if f.severity is not Severity.ERROR}
        out = []
        if not self.expect <= errors:
            out.append(f"missing errors {sorted(self.expect - errors)}")
        if self.healthy and errors:
            out.append(f"unexpected errors {sorted(errors)}")
        if not self.notes <= lesser - errors:
            out.append(f"missing notes/warnings {sorted(self.notes - (lesser - errors))}")
        if self.forbid & report.codes():
            out.append(f"misdiagnosis {sorted(self.forbid & report.codes())}")
        if report.exit_code != self.expected_exit:
            out.append(f"exit code {report.exit_code}, expected {self.expected_exit}")
        if report.loads_in_coqui != self.loads:
            out.append(f"loads_in_coqui {report.loads_in_coqui}, expected {self.loads}")
        return out


def _finetune(f: Family) -> Path:
    return f.folder("finetune", f.finetune(1)).folder


def _trainer_run(f: Family) -> Path:
    """A coqui recipe run folder: best_model.pth + config.json pointing at the base's support files."""
    run = f.root / "trainer-run"
    if run.exists():
        shutil.rmtree(run)
    run.mkdir(parents=True)
    config = json.loads(f.base.config.read_text())
    config["model_args"].update(
        tokenizer_file=str(f.base.vocab),
        dvae_checkpoint=str(f.base.dvae),
        mel_norm_file=str(f.base.mel_stats),
        xtts_checkpoint=str(f.base.model),
    )
    (run / "config.json").write_text(json.dumps(config, indent=2))
    dvae = load_torch(f.base.dvae, mmap=False)
    save_trainer(f.finetune(2), dvae, trainer_mel_tensors(config["model_args"]), config, run / "best_model.pth")
    return run / "best_model.pth"


def _compacted(f: Family) -> Path:
    files = f.folder("compacted-export")
    config = json.loads(f.base.config.read_text())
    save_trainer(f.finetune(3), None, trainer_mel_tensors(config["model_args"]), config, files.model, optimizer=False)
    return files.folder


def _broken_dvae(f: Family) -> Path:
    files = f.folder("sequential-broken-dvae", f.finetune(4))
    audio_tokens = json.loads(f.base.config.read_text())["model_args"]["gpt_num_audio_tokens"]
    random_dvae = build_dvae(audio_tokens, seed=99)  # the trainer's untrained DVAE, exported ...
    files.dvae.unlink()
    torch.save({f"dvae.{k}": v for k, v in random_dvae.items()}, files.dvae)  # ... with the trainer's prefix
    return files.folder


def _inference_as_restore(f: Family) -> Path:
    return f.folder("inference-as-restore", f.finetune(5)).model


def _merge_scaled(f: Family) -> Path:
    return f.folder("merge-weights-1.2", _average([f.finetune(6), f.finetune(7)], [0.5, 0.7], cast_ints=False)).folder


def _merge_ok(f: Family) -> Path:
    return f.folder(
        "merge-weights-0.6-0.4", _average([f.finetune(18), f.finetune(19)], [0.6, 0.4], cast_ints=False)
    ).folder


def _merge_ints(f: Family) -> Path:
    return f.folder("merge-int-buffers", _average([f.finetune(8), f.finetune(9)], [0.5, 0.5])).folder


def _merge_cross_base(f: Family) -> Path:
    return f.folder(
        "merge-cross-base", _average([f.finetune(10), f.finetune(11, files=f.other)], [0.5, 0.5], cast_ints=False)
    ).folder


def _vocab_reordered(f: Family) -> Path:
    files = f.folder("vocab-reordered", f.finetune(12))
    data = json.loads(f.base.vocab.read_text())
    vocab = data["model"]["vocab"]
    plain = sorted((t for t in vocab if not t.startswith("[")), key=lambda t: vocab[t])
    ids = [vocab[t] for t in plain]
    for t, i in zip(
        plain, ids[1:] + ids[:1], strict=True
    ):  # rotate the ids of ordinary tokens: same size, wrong mapping
        vocab[t] = i
    files.vocab.unlink()
    files.vocab.write_text(json.dumps(data))
    return files.folder


def _vocab_grown(f: Family) -> Path:
    files = f.folder("vocab-extended-not-resized", f.finetune(13))
    data = json.loads(f.base.vocab.read_text())
    top = max(data["model"]["vocab"].values())
    for i in range(1, 9):
        data["model"]["vocab"][f"<new{i}>"] = top + i
    files.vocab.unlink()
    files.vocab.write_text(json.dumps(data))
    return files.folder


def _config_v1(f: Family) -> Path:
    files = f.folder("config-v1-defaults", f.finetune(14))
    config = json.loads(f.base.config.read_text())
    config["model_args"].update(
        gpt_num_audio_tokens=8194,
        gpt_start_audio_token=8192,
        gpt_stop_audio_token=8193,
        gpt_use_perceiver_resampler=False,
    )
    files.config.unlink()
    files.config.write_text(json.dumps(config, indent=2))
    return files.folder


def _nan(f: Family) -> Path:
    state = f.finetune(15)
    state["gpt.text_embedding.weight"][3, :5] = float("nan")
    state["gpt.mel_head.weight"][0, 0] = float("inf")
    return f.folder("diverged-nan", state).folder


def _fp16(f: Family) -> Path:
    return f.folder(
        "saved-fp16", {k: v.half() if v.is_floating_point() else v for k, v in f.finetune(16).items()}
    ).folder


def _speakers(f: Family) -> Path:
    files = f.folder("speakers-metadata", f.finetune(17))
    speakers = load_torch(f.base.speakers, mmap=False)
    speakers["__speaker_metadata__"] = {"version": torch.tensor([2])}
    files.speakers.unlink()
    torch.save(speakers, files.speakers)
    return files.folder


def _wrong_mel(f: Family) -> Path:
    state = f.finetune(18)
    wrong = load_torch(f.other.mel_stats, mmap=False)
    state["mel_stats"] = wrong.clone()  # GPTTrainer copied the wrong mel_norm_file into the buffer
    files = f.folder("wrong-mel-stats", state)
    files.mel_stats.unlink()
    torch.save(wrong, files.mel_stats)
    return files.folder


def _missing_language(f: Family) -> Path:
    files = f.folder("missing-language-token", f.finetune(19))
    text = f.base.vocab.read_text().replace('"[de]"', '"[xx]"')
    files.vocab.unlink()
    files.vocab.write_text(text)
    return files.folder


def _decoder_trained(f: Family) -> Path:
    state = f.finetune(20)
    g = torch.Generator().manual_seed(20)
    for k, v in state.items():
        if k.startswith("hifigan_decoder.waveform_decoder.") and v.is_floating_point():
            state[k] = v + 1e-3 * torch.randn(v.shape, generator=g)
    return f.folder("decoder-trained", state).folder


def _truncated(f: Family) -> Path:
    files = f.folder("truncated-copy")
    data = f.base.model.read_bytes()
    files.model.write_bytes(data[: len(data) // 3])
    return files.folder


class _Exploit:
    """A pickle that would run a shell command on load (it must never run)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, (f"touch {self.marker}",))


def _exploit(f: Family) -> Path:
    files = f.folder("pickle-exploit")
    with open(files.model, "wb") as fh:
        torch.save(
            {"model": {"gpt.x": torch.zeros(1)}, "payload": _Exploit(files.folder / "PWNED")}, fh, pickle_module=pickle
        )
    return files.folder


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("base", "the base model itself, checked alone", lambda f: f.base.folder, with_base=False),
    Scenario("finetune", "a healthy GPT fine-tune (only gpt.* changed)", _finetune),
    Scenario(
        "trainer-run", "best_model.pth of a coqui recipe run, resumed as restore_path", _trainer_run, intent="restore"
    ),
    Scenario(
        "compacted-export", "an AllTalk / xtts-finetune-webui export (xtts.* keys, no optimizer, no dvae)", _compacted
    ),
    Scenario(
        "sequential-broken-dvae",
        "second fine-tune prepared from an export whose dvae.pth has 'dvae.'-prefixed random weights",
        _broken_dvae,
        frozenset({"XQ401", "XQ402"}),
        intent="finetune",
    ),
    Scenario(
        "inference-as-restore",
        "the inference model.pth passed to the Trainer as restore_path",
        _inference_as_restore,
        frozenset({"XQ701"}),
        intent="restore",
    ),
    Scenario(
        "merge-weights-1.2",
        "two fine-tunes averaged with weights 0.5 and 0.7",
        _merge_scaled,
        frozenset({"XQ901"}),
        forbid=frozenset({"XQ902"}),
    ),
    Scenario(
        "merge-weights-0.6-0.4",
        "two fine-tunes of one base averaged with weights 0.6 and 0.4 (every tensor, float32)",
        _merge_ok,
        notes=frozenset({"XQ501"}),
        forbid=frozenset({"XQ901", "XQ902"}),
    ),
    Scenario(
        "merge-int-buffers",
        "a merge script that averaged every tensor, integer counters included",
        _merge_ints,
        notes=frozenset({"XQ603"}),
        forbid=frozenset({"XQ901", "XQ902"}),
    ),
    Scenario(
        "merge-cross-base",
        "a fine-tune averaged with a fine-tune of a different base",
        _merge_cross_base,
        frozenset({"XQ501", "XQ502", "XQ902"}),
        forbid=frozenset({"XQ901"}),
    ),
    Scenario(
        "vocab-reordered",
        "vocab.json replaced by one of the same size with different ids",
        _vocab_reordered,
        frozenset({"XQ204"}),
    ),
    Scenario(
        "vocab-extended-not-resized",
        "8 tokens appended to vocab.json without resizing the text embedding",
        _vocab_grown,
        frozenset({"XQ201", "XQ103"}),
        loads=False,
    ),
    Scenario(
        "config-v1-defaults",
        "config.json with XTTS v1 defaults (8194 audio tokens, no perceiver)",
        _config_v1,
        frozenset({"XQ301", "XQ302", "XQ101", "XQ102"}),
        loads=False,
    ),
    Scenario("diverged-nan", "a fine-tune that diverged: NaN and Inf in the GPT", _nan, frozenset({"XQ601"})),
    Scenario(
        "saved-fp16",
        "state dict saved in float16",
        _fp16,
        notes=frozenset({"XQ501", "XQ602"}),
        forbid=frozenset({"XQ901", "XQ902"}),
    ),
    Scenario(
        "speakers-metadata", "speakers_xtts.pth with a __speaker_metadata__ entry", _speakers, frozenset({"XQ801"})
    ),
    Scenario(
        "wrong-mel-stats",
        "mel_norm_file pointed at another model's mel_stats.pth",
        _wrong_mel,
        frozenset({"XQ502"}),
        notes=frozenset({"XQ803"}),
    ),
    Scenario(
        "missing-language-token",
        "vocab.json lost the [de] token while config.json lists German",
        _missing_language,
        frozenset({"XQ203"}),
    ),
    Scenario(
        "decoder-trained",
        "a custom script that also trained the HiFi-GAN decoder",
        _decoder_trained,
        frozenset({"XQ501"}),
        forbid=frozenset({"XQ902"}),
    ),
    Scenario(
        "truncated-copy",
        "model.pth cut short by an interrupted copy",
        _truncated,
        frozenset({"XQ001"}),
        loads=False,
        exit_code=2,
    ),
    Scenario(
        "pickle-exploit",
        "a model.pth whose pickle would run a shell command",
        _exploit,
        frozenset({"XQ003"}),
        loads=False,
        exit_code=2,
    ),
)


def scenario(name: str) -> Scenario:
    for s in SCENARIOS:
        if s.name == name:
            return s
    raise KeyError(name)


def build_family(root: Path, size: str = "tiny", names: list[str] | None = None) -> tuple[Family, dict[str, Path]]:
    """Build the base and the named scenarios (all by default); returns the family and name -> target path."""
    family = Family(root, size)
    targets = {}
    for s in SCENARIOS:
        if names is None or s.name in names:
            targets[s.name] = s.build(family)
    return family, targets
