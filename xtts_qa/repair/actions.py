"""The safe repair actions that rules name in their ``repair`` attribute.

An action changes a :class:`Composition` (what the repaired folder will hold: where each tensor and each support
file comes from) and says what it did, or refuses with the reason when the finding in front of it cannot be fixed
safely. Nothing here reads or writes files: :mod:`xtts_qa.repair.apply` does that.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from xtts_qa.architecture import ExpectedArchitecture
from xtts_qa.checkpoint import Bundle
from xtts_qa.results import Finding

log = logging.getLogger("xtts_qa")

__all__ = ["Step", "Composition", "RepairJob", "ACTIONS", "Refusal", "SUPPORT_ROLES"]

SUPPORT_ROLES = ("config", "vocab", "dvae", "mel_stats", "speakers")


@dataclass(frozen=True)
class Step:
    """One line of a repair plan.

    Attributes:
        action: the action's name (as rules declare it).
        what: what will change in the output.
        source: where the new content comes from.
        why: the finding (code and message) or intent that calls for it.
    """

    action: str
    what: str
    source: str
    why: str

    def to_dict(self) -> dict[str, str]:
        return {"action": self.action, "what": self.what, "source": self.source, "why": self.why}


class Refusal(Exception):
    """An action cannot fix this finding safely (the message says why)."""


@dataclass
class Composition:
    """What the repaired folder will hold.

    Attributes:
        layout: ``inference`` (``{"model": state_dict}``) or ``trainer`` (what ``Trainer.restore_model`` reads).
        tensors: inference-namespace key -> (origin ``target`` / ``base``, tensor).
        casts: key -> dtype the tensor is cast to when written.
        files: support role -> the file copied into the output (None: left out).
        embedded_dvae_from_base: a trainer-layout output takes its dvae.* tensors from the base's dvae.pth.
        changed: the model file must be rewritten (otherwise it is copied byte for byte).
        done: one-shot actions already planned (two findings may call for the same one).
    """

    layout: str
    tensors: dict[str, tuple[str, torch.Tensor]]
    files: dict[str, Path | None]
    casts: dict[str, torch.dtype] = field(default_factory=dict)
    embedded_dvae_from_base: bool = False
    changed: bool = False
    done: set[str] = field(default_factory=set)


@dataclass
class RepairJob:
    """The inputs of one repair: the target, the base, the intent and the architecture the target must have."""

    target: Bundle
    base: Bundle
    intent: str
    arch: ExpectedArchitecture

    def base_tensor(self, key: str) -> torch.Tensor | None:
        return self.base.checkpoint.tensors.get(key) if self.base.checkpoint else None


Action = Callable[[RepairJob, Composition, Finding], list[Step]]


def _why(finding: Finding) -> str:
    return f"{finding.code} {finding.name}: {finding.message}"


def _copy_role(job: RepairJob, comp: Composition, role: str, finding: Finding, action: str) -> list[Step]:
    path = job.base.paths.get(role)
    if path is None or not path.is_file() or job.base.problem(role) is not None:
        raise Refusal(f"the base has no readable {path.name if path else role} to copy")
    if comp.files.get(role) == path:
        return []
    comp.files[role] = path
    return [Step(action, f"{path.name}: replaced by the base's copy", str(path), _why(finding))]


def copy_dvae(job: RepairJob, comp: Composition, finding: Finding) -> list[Step]:
    """dvae.pth from the base (and, in a trainer-layout output, the embedded dvae.* tensors too)."""
    steps = _copy_role(job, comp, "dvae", finding, "copy-dvae-from-base")
    if job.target.checkpoint is not None and job.target.checkpoint.dvae_tensors and not comp.embedded_dvae_from_base:
        comp.embedded_dvae_from_base = True
        comp.changed = True
        steps.append(
            Step(
                "copy-dvae-from-base",
                "embedded dvae.* tensors: taken from the base's dvae.pth",
                str(job.base.paths["dvae"]),
                _why(finding),
            )
        )
    return steps


def copy_mel_stats(job: RepairJob, comp: Composition, finding: Finding) -> list[Step]:
    return _copy_role(job, comp, "mel_stats", finding, "copy-mel-stats-from-base")


def copy_speakers(job: RepairJob, comp: Composition, finding: Finding) -> list[Step]:
    """speakers_xtts.pth from the base; left out (voices cloned from reference audio) when the base has none."""
    path = job.base.paths.get("speakers")
    if path is not None and path.is_file() and job.base.problem("speakers") is None:
        return _copy_role(job, comp, "speakers", finding, "copy-speakers-from-base")
    comp.files["speakers"] = None
    return [
        Step(
            "copy-speakers-from-base",
            "speakers_xtts.pth: left out (the base has none; clone voices from reference audio)",
            "-",
            _why(finding),
        )
    ]


def copy_support(job: RepairJob, comp: Composition, finding: Finding) -> list[Step]:
    """Missing or unreadable support files (config, vocab, dvae, mel_stats) from the base."""
    roles = finding.details.get("missing") or [finding.details.get("role")]
    if "model" in roles:
        raise Refusal("the model checkpoint itself is missing or unreadable: copy or export it again")
    steps: list[Step] = []
    for role in roles:
        if role in SUPPORT_ROLES:
            steps += _copy_role(job, comp, role, finding, "copy-support-from-base")
    return steps


def restore_frozen(job: RepairJob, comp: Composition, finding: Finding) -> list[Step]:
    """Every tensor outside gpt.* (HiFi-GAN decoder, speaker encoder, mel_stats) from the base, bit for bit."""
    if job.base.checkpoint is None:
        raise Refusal("the base model's checkpoint is unreadable")
    keys = [k for k in job.base.checkpoint.tensors if not k.startswith("gpt.")]
    todo = [k for k in keys if comp.tensors.get(k, ("", None))[0] != "base"]
    if not todo:
        return []
    for k in todo:
        comp.tensors[k] = ("base", job.base.checkpoint.tensors[k])
        comp.casts.pop(k, None)
    comp.changed = True
    return [
        Step(
            "restore-frozen-from-base",
            f"{len(todo)} frozen tensors (hifigan_decoder.*, mel_stats): replaced by the base's",
            str(job.base.describe("model")),
            _why(finding),
        )
    ]


def restore_non_finite(job: RepairJob, comp: Composition, finding: Finding) -> list[Step]:
    """NaN/Inf only in parts a fine-tune never trains: take those from the base; anywhere in the GPT: refuse."""
    file = finding.file or ""
    for role, action in (("dvae", copy_dvae), ("mel_stats", copy_mel_stats), ("speakers", copy_speakers)):
        if file == job.target.describe(role):
            return action(job, comp, finding)
    keys = list(finding.details.get("tensors") or [])
    trained = [k for k in keys if k.startswith("gpt.")]
    if trained or not keys:
        raise Refusal(
            f"NaN/Inf in trained GPT weights ({', '.join(trained[:3])}): there is no right value to restore; "
            "use an earlier checkpoint of the run"
        )
    steps = []
    if any(k.startswith("dvae.") for k in keys):
        steps += copy_dvae(job, comp, finding)
    return steps + restore_frozen(job, comp, finding)


def cast_fp32(job: RepairJob, comp: Composition, finding: Finding) -> list[Step]:
    """Reduced-precision floats back to float32 (the precision lost when they were saved is not recovered)."""
    keys = [
        k
        for k, (origin, t) in comp.tensors.items()
        if t.is_floating_point() and t.dtype != torch.float32 and k not in comp.casts
    ]
    for k in keys:
        comp.casts[k] = torch.float32
    if not keys:
        return []
    comp.changed = True
    return [
        Step(
            "cast-to-fp32",
            f"{len(keys)} tensors cast to float32 (the precision lost when they were saved in half "
            "precision is NOT recovered; frozen parts can be restored exactly from the base)",
            "the target",
            _why(finding),
        )
    ]


def restore_int_dtype(job: RepairJob, comp: Composition, finding: Finding) -> list[Step]:
    """Integer buffers stored as floats: the base's integer buffer when it has one, else rounded and cast back."""
    expected = job.arch.model
    fixed = 0
    for k, (_origin, t) in list(comp.tensors.items()):
        if k in expected and expected[k][1].startswith("int") and t.is_floating_point():
            base = job.base_tensor(k)
            if base is not None and not base.is_floating_point() and tuple(base.shape) == tuple(t.shape):
                comp.tensors[k] = ("base", base)
            else:
                comp.casts[k] = getattr(torch, expected[k][1])
            fixed += 1
    steps = []
    if fixed:
        comp.changed = True
        steps.append(
            Step(
                "restore-int-dtype",
                f"{fixed} integer buffers stored as floats: restored as integers",
                "the base's buffers (rounded target values where the base has none)",
                _why(finding),
            )
        )
    if finding.file == job.target.describe("dvae"):
        steps += copy_dvae(job, comp, finding)
    return steps


