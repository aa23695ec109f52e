"""XQ6xx: numeric health of every stored tensor."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch

from xtts_qa.results import Finding, Severity
from xtts_qa.rules.base import Context, Rule, iter_limited


def _all_tensors(ctx: Context) -> Iterator[tuple[str, str, torch.Tensor]]:
    """(file, key, tensor) for every tensor of the candidate."""
    c = ctx.candidate
    if c.checkpoint is not None:
        model = c.describe("model")
        for k, v in c.checkpoint.tensors.items():
            yield model, k, v
        for k, v in c.checkpoint.dvae_tensors.items():
            yield model, f"dvae.{k}", v
    if c.dvae is not None:
        for k, v in c.dvae.items():
            if isinstance(v, torch.Tensor):
                yield c.describe("dvae"), k, v
    if isinstance(c.mel_stats, torch.Tensor):
        yield c.describe("mel_stats"), "mel_stats", c.mel_stats
    if isinstance(c.speakers, dict):
        for name, entry in c.speakers.items():
            if isinstance(entry, dict):
                for k, v in entry.items():
                    if isinstance(v, torch.Tensor):
                        yield c.describe("speakers"), f"{name}.{k}", v


class NonFinite(Rule):
    code = "XQ601"
    repair = "restore-non-finite-frozen"
    name = "non-finite"
    severity = Severity.ERROR
    groups = ("numeric",)
    what = "No tensor holds NaN or Inf."
    why = (
        "A diverged fine-tune saves NaN weights; coqui-tts loads them without complaint and synthesises silence or "
        "noise."
    )
    fix = (
        "Discard this checkpoint and use an earlier one from the run (before the loss became NaN); lower the "
        "learning rate or enable gradient clipping."
    )

    def check(self, ctx: Context) -> Iterable[Finding]:
        c = ctx.candidate
        sources = [
            (c.describe("model"), ctx.stats),
            (c.describe("model"), ctx.embedded_dvae_stats),
            (c.describe("dvae"), ctx.dvae_stats),
        ]
        if isinstance(c.mel_stats, torch.Tensor):
            sources.append((c.describe("mel_stats"), ctx.scan_small({"mel_stats": c.mel_stats})))
        if isinstance(c.speakers, dict):
            flat = {f"{n}.{k}": v for n, e in c.speakers.items() if isinstance(e, dict) for k, v in e.items()}
            sources.append((c.describe("speakers"), ctx.scan_small(flat)))
        bad: dict[str, list[str]] = {}
        counts: dict[str, int] = {}
        for file, stats in sources:
            for key, s in stats.items():
                if s.nonfinite:
                    bad.setdefault(file, []).append(key)
                    counts[file] = counts.get(file, 0) + s.nonfinite
        for file, keys in bad.items():
            yield self.finding(
                f"{len(keys)} tensors contain {counts[file]} NaN/Inf values: {iter_limited(keys, 4)}",
                file=file,
                tensors=keys[:50],
                values=counts[file],
            )


class ReducedPrecision(Rule):
    code = "XQ602"
    repair = "cast-to-fp32"
    name = "reduced-precision"
    severity = Severity.WARNING
    groups = ("numeric",)
    requires = ("model",)
    what = "Floating-point tensors are stored in float32, as XTTS-v2 was released."
    why = (
        "An fp16/bf16 state dict is silently cast back to float32 at load: it works, but precision is lost for good, "
        "and comparisons against the base show drift everywhere."
    )
    fix = "Save the float32 weights (model.float().state_dict()); keep half precision for inference-time casting only."

    def check(self, ctx: Context) -> Iterable[Finding]:
        low: dict[str, int] = {}
        for _, _, t in _all_tensors(ctx):
            if t.is_floating_point() and t.dtype != torch.float32:
                low[str(t.dtype).replace("torch.", "")] = low.get(str(t.dtype).replace("torch.", ""), 0) + 1
        if low:
            text = ", ".join(f"{n} in {d}" for d, n in low.items())
            yield self.finding(
                f"{sum(low.values())} tensors are not float32 ({text}).",
                file=ctx.candidate.describe("model"),
                dtypes=low,
            )


class IntBufferFloat(Rule):
    code = "XQ603"
    repair = "restore-int-dtype"
    name = "int-buffer-float"
    severity = Severity.WARNING
    groups = ("numeric", "merge")
    requires = ("model", "config")
    # load_state_dict casts them back and nothing reads them at inference; in training they are a merge-hygiene sign
    by_intent = {"inference": Severity.INFO}
    what = "Integer buffers (BatchNorm num_batches_tracked, the DVAE's accumulator indices) are stored as integers."
    why = (
        "A merge that averages every tensor turns them into floats (often fractional). load_state_dict casts them "
        "back and inference never reads them, so it is harmless there; it shows the merge script treated counters as "
        "weights, which matters if the same script touched anything else."
    )
    fix = "In the merge script, copy non-float tensors from one input instead of averaging them; then re-merge."

    def check(self, ctx: Context) -> Iterable[Finding]:
        arch = ctx.arch
        assert arch is not None
        expected = {**arch.model, **{f"dvae.{k}": v for k, v in arch.dvae.items()}}
        bad = [
            (file, key)
            for file, key, t in _all_tensors(ctx)
            if key in expected and expected[key][1].startswith("int") and t.is_floating_point()
        ]
        if ctx.candidate.dvae is not None:
            bad += [
                (ctx.candidate.describe("dvae"), k)
                for k, t in ctx.candidate.dvae.items()
                if k in arch.dvae
                and arch.dvae[k][1].startswith("int")
                and isinstance(t, torch.Tensor)
                and t.is_floating_point()
            ]
        for file in sorted({f for f, _ in bad}):
            keys = [k for f, k in bad if f == file]
            yield self.finding(
                f"{len(keys)} integer buffers are stored as floats: {iter_limited(keys, 3)}",
                file=file,
                buffers=keys[:50],
            )
