"""XQ7xx: what the coqui Trainer and GPTTrainer would do with these files."""

from __future__ import annotations

from collections.abc import Iterable

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


def restorable_layers(ctx: Context) -> tuple[int, int]:
    """(layers restored, layers in the model) if this file were GPTTrainer's restore_path.

    The Trainer's partial restore (trainer.generic_utils.set_partial_state_dict) keeps stored keys whose exact
    name exists in the model and whose element count matches.
    """
    ckpt = ctx.candidate.checkpoint
    assert ckpt is not None
    expected = trainer_state_expected(ctx)
    if ckpt.layout in ("trainer", "compacted"):
        # Trainer first tries a strict load (torch's weight-norm hook maps weight_g/weight_v names there)
        seen = {f"xtts.{k}": v for k, v in ckpt.tensors.items()}
        seen.update({f"dvae.{k}": v for k, v in ckpt.dvae_tensors.items()})
        seen.update(ckpt.trainer_tensors)
        if seen.keys() == expected.keys() and all(tuple(v.shape) == expected[k] for k, v in seen.items()):
            return len(expected), len(expected)
    # ... and on failure keeps the stored keys whose exact name exists and whose element count matches
    restored = 0
    for key in ckpt.raw_keys:
        t = ckpt.lookup(key)
        if key in expected and t is not None and t.numel() == _numel(expected[key]):
            restored += 1
    return restored, len(expected)


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


class RestorePath(Rule):
    code = "XQ701"
    repair = "make-restorable"
    name = "restore-path"
    severity = Severity.ERROR
    groups = ("trainer",)
    requires = ("model", "config")
    what = "Predicts what the coqui Trainer would do with this file as restore_path: how many layers it restores and whether it finds epoch and step. An error with --intent restore, info otherwise."
    why = "Passing the inference model.pth as restore_path logs 'Layer missing in the checkpoint', restores 0/1023 layers (the GPT stays random) and then dies with a KeyError ('step', which Trainer.restore_model reads first, or 'epoch')."
    fix = "To start a fine-tune from a released or exported model, set restore_path=None and pass xtts_checkpoint, dvae_checkpoint, mel_norm_file and tokenizer_file; use restore_path only for checkpoint_N.pth / best_model.pth of an interrupted run."

    def check(self, ctx: Context) -> Iterable[Finding]:
        ckpt = ctx.candidate.checkpoint
        assert ckpt is not None
        restored, total = restorable_layers(ctx)
        fields = [f for f in ("step", "epoch") if not isinstance(ckpt.top_level.get(f), int)]
        if restored == total and not fields:
            return
        text = f"as restore_path this {ckpt.layout} checkpoint would restore {restored}/{total} layers"
        if restored < total:
            text += " ('Layer missing in the checkpoint' for the rest, which stay randomly initialised)"
        if fields:
            # Trainer.restore_model reads checkpoint["step"] first, then checkpoint["epoch"]
            text += f" and then fail with KeyError: '{fields[0]}'" if fields[0] not in ckpt.top_level else f"; {', '.join(fields)} not integers"
        severity = Severity.ERROR if ctx.options.intent == "restore" else Severity.INFO
        yield self.finding(text + ".", file=ctx.candidate.describe("model"), severity=severity,
                           restored=restored, total=total, missing_fields=fields)


class FinetuneInputs(Rule):
    code = "XQ702"
    repair = "copy-support-from-base"
    name = "finetune-inputs"
    severity = Severity.ERROR
    groups = ("trainer", "finetune")
    what = "Everything an offline GPT fine-tune needs is present: the checkpoint (xtts_checkpoint), dvae.pth, mel_stats.pth (mel_norm_file), vocab.json (tokenizer_file) and config.json. An error with --intent finetune or restore, info otherwise."
    why = "GPTTrainer's defaults download dvae.pth and mel_stats.pth from the internet; offline, or with files from another model, the fine-tune fails or silently trains against the wrong DVAE."
    fix = "Copy the missing files from the base XTTS-v2 model folder into the folder you fine-tune from."

    def check(self, ctx: Context) -> Iterable[Finding]:
        missing = [p for p in ctx.candidate.problems if p.kind == "missing" and p.role in ("model", "config", "vocab", "dvae", "mel_stats")]
        if missing:
            severity = Severity.INFO if ctx.options.intent == "inference" else Severity.ERROR
            names = ", ".join(sorted(p.path.rsplit("/", 1)[-1] for p in missing))
            yield self.finding(f"a fine-tune from here lacks {names}.", file=str(ctx.candidate.target), severity=severity,
                               missing=[p.role for p in missing])


class TrainerFields(Rule):
    code = "XQ703"
    repair = "make-restorable"
    name = "trainer-fields"
    severity = Severity.ERROR
    groups = ("trainer",)
    requires = ("model",)
    what = "A trainer checkpoint (xtts.* keys with an optimizer) carries integer epoch and step fields and an optimizer state."
    why = "Trainer.restore_model reads checkpoint['step'] and checkpoint['epoch'] unconditionally; without them a resumed run crashes after loading."
    fix = "Resume from an untouched checkpoint_N.pth of the run; a hand-edited or compacted file can only start a new fine-tune (xtts_checkpoint)."

    def check(self, ctx: Context) -> Iterable[Finding]:
        ckpt = ctx.candidate.checkpoint
        assert ckpt is not None
        if ckpt.layout != "trainer":
            return
        missing = [f for f in ("epoch", "step") if not isinstance(ckpt.top_level.get(f), int)]
        if missing:
            yield self.finding(f"trainer checkpoint without integer {', '.join(missing)}.", file=ctx.candidate.describe("model"), missing=missing)
        if ckpt.top_level.get("optimizer") is None:
            yield self.finding("trainer checkpoint without optimizer state: resuming restarts the optimizer.",
                               file=ctx.candidate.describe("model"), severity=Severity.WARNING)
