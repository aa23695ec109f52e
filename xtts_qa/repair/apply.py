"""Carry out a :class:`~xtts_qa.repair.plan.RepairPlan`: write a NEW folder, then check it again.

The target and the base are only read (memory-mapped); the model file is written tensor by tensor
(:func:`~xtts_qa.repair.writer.save_streaming`) into a temporary folder that is renamed into place at the end.
A file the plan does not change is copied byte for byte, so repairing a repaired folder changes nothing.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from xtts_qa.cache import file_digest
from xtts_qa.checkpoint import ROLES, strip_dvae_prefix
from xtts_qa.engine import check
from xtts_qa.errors import InputError
from xtts_qa.mmap_pages import PageReleaser
from xtts_qa.repair.actions import Composition
from xtts_qa.repair.plan import RepairPlan
from xtts_qa.repair.writer import LazyTensor, NewFolder, copy_file, save_streaming
from xtts_qa.results import CheckReport
from xtts_qa.rules import CheckOptions
from xtts_qa.safeload import load_torch, plain
from xtts_qa.versions import package_versions as versions

log = logging.getLogger("xtts_qa")

__all__ = ["RepairResult", "apply_repair", "finetune_args", "PROVENANCE_FILE"]

#: the provenance record written into every repaired folder
PROVENANCE_FILE = "repair.json"


@dataclass(frozen=True)
class RepairResult:
    """A finished repair: where it went and what the check says now."""

    out: Path
    plan: RepairPlan
    after: CheckReport


def finetune_args(folder: Path) -> dict[str, Any]:
    """The GPTTrainer ``model_args`` that start a NEW fine-tune from a model folder (never ``restore_path``)."""
    return {
        "xtts_checkpoint": str(folder / ROLES["model"]),
        "dvae_checkpoint": str(folder / ROLES["dvae"]),
        "mel_norm_file": str(folder / ROLES["mel_stats"]),
        "tokenizer_file": str(folder / ROLES["vocab"]),
        "restore_path": None,
    }


def trainer_mel_buffers(config: dict[str, Any]) -> dict[str, torch.Tensor]:
    """GPTTrainer's torch_mel_spectrogram_* buffers, built with coqui-tts's TorchMelSpectrogram as GPTTrainer does."""
    from TTS.tts.layers.tortoise.arch_utils import TorchMelSpectrogram

    args = config.get("model_args") or {}
    audio = config.get("audio") or {}
    perceiver = args.get("gpt_use_perceiver_resampler", True)
    style = TorchMelSpectrogram(
        filter_length=2048 if perceiver else 4096,
        hop_length=256 if perceiver else 1024,
        win_length=1024 if perceiver else 4096,
        normalize=False,
        sampling_rate=int(audio.get("sample_rate", 22050)),
        mel_fmin=0,
        mel_fmax=8000,
        n_mel_channels=80,
        mel_norm_file=None,
    )
    dvae = TorchMelSpectrogram(mel_norm_file=None, sampling_rate=int(audio.get("dvae_sample_rate", 22050)))
    out = {f"torch_mel_spectrogram_style_encoder.{k}": v for k, v in style.state_dict().items()}
    out.update({f"torch_mel_spectrogram_dvae.{k}": v for k, v in dvae.state_dict().items()})
    return out


def _lazy(tensor: torch.Tensor, cast: torch.dtype | None, releaser: PageReleaser) -> LazyTensor:
    dtype = cast or tensor.dtype

    def produce() -> torch.Tensor:
        if cast is None:
            return tensor
        return tensor.round().to(cast) if not cast.is_floating_point and tensor.is_floating_point() else tensor.to(cast)

    return LazyTensor(tuple(tensor.shape), dtype, produce, lambda: releaser.release(tensor))


def _state(plan: RepairPlan, releaser: PageReleaser) -> dict[str, LazyTensor]:
    comp, arch = plan.composition, plan.job.arch
    order = [k for k in arch.model if k in comp.tensors] + [k for k in comp.tensors if k not in arch.model]
    return {k: _lazy(comp.tensors[k][1], comp.casts.get(k), releaser) for k in order}


def _trainer_object(plan: RepairPlan, releaser: PageReleaser) -> dict[str, Any]:
    job, comp = plan.job, plan.composition
    ckpt = job.target.checkpoint
    assert ckpt is not None
    model: dict[str, Any] = {f"xtts.{k}": v for k, v in _state(plan, releaser).items()}
    if comp.embedded_dvae_from_base or not ckpt.dvae_tensors:
        dvae_path = comp.files.get("dvae") or job.base.paths["dvae"]
        dvae = strip_dvae_prefix(load_torch(dvae_path))
    else:
        dvae = ckpt.dvae_tensors
    model.update({f"dvae.{k}": LazyTensor.of(v) for k, v in dvae.items()})
    config = job.target.config or job.base.config or {}
    mels = ckpt.trainer_tensors
    expected = job.arch.trainer_extra
    if set(mels) != set(expected) or any(tuple(v.shape) != expected[k][0] for k, v in mels.items()):
        mels = trainer_mel_buffers(config)
    model.update({k: LazyTensor.of(v) for k, v in mels.items()})
    top: dict[str, Any] = {}
    if job.target.checkpoint and job.target.checkpoint.layout in ("trainer", "compacted"):
        raw = load_torch(job.target.paths["model"])
        top = {k: plain(v) for k, v in raw.items() if k not in ("model", "config")}
    top.setdefault("optimizer", None)
    top.setdefault("scaler", None)
    for field in ("step", "epoch"):  # honest: what it really has, 0 when it never went through a Trainer run
        if not isinstance(top.get(field), int):
            top[field] = 0
    top.setdefault("date", time.strftime("%B %d, %Y"))
    return {"config": plain(config), "model": model, **top}


def _write_model(plan: RepairPlan, path: Path) -> None:
    comp: Composition = plan.composition
    src = plan.job.target.paths["model"]
    if not comp.changed:
        copy_file(src, path)
        return
    files = [plan.job.target.paths["model"], plan.job.base.paths["model"]]
    releaser = PageReleaser(files)
    obj = _trainer_object(plan, releaser) if comp.layout == "trainer" else {"model": _state(plan, releaser)}
    count = save_streaming(obj, path)
    log.info("wrote %s (%d tensors)", path, count)


def apply_repair(plan: RepairPlan, out: str | Path, *, force: bool = False) -> RepairResult:
    """Write the repaired folder ``out`` (never inside the target or the base) and check it.

    Raises:
        InputError: the plan has refusals, or ``out`` exists and is not empty (without ``force``) or overlaps an input.
    """
    if plan.refusals:
        raise InputError(
            plan.target,
            "cannot be repaired safely: " + " | ".join(plan.refusals),
            "see `xtts-qa repair --dry-run` for the plan; nothing was written.",
        )
    job = plan.job
    protected = [job.target.target, job.base.target]
    with NewFolder(out, protected, force=force) as folder:
        _write_model(plan, folder.path(ROLES["model"]))
        for role, src in plan.composition.files.items():
            if src is not None:
                copy_file(src, folder.path(ROLES[role]))
        record = {
            **plan.to_dict(),
            "inputs": {
                "target_model": {
                    "path": str(job.target.paths["model"]),
                    "digest": file_digest(job.target.paths["model"]),
                },
                "base_model": {"path": str(job.base.paths["model"]), "digest": file_digest(job.base.paths["model"])},
            },
            "versions": versions(),
        }
        if job.intent == "finetune":
            record["finetune_args"] = finetune_args(Path(out).resolve())
        folder.path(PROVENANCE_FILE).write_text(json.dumps(record, indent=2))
        done = folder.commit()
    after = check(done, job.base.target, CheckOptions(intent=job.intent))
    return RepairResult(done, plan, after)
