"""XQ0xx: can the files be read at all, and is the checkpoint in one namespace."""

from __future__ import annotations

from collections.abc import Iterable

from xtts_qa.results import Finding, Severity
from xtts_qa.rules.base import Context, Rule, iter_limited

_REQUIRED = ("model", "config", "vocab")


class UnreadableFile(Rule):
    code = "XQ001"
    repair = "copy-support-from-base"
    name = "unreadable-file"
    severity = Severity.ERROR
    groups = ("input",)
    what = "Every file of the model that exists can be read: not empty, not truncated, valid JSON, a PyTorch archive."
    why = "A truncated model.pth or a corrupt vocab.json makes coqui-tts crash at load or, worse, at synthesis time."
    fix = (
        "Copy or export the file again (compare its size with the original); restore support files from the base "
        "model folder."
    )

    def check(self, ctx: Context) -> Iterable[Finding]:
        for p in ctx.candidate.problems:
            if p.kind == "unreadable":
                yield self.finding(
                    f"{p.role} file {p.path}: {p.problem}", file=p.path, fix=p.fix or self.fix, role=p.role
                )


class MissingFile(Rule):
    code = "XQ002"
    repair = "copy-support-from-base"
    name = "missing-file"
    severity = Severity.ERROR
    groups = ("input",)
    what = "model.pth (or a trainer checkpoint), config.json and vocab.json are present."
    why = (
        "Xtts.load_checkpoint needs all three: without config.json the model cannot be built, without vocab.json it "
        "raises FileNotFoundError."
    )
    fix = "Copy config.json and vocab.json from the base model folder (the fine-tune must use the base's vocab)."

    def check(self, ctx: Context) -> Iterable[Finding]:
        for p in ctx.candidate.problems:
            if p.kind == "missing" and p.role in _REQUIRED:
                yield self.finding(f"{p.role} file not found: {p.path}", file=p.path, role=p.role)


class UnsafePickle(Rule):
    code = "XQ003"
    name = "unsafe-pickle"
    severity = Severity.ERROR
    groups = ("input", "security")
    what = "Checkpoint files hold only tensors, plain containers and coqui-tts config classes."
    why = (
        "Any other pickled global can execute code when the file is loaded; xtts_qa refuses to load it, and so does "
        "torch.load(weights_only=True), which coqui-tts uses."
    )
    fix = (
        "Re-save the weights as a plain state dict from code you trust: torch.save({'model': model.state_dict()}, "
        "path)."
    )

    def check(self, ctx: Context) -> Iterable[Finding]:
        for p in ctx.candidate.problems:
            if p.kind == "refused":
                yield self.finding(f"{p.role} file {p.path}: {p.problem}", file=p.path, role=p.role)


class MixedNamespace(Rule):
    code = "XQ004"
    repair = "strip-prefix"
    name = "mixed-namespace"
    severity = Severity.ERROR
    groups = ("input", "merge")
    requires = ("model",)
    what = "All keys use one namespace (all `xtts.`-prefixed or none) and no two stored keys name the same parameter."
    why = (
        "Merging inputs saved in different forms (trainer vs inference keys, weight_g/weight_v vs parametrizations) "
        "leaves two copies of a parameter; coqui-tts keeps whichever comes last, silently."
    )
    fix = (
        "Convert every merge input to the inference namespace (strip 'xtts.', drop dvae.*) and one weight-norm "
        "naming before averaging, then merge again."
    )

    def check(self, ctx: Context) -> Iterable[Finding]:
        ckpt = ctx.candidate.checkpoint
        assert ckpt is not None
        path = ctx.candidate.describe("model")
        if ckpt.layout == "mixed":
            prefixed = sum(1 for k in ckpt.raw_keys if k.startswith("xtts."))
            yield self.finding(
                f"{prefixed} keys carry the trainer prefix 'xtts.' and {len(ckpt.raw_keys) - prefixed} do not.",
                file=path,
                prefixed=prefixed,
                total=len(ckpt.raw_keys),
            )
        if ckpt.collisions:
            names = [f"{k} <- {' + '.join(v)}" for k, v in ckpt.collisions.items()]
            yield self.finding(
                f"{len(ckpt.collisions)} parameters are stored twice under different names: {iter_limited(names, 3)}",
                file=path,
                collisions=dict(list(ckpt.collisions.items())[:20]),
            )


