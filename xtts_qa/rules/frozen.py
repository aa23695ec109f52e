"""XQ5xx: parts GPTTrainer never trains (HiFi-GAN decoder, speaker encoder, mel_stats) must equal the base."""

from __future__ import annotations

from collections.abc import Iterable

from xtts_qa.results import Finding, Severity
from xtts_qa.rules.base import Context, Rule
from xtts_qa.scan import aggregate


def frozen_keys(keys: Iterable[str]) -> list[str]:
    """Keys of the parts a GPT fine-tune must leave untouched."""
    return [k for k in keys if not k.startswith("gpt.")]


def component_of(key: str) -> str:
    """``hifigan_decoder.waveform_decoder``, ``hifigan_decoder.speaker_encoder``, ``mel_stats``, ..."""
    parts = key.split(".")
    return ".".join(parts[:2]) if parts[0] == "hifigan_decoder" and len(parts) > 2 else parts[0]


class FrozenDrift(Rule):
    code = "XQ501"
    repair = "restore-frozen-from-base"
    name = "frozen-weights-changed"
    severity = Severity.ERROR
    groups = ("frozen", "base", "merge")
    requires = ("model", "base.model")
    what = (
        "hifigan_decoder.* (waveform decoder and speaker encoder) equals the base model; only gpt.* may change. "
        "Differences that float rounding explains (a float16/bfloat16 save, averaging identical tensors in float32) "
        "are a note or a warning naming that cause; any larger difference is an error."
    )
    why = (
        "GPTTrainer optimises only the GPT. A decoder changed beyond rounding means the checkpoint was trained or "
        "merged outside the standard recipe (or descends from another base): the voice, timbre or speaker "
        "conditioning change without any load error."
    )
    fix = (
        "Copy the hifigan_decoder.* tensors (and mel_stats) from the base model into the checkpoint, or re-run the "
        "merge with inputs that share this base."
    )

    def check(self, ctx: Context) -> Iterable[Finding]:
        groups: dict[str, list[str]] = {}
        for key in frozen_keys(ctx.base_tensors):
            if key != "mel_stats":
                groups.setdefault(component_of(key), []).append(key)
        for component, keys in sorted(groups.items()):
            found = self.drift_finding(
                component, aggregate(ctx.stats, keys), file=ctx.candidate.describe("model"), component=component
            )
            if found:
                yield found


class MelStatsBuffer(Rule):
    code = "XQ502"
    repair = "restore-frozen-from-base"
    name = "mel-stats-buffer-changed"
    severity = Severity.ERROR
    groups = ("frozen", "base")
    requires = ("model", "base.model")
    what = "The model's mel_stats buffer equals the base model's (rounding-level differences are a note or a warning)."
    why = (
        "mel_stats normalises the conditioning mels; GPTTrainer overwrites it from mel_norm_file, so a wrong file "
        "there shifts every voice the model clones."
    )
    fix = (
        "Point the trainer's mel_norm_file at the base model's mel_stats.pth and copy the base buffer back into this "
        "checkpoint."
    )

    def check(self, ctx: Context) -> Iterable[Finding]:
        found = self.drift_finding(
            "mel_stats buffer", aggregate(ctx.stats, ["mel_stats"]), file=ctx.candidate.describe("model")
        )
        if found:
            yield found


class GptUnchanged(Rule):
    code = "XQ503"
    name = "gpt-unchanged"
    severity = Severity.WARNING
    groups = ("frozen", "base")
    requires = ("model", "base.model")
    what = "Reports a checkpoint whose GPT is bit-identical to the base (nothing was fine-tuned)."
    why = (
        "Usually the export picked the base model.pth or a checkpoint saved before the first step; the 'fine-tune' "
        "will sound exactly like the base."
    )
    fix = "Export the best_model.pth or checkpoint_N.pth of the training run, not the base model."

    def check(self, ctx: Context) -> Iterable[Finding]:
        keys = [k for k in ctx.base_tensors if k.startswith("gpt.")]
        if keys and all(k in ctx.stats and ctx.stats[k].equal for k in keys):
            yield self.finding(
                f"all {len(keys)} GPT tensors are identical to the base.", file=ctx.candidate.describe("model")
            )
