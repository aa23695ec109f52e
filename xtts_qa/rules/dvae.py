"""XQ4xx: dvae.pth, the frozen audio tokenizer GPTTrainer uses to turn training audio into target codes."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from xtts_qa.checkpoint import strip_dvae_prefix
from xtts_qa.results import Finding, Severity
from xtts_qa.rules.base import Context, Rule, iter_limited
from xtts_qa.scan import aggregate


class DvaeKeySet(Rule):
    code = "XQ401"
    repair = "copy-dvae-from-base"
    name = "dvae-key-set"
    severity = Severity.ERROR
    groups = ("dvae", "finetune")
    requires = ("dvae", "config")
    # inference never reads dvae.pth (Xtts.load_checkpoint ignores it): a note there, as a missing one is (XQ702)
    by_intent = {"inference": Severity.INFO}
    what = (
        "dvae.pth is a bare DiscreteVAE state dict: exactly its keys (encoder.*, decoder.*, codebook.*, "
        "discrete_loss.*), unprefixed, with the shapes GPTTrainer builds."
    )
    why = (
        "GPTTrainer loads dvae.pth with strict=False: keys that do not match (e.g. 'dvae.'-prefixed ones written by "
        "an export) are dropped silently, the DVAE stays random, and the next fine-tune learns garbage codes and "
        "speaks gibberish."
    )
    fix = "Copy dvae.pth from the base XTTS-v2 model folder; never re-save it from a trainer checkpoint."

    def check(self, ctx: Context) -> Iterable[Finding]:
        dvae, arch, path = ctx.candidate.dvae, ctx.arch, ctx.candidate.describe("dvae")
        assert dvae is not None and arch is not None
        tensors = {k: v for k, v in dvae.items() if isinstance(v, torch.Tensor)}
        expected = arch.dvae
        loadable = [k for k in tensors if k in expected and tuple(tensors[k].shape) == expected[k][0]]
        if len(loadable) == len(expected) == len(tensors):
            return
        prefixes = sorted(
            {k.split(".", 1)[0] + "." for k in tensors if k.split(".", 1)[-1] in expected and k not in expected}
        )
        missing = [k for k in expected if k not in tensors]
        unexpected = [k for k in tensors if k not in expected]
        shape = [k for k in tensors if k in expected and k not in loadable]
        parts = [f"only {len(loadable)} of {len(expected)} DiscreteVAE keys would load (GPTTrainer uses strict=False)"]
        if prefixes and {k.split(".", 1)[-1] for k in unexpected} >= set(missing):
            parts.append(
                f"the keys carry the prefix {', '.join(prefixes)} (an export re-saved the trainer's dvae.* keys)"
            )
        else:
            if missing:
                parts.append(f"{len(missing)} missing ({iter_limited(missing, 3)})")
            if unexpected:
                parts.append(f"{len(unexpected)} unexpected ({iter_limited(unexpected, 3)})")
        if shape:
            parts.append(f"{len(shape)} with the wrong shape ({iter_limited(shape, 3)})")
        yield self.finding(
            "; ".join(parts) + ".",
            file=path,
            loadable=len(loadable),
            expected=len(expected),
            prefixes=prefixes,
            missing=len(missing),
            unexpected=len(unexpected),
            wrong_shape=len(shape),
        )


class DvaeVsBase(Rule):
    code = "XQ402"
    repair = "copy-dvae-from-base"
    name = "dvae-differs-from-base"
    severity = Severity.ERROR
    groups = ("dvae", "frozen", "base", "finetune")
    requires = ("base.dvae",)
    by_intent = {"inference": Severity.INFO}
    what = (
        "dvae.pth, and any dvae.* tensors inside a trainer checkpoint, equal the base model's dvae.pth. Differences "
        "that float rounding explains (a half-precision save, float32 averaging in a merge) are a note or a warning."
    )
    why = (
        "The DVAE is never trained; a different one produces different audio codes than the GPT learnt, which is how "
        "sequential fine-tunes end up garbled. Inference never reads it."
    )
    fix = "Copy dvae.pth from the base model folder."

    def check(self, ctx: Context) -> Iterable[Finding]:
        assert ctx.base is not None and ctx.base.dvae is not None
        base_keys = list(strip_dvae_prefix(ctx.base.dvae))
        sources = []
        if ctx.candidate.dvae is not None:
            sources.append((ctx.candidate.describe("dvae"), ctx.dvae_stats))
        if ctx.embedded_dvae_stats:
            sources.append((f"{ctx.candidate.describe('model')} (embedded dvae.*)", ctx.embedded_dvae_stats))
        for where, stats in sources:
            drift = aggregate(stats, base_keys)
            absent = len(base_keys) - drift.compared
            if absent:
                yield self.finding(
                    f"{where}: {absent} of {len(base_keys)} DVAE tensors of the base are absent"
                    + (f" and {drift.beyond_rounding} differ beyond rounding" if drift.beyond_rounding else "")
                    + ".",
                    file=where,
                    **drift.to_dict(),
                    absent=absent,
                )
                continue
            found = self.drift_finding(f"{where} DVAE", drift, file=where, absent=0)
            if found:
                yield found