class ForeignEntries(Rule):
    code = "XQ005"
    repair = "drop-stray-keys"
    name = "non-tensor-entries"
    severity = Severity.ERROR
    groups = ("input",)
    requires = ("model",)
    what = "The state dict holds only tensors keyed by strings."
    why = (
        "Xtts.load_checkpoint(strict=True) refuses them as unexpected keys; they usually mean metadata or a wrong "
        "object was saved into the state dict."
    )
    fix = (
        "Save model.state_dict() itself; keep metadata beside it (top-level keys of the saved dict), not inside "
        "'model'."
    )

    def check(self, ctx: Context) -> Iterable[Finding]:
        ckpt = ctx.candidate.checkpoint
        assert ckpt is not None
        if ckpt.foreign:
            yield self.finding(
                f"{len(ckpt.foreign)} state-dict entries are not tensors: {iter_limited(ckpt.foreign)}",
                file=ctx.candidate.describe("model"),
                entries=ckpt.foreign[:20],
            )


class UnusableConfig(Rule):
    code = "XQ006"
    name = "unusable-config"
    severity = Severity.ERROR
    groups = ("input", "config")
    what = "config.json's model_args build an Xtts model with coqui-tts."
    why = "Xtts.init_from_config fails on the same values, so the checkpoint cannot be loaded at all."
    fix = "Restore config.json from the base model folder and re-apply only training fields."

    def check(self, ctx: Context) -> Iterable[Finding]:
        if ctx.candidate.config is not None and ctx.arch is None and ctx.arch_error:
            yield self.finding(
                f"coqui-tts cannot build a model from it ({ctx.arch_error}).", file=ctx.candidate.config_source
            )


class CoquiRefusesPickle(Rule):
    code = "XQ007"
    name = "coqui-refuses-pickle"
    severity = Severity.ERROR
    groups = ("input", "load")
    requires = ("model",)
    what = (
        "Config objects pickled inside model.pth use only the classes and module paths the installed coqui-tts "
        "allows (read from coqui-tts's own weights_only allowlist, _legacy_safe_globals)."
    )
    why = (
        "torch.save of a dict holding an XttsConfig with coqui-tts >= 0.24 pickles XttsArgs / XttsAudioConfig under "
        "TTS.tts.configs.xtts_config; coqui-tts 0.28 allows them only under their old path, so Xtts.load_checkpoint "
        "raises 'UnpicklingError: Unsupported global' although every tensor is fine."
    )
    fix = (
        "Re-save the checkpoint with the config as a plain dict: ckpt['config'] = config.to_dict() (or drop it; "
        "config.json beside the model is what coqui reads)."
    )

    def check(self, ctx: Context) -> Iterable[Finding]:
        from xtts_qa.loadability import refused_globals

        path = ctx.candidate.paths.get("model")
        if ctx.candidate.checkpoint is None or path is None or not path.is_file():
            return
        refused = refused_globals(path)
        if refused is None:
            yield self.finding(
                "model.pth pickles config classes, and coqui-tts's own allowlist could not be read here, so whether "
                "coqui-tts accepts them is unknown.",
                file=str(path),
                severity=Severity.WARNING,
                fix="Install coqui-tts in this environment and re-run the check, or re-save the config as a dict.",
            )
        elif refused:
            yield self.finding(
                f"coqui-tts would refuse to unpickle {iter_limited(refused, 3)} (UnpicklingError: Unsupported global).",
                file=str(path),
                globals=refused[:20],
            )