def drop_stray(job: RepairJob, comp: Composition, finding: Finding) -> list[Step]:
    """Keys strict loading rejects (other models' keys, gpt_inference copies, non-tensor entries): left out."""
    stray = [k for k in comp.tensors if k not in job.arch.model]
    for k in stray:
        del comp.tensors[k]
    foreign = job.target.checkpoint.foreign if job.target.checkpoint else []
    if not stray and not foreign:
        return []
    comp.changed = True
    what = f"{len(stray)} stray keys dropped" + (f" and {len(foreign)} non-tensor entries" if foreign else "")
    return [
        Step(
            "drop-stray-keys",
            what + " (strict loading rejects them; gpt_inference copies are rebuilt at load)",
            "-",
            _why(finding),
        )
    ]


def restore_missing_frozen(job: RepairJob, comp: Composition, finding: Finding) -> list[Step]:
    """Missing keys outside gpt.* from the base; missing trained (gpt.*) tensors cannot be restored."""
    missing = [k for k in job.arch.model if k not in comp.tensors]
    trained = [k for k in missing if k.startswith("gpt.")]
    if trained:
        raise Refusal(
            f"{len(trained)} trained GPT tensors are missing ({', '.join(trained[:3])}): only the training run has them"
        )
    from_base = {k: t for k in missing if (t := job.base_tensor(k)) is not None}
    absent = [k for k in missing if k not in from_base]
    if absent:
        raise Refusal(f"{len(absent)} missing tensors are not in the base either ({', '.join(absent[:3])})")
    for k in missing:
        comp.tensors[k] = ("base", from_base[k])
    if not missing:
        return []
    comp.changed = True
    return [
        Step(
            "restore-missing-frozen",
            f"{len(missing)} missing frozen tensors: taken from the base",
            job.base.describe("model"),
            _why(finding),
        )
    ]


