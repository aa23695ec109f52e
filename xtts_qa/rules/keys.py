"""XQ1xx: strict key accounting against the architecture config.json + vocab.json describe."""

from __future__ import annotations

from collections.abc import Iterable

from xtts_qa.loadability import expected_keys as _expected
from xtts_qa.loadability import extras_present as _extras_present
from xtts_qa.loadability import missing_keys, shape_mismatches, unexpected_keys
from xtts_qa.loadability import uses_v1_layout as _uses_v1_layout
from xtts_qa.results import Finding, Severity
from xtts_qa.rules.base import Context, Rule, iter_limited


class MissingKeys(Rule):
    code = "XQ101"
    repair = "restore-missing-frozen"
    name = "missing-keys"
    severity = Severity.ERROR
    groups = ("keys", "load")
    requires = ("model", "config")
    what = "Every parameter and buffer of the Xtts model that config.json describes is in the checkpoint."
    why = (
        "Xtts.load_checkpoint(strict=True) refuses the file; with strict=False (GPTTrainer) the missing layers "
        "silently stay random."
    )
    fix = (
        "Check that config.json belongs to this checkpoint (layers, channels, perceiver); re-export the checkpoint "
        "from the training run."
    )

    def check(self, ctx: Context) -> Iterable[Finding]:
        missing = missing_keys(ctx)
        if missing:
            yield self.finding(
                f"{len(missing)} of {len(_expected(ctx))} expected keys are missing: {iter_limited(missing)}",
                file=ctx.candidate.describe("model"),
                missing=missing[:50],
                count=len(missing),
            )


class UnexpectedKeys(Rule):
    code = "XQ102"
    repair = "drop-stray-keys"
    name = "unexpected-keys"
    severity = Severity.ERROR
    groups = ("keys", "load")
    requires = ("model", "config")
    what = "The checkpoint holds no keys the architecture lacks (after stripping the trainer prefix and dvae/mel keys)."
    why = (
        "Xtts.load_checkpoint(strict=True) refuses the file; extra keys usually mean the wrong config.json or a "
        "foreign model."
    )
    fix = "Use the config.json the checkpoint was trained with; drop keys of other models before saving."

    def check(self, ctx: Context) -> Iterable[Finding]:
        arch = ctx.arch
        assert arch is not None
        extra = [k for k in unexpected_keys(ctx) if k not in arch.inference_extra]
        if extra:
            yield self.finding(
                f"{len(extra)} keys are not part of the model config.json describes: {iter_limited(extra)}",
                file=ctx.candidate.describe("model"),
                unexpected=extra[:50],
                count=len(extra),
            )


class ShapeMismatch(Rule):
    code = "XQ103"
    name = "shape-mismatch"
    severity = Severity.ERROR
    groups = ("keys", "load")
    requires = ("model", "config")
    what = "Every tensor has the shape that config.json and vocab.json imply."
    why = "coqui-tts raises 'size mismatch for ...' at load; GPTTrainer (strict=False) drops or resizes the tensor."
    fix = (
        "Pair the checkpoint with the config.json and vocab.json it was trained with (see the vocab and config rules "
        "for the cause)."
    )

    def check(self, ctx: Context) -> Iterable[Finding]:
        bad = shape_mismatches(ctx)
        if bad:
            text = [f"{k} {list(got)} (expected {list(want)})" for k, got, want in bad]
            yield self.finding(
                f"{len(bad)} tensors have the wrong shape: {iter_limited(text, 4)}",
                file=ctx.candidate.describe("model"),
                mismatches=[[k, list(g), list(w)] for k, g, w in bad[:50]],
            )


class InferenceKeys(Rule):
    code = "XQ104"
    repair = "drop-stray-keys"
    name = "v1-inference-keys"
    severity = Severity.WARNING
    groups = ("keys",)
    requires = ("model", "config")
    what = "No gpt.gpt_inference.* copies of the GPT weights are stored (XTTS v1 checkpoints had them)."
    why = (
        "A complete set only loads through coqui-tts's v1 fallback and doubles the GPT's size on disk; a partial set "
        "fails to load, and merges may average the copies differently."
    )
    fix = (
        "Load the model, then save {'model': state_dict} without the gpt_inference entries (they are rebuilt at load)."
    )

    def check(self, ctx: Context) -> Iterable[Finding]:
        present = sorted(_extras_present(ctx))
        if present:
            complete = _uses_v1_layout(ctx)
            kind = (
                "the complete v1 set: loads via the v1 fallback"
                if complete
                else "an incomplete set: strict loading fails"
            )
            yield self.finding(
                f"{len(present)} gpt_inference keys stored ({kind}).",
                file=ctx.candidate.describe("model"),
                severity=Severity.WARNING if complete else Severity.ERROR,
                count=len(present),
                complete=complete,
            )


class LegacyWeightNorm(Rule):
    code = "XQ105"
    name = "legacy-weight-norm"
    severity = Severity.INFO
    groups = ("keys", "merge")
    requires = ("model",)
    what = (
        "Reports weight-norm parameters stored as weight_g/weight_v (old torch) instead of "
        "parametrizations.weight.original0/1."
    )
    why = (
        "torch converts the old names at load, so the model loads; but a merge that mixes both namings averages "
        "nothing for those layers (see XQ004)."
    )
    fix = "Nothing for inference. Before merging, load and re-save every input with the same torch version."

    def check(self, ctx: Context) -> Iterable[Finding]:
        ckpt = ctx.candidate.checkpoint
        assert ckpt is not None
        if ckpt.renamed:
            yield self.finding(
                f"{len(ckpt.renamed)} weight-norm tensors use the legacy weight_g/weight_v names.",
                file=ctx.candidate.describe("model"),
                count=len(ckpt.renamed),
            )
