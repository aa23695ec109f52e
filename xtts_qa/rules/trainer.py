"""XQ7xx: what the coqui Trainer and GPTTrainer would do with these files."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypedDict

from xtts_qa.results import Finding, Severity
from xtts_qa.rules.base import Context, Rule


def trainer_state_expected(ctx: Context) -> dict[str, tuple[int, ...]]:
    """GPTTrainer's state-dict keys and shapes: xtts.*, dvae.* and torch_mel_spectrogram_* (1023 for XTTS-v2)."""
    arch = ctx.arch
    assert arch is not None
    out = {f"xtts.{k}": s for k, (s, _) in arch.model.items()}
    out.update({f"dvae.{k}": s for k, (s, _) in arch.dvae.items()})
    out.update({k: s for k, (s, _) in arch.trainer_extra.items()})
    return out


#: Trainer-state keys GPTTrainer.__init__ fills itself before Trainer.restore_model runs: the DVAE from
#: dvae_checkpoint (mandatory), the mel-spectrogram buffers from the config, mel_stats from mel_norm_file.
_INIT_PREFIXES = ("dvae.", "torch_mel_spectrogram_style_encoder.", "torch_mel_spectrogram_dvae.")
_INIT_KEYS = ("xtts.mel_stats",)


@dataclass(frozen=True)
class RestorePlan:
    """What ``trainer.Trainer.restore_model`` does with a file passed as ``restore_path`` (coqui Trainer code).

    It first tries ``GPTTrainer.load_state_dict(checkpoint["model"])`` (strict); on failure it keeps the stored
    keys whose exact name exists and whose element count matches (``set_partial_state_dict``, logging
    "N / M layers are restored"); every other layer keeps what ``GPTTrainer.__init__`` put there. Then it reads
    ``checkpoint["step"]`` and ``checkpoint["epoch"]``.

    Attributes:
        restored: layers taken from the file.
        total: layers of the GPTTrainer model.
        strict: the strict load succeeds (every layer restored).
        from_init: missing layers that GPTTrainer.__init__ fills from dvae_checkpoint, mel_norm_file or the config:
            the result equals a full restore.
        from_xtts_checkpoint: missing frozen layers (HiFi-GAN decoder) that come from xtts_checkpoint (the base).
        lost: missing or mis-sized GPT layers: the trained weights are not restored.
        crash: the KeyError the restore dies with (``'model'``, ``'step'``, ``'epoch'``), or None.
    """

    restored: int
    total: int
    strict: bool
    from_init: tuple[str, ...]
    from_xtts_checkpoint: tuple[str, ...]
    lost: tuple[str, ...]
    crash: str | None


def restore_plan(ctx: Context) -> RestorePlan:
    """Mirror ``Trainer.restore_model`` on the candidate (see :class:`RestorePlan`)."""
    ckpt = ctx.candidate.checkpoint
    assert ckpt is not None
    expected = trainer_state_expected(ctx)
    if ckpt.layout == "bare":  # restore_model reads checkpoint["model"] in the partial path too: KeyError
        return RestorePlan(0, len(expected), False, (), (), tuple(expected), "model")
    seen = {f"xtts.{k}": v for k, v in ckpt.tensors.items()}
    seen.update({f"dvae.{k}": v for k, v in ckpt.dvae_tensors.items()})
    seen.update(ckpt.trainer_tensors)
    strict = (
        ckpt.layout in ("trainer", "compacted")
        and seen.keys() == expected.keys()
        and all(tuple(v.shape) == expected[k] for k, v in seen.items())
    )
    if strict:
        restored = set(expected)
    else:
        restored = set()
        for key in ckpt.raw_keys:
            t = ckpt.lookup(key)
            if key in expected and t is not None and t.numel() == _numel(expected[key]):
                restored.add(key)
    missing = [k for k in expected if k not in restored]
    from_init = tuple(k for k in missing if k.startswith(_INIT_PREFIXES) or k in _INIT_KEYS)
    from_xtts = tuple(k for k in missing if k.startswith("xtts.hifigan_decoder."))
    lost = tuple(k for k in missing if k not in from_init and k not in from_xtts)
    crash = next((f for f in ("step", "epoch") if f not in ckpt.top_level), None)
    return RestorePlan(len(restored), len(expected), strict, from_init, from_xtts, lost, crash)


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


class _RestoreFigures(TypedDict):
    restored: int
    total: int
    from_init: int
    from_xtts_checkpoint: int
    lost: int
    crash: str | None