def normalise_namespace(job: RepairJob, comp: Composition, finding: Finding) -> list[Step]:
    """Write one namespace (trainer prefix stripped, one weight-norm naming); refuse ambiguous duplicates."""
    ckpt = job.target.checkpoint
    assert ckpt is not None
    for key, raws in ckpt.collisions.items():
        values = [ckpt.lookup(r) for r in raws]
        first = values[0]
        if first is None or any(v is None or v.shape != first.shape or not torch.equal(v, first) for v in values):
            raise Refusal(
                f"{key} is stored twice with different values ({' / '.join(raws)}): which one is right cannot be told"
            )
    comp.changed = True
    return [
        Step(
            "strip-prefix",
            "keys written in the inference namespace (no 'xtts.' prefix, parametrizations weight-norm names)",
            "the target",
            _why(finding),
        )
    ]


def make_restorable(job: RepairJob, comp: Composition, finding: Finding) -> list[Step]:
    """For --intent restore: a trainer-layout checkpoint (xtts.*, dvae.* from the base, mel buffers, step/epoch)."""
    if job.intent != "restore" or "make-restorable" in comp.done:
        return []
    comp.done.add("make-restorable")
    if comp.layout == "trainer":
        ckpt = job.target.checkpoint
        fields = [f for f in ("step", "epoch") if ckpt is None or not isinstance(ckpt.top_level.get(f), int)]
        if not fields:
            return []
        comp.changed = True
        return [
            Step(
                "make-restorable",
                f"{' and '.join(fields)} missing: written as 0 (the real value is unknown; the Trainer "
                "resets both for a restore_path run anyway)",
                "-",
                _why(finding),
            )
        ]
    comp.layout = "trainer"
    comp.changed = True
    comp.embedded_dvae_from_base = True
    return [
        Step(
            "make-restorable",
            "model.pth rewritten as a trainer checkpoint: xtts.* tensors, dvae.* from the base's "
            "dvae.pth, GPTTrainer's mel-spectrogram buffers, the step/epoch it really has (0 when it never had any), "
            "no optimizer state (the Trainer starts a fresh optimizer)",
            "the target + the base's dvae.pth",
            _why(finding),
        )
    ]


#: action name (as rules declare it in ``repair``) -> implementation
ACTIONS: dict[str, Action] = {
    "copy-dvae-from-base": copy_dvae,
    "copy-mel-stats-from-base": copy_mel_stats,
    "copy-speakers-from-base": copy_speakers,
    "copy-support-from-base": copy_support,
    "restore-frozen-from-base": restore_frozen,
    "restore-non-finite-frozen": restore_non_finite,
    "cast-to-fp32": cast_fp32,
    "restore-int-dtype": restore_int_dtype,
    "drop-stray-keys": drop_stray,
    "restore-missing-frozen": restore_missing_frozen,
    "strip-prefix": normalise_namespace,
    "make-restorable": make_restorable,
}
