"""XQ604-XQ605: tensors coqui-tts cannot load, or loads with their values destroyed."""

from __future__ import annotations

from collections.abc import Iterable

from xtts_qa.results import Finding, Severity
from xtts_qa.rules.base import Context, Rule, iter_limited

__all__ = ["UnloadableTensor", "IntegerWeights"]


class UnloadableTensor(Rule):
    code = "XQ604"
    name = "unloadable-tensor"
    severity = Severity.ERROR
    groups = ("numeric", "load")
    requires = ("model",)
    what = (
        "Every tensor is dense, carries data and is no larger than its storage: no meta, sparse or quantized "
        "tensors, no views that declare more elements than the file stores (see README: Resource limits)."
    )
    why = (
        "load_state_dict cannot copy a meta tensor (no data), a sparse or a quantized tensor into a dense float "
        "parameter, so Xtts.load_checkpoint fails; a tiny file declaring billions of elements through stride-0 "
        "views would make any loader hang or run out of memory. xtts_qa refuses to read such tensors."
    )
    fix = (
        "Re-save the weights from a loaded model: torch.save({'model': model.state_dict()}, path); call "
        ".to_dense() / .dequantize() / .contiguous() on tensors before saving, and never save meta-device models."
    )

    def check(self, ctx: Context) -> Iterable[Finding]:
        ckpt = ctx.candidate.checkpoint
        assert ckpt is not None
        problems = ckpt.tensor_problems
        if problems:
            text = [f"{k} ({reason})" for k, reason in problems.items()]
            yield self.finding(
                f"{len(problems)} tensors cannot be loaded: {iter_limited(text, 3)}",
                file=ctx.candidate.describe("model"),
                tensors=dict(list(problems.items())[:20]),
                count=len(problems),
            )


class IntegerWeights(Rule):
    code = "XQ605"
    name = "integer-weights"
    severity = Severity.ERROR
    groups = ("numeric",)
    requires = ("model", "config")
    what = "Tensors that the architecture holds as floating point are stored as floating point (not int or bool)."
    why = (
        "load_state_dict silently casts an integer tensor into a float parameter, so the model loads, but every "
        "weight was already truncated to a whole number (mostly 0) when it was saved: the model speaks noise."
    )
    fix = (
        "Re-export from the training run; never cast weights to an integer dtype (check merge and conversion scripts)."
    )

    def check(self, ctx: Context) -> Iterable[Finding]:
        arch = ctx.arch
        assert arch is not None
        expected = {**arch.inference_extra, **arch.model}
        bad = [
            f"{k} {str(t.dtype).replace('torch.', '')} (expected {expected[k][1]})"
            for k, t in ctx.tensors.items()
            if k in expected
            and expected[k][1].startswith(("float", "bfloat"))
            and not (t.is_floating_point() or t.is_complex())
        ]
        if bad:
            yield self.finding(
                f"{len(bad)} float tensors are stored as integers: {iter_limited(bad, 3)}",
                file=ctx.candidate.describe("model"),
                tensors=bad[:20],
                count=len(bad),
            )