class RestorePath(Rule):
    code = "XQ701"
    repair = "make-restorable"
    name = "restore-path"
    severity = Severity.ERROR
    groups = ("trainer",)
    requires = ("model", "config")
    by_intent = {"inference": None, "finetune": None}
    what = (
        "With --intent restore: what the coqui Trainer does with this file as restore_path, mirrored from "
        "Trainer.restore_model: a strict load, else a partial one (layers whose name and size match), then "
        "checkpoint['step'] and ['epoch']. Layers GPTTrainer.__init__ already loaded (the DVAE from "
        "dvae_checkpoint, mel buffers from the config and mel_norm_file) or that come frozen from xtts_checkpoint "
        "are not a loss: a compacted export restores to the same model as its best_model.pth."
    )
    why = (
        "Passing the inference model.pth as restore_path logs 'Layer missing in the checkpoint', restores 0/1023 "
        "layers (the GPT stays as initialised) and then dies with KeyError: 'step' (Trainer.restore_model reads it "
        "first, then 'epoch')."
    )
    fix = (
        "To start a fine-tune from a released or exported model, set restore_path=None and pass xtts_checkpoint, "
        "dvae_checkpoint, mel_norm_file and tokenizer_file; use restore_path only for checkpoint_N.pth / "
        "best_model.pth of a run, or an export that keeps step and epoch."
    )

    def check(self, ctx: Context) -> Iterable[Finding]:
        ckpt = ctx.candidate.checkpoint
        assert ckpt is not None
        plan = restore_plan(ctx)
        path = ctx.candidate.describe("model")
        figures: _RestoreFigures = {
            "restored": plan.restored,
            "total": plan.total,
            "from_init": len(plan.from_init),
            "from_xtts_checkpoint": len(plan.from_xtts_checkpoint),
            "lost": len(plan.lost),
            "crash": plan.crash,
        }
        if plan.lost or plan.crash:
            text = f"as restore_path this {ckpt.layout} checkpoint restores {plan.restored}/{plan.total} layers"
            if plan.lost:
                text += (
                    f"; {len(plan.lost)} trained layers are not in it ('Layer missing in the checkpoint', e.g. "
                    f"{plan.lost[0]}) and keep their initial values"
                )
            if plan.crash:
                text += f", then the Trainer fails with KeyError: '{plan.crash}'"
            yield self.finding(text + ".", file=path, **figures)
        elif not plan.strict:
            sources = []
            if plan.from_init:
                sources.append(
                    f"{len(plan.from_init)} (DVAE, mel buffers) from GPTTrainer.__init__'s dvae_checkpoint, "
                    "mel_norm_file and config"
                )
            if plan.from_xtts_checkpoint:
                sources.append(f"{len(plan.from_xtts_checkpoint)} frozen decoder layers from xtts_checkpoint")
            yield self.finding(
                f"as restore_path this {ckpt.layout} checkpoint restores {plan.restored}/{plan.total} layers from step "
                f"{ckpt.top_level.get('step')}; the other {' and '.join(sources)}: the same model as a full restore, "
                "provided those point at the base model's files.",
                file=path,
                severity=Severity.INFO,
                fix="Pass the base model's dvae.pth as dvae_checkpoint, its mel_stats.pth as mel_norm_file (and its "
                "model.pth as xtts_checkpoint) when restoring from this file.",
                **figures,
            )


class FinetuneInputs(Rule):
    code = "XQ702"
    repair = "copy-support-from-base"
    name = "finetune-inputs"
    severity = Severity.ERROR
    groups = ("trainer", "finetune")
    by_intent = {"inference": Severity.INFO}
    what = (
        "Everything an offline GPT fine-tune needs is present: the checkpoint (xtts_checkpoint), dvae.pth, "
        "mel_stats.pth (mel_norm_file), vocab.json (tokenizer_file) and config.json. An error with --intent finetune "
        "or restore, info otherwise."
    )
    why = (
        "GPTTrainer's defaults download dvae.pth and mel_stats.pth from the internet; offline, or with files from "
        "another model, the fine-tune fails or silently trains against the wrong DVAE."
    )
    fix = "Copy the missing files from the base XTTS-v2 model folder into the folder you fine-tune from."

    def check(self, ctx: Context) -> Iterable[Finding]:
        missing = [
            p
            for p in ctx.candidate.problems
            if p.kind == "missing" and p.role in ("model", "config", "vocab", "dvae", "mel_stats")
        ]
        if missing:
            names = ", ".join(sorted(p.path.rsplit("/", 1)[-1] for p in missing))
            yield self.finding(
                f"a fine-tune from here lacks {names}.",
                file=str(ctx.candidate.target),
                missing=[p.role for p in missing],
            )


class TrainerFields(Rule):
    code = "XQ703"
    repair = "make-restorable"
    name = "trainer-fields"
    severity = Severity.ERROR
    groups = ("trainer",)
    requires = ("model",)
    by_intent = {"inference": None, "finetune": None}
    what = (
        "With --intent restore: the step and epoch a trainer checkpoint carries are integers, and whether it "
        "carries optimizer state (only continue_path restores it; restore_path starts a fresh optimizer)."
    )
    why = (
        "Trainer.restore_model computes checkpoint['step'] + 1 and stores checkpoint['epoch'] as counters: a value "
        "that is not a number crashes the resumed run or corrupts its schedule."
    )
    fix = (
        "Resume from an untouched checkpoint_N.pth of the run; a hand-edited file can only start a new fine-tune "
        "(xtts_checkpoint)."
    )

    def check(self, ctx: Context) -> Iterable[Finding]:
        ckpt = ctx.candidate.checkpoint
        assert ckpt is not None
        if ckpt.layout not in ("trainer", "compacted"):
            return
        bad = [f for f in ("epoch", "step") if f in ckpt.top_level and not _is_count(ckpt.top_level[f])]
        if bad:
            yield self.finding(
                f"{', '.join(bad)} present but not a non-negative integer ("
                + ", ".join(f"{f}={ckpt.top_level[f]!r}"[:80] for f in bad)
                + ").",
                file=ctx.candidate.describe("model"),
                fields=bad,
            )
        if ckpt.top_level.get("optimizer") is None:
            yield self.finding(
                "no optimizer state: fine for restore_path (the Trainer does not restore the optimizer there); "
                "with continue_path the optimizer restarts.",
                file=ctx.candidate.describe("model"),
                severity=Severity.INFO,
            )


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
