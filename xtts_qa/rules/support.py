"""XQ8xx: support files: speakers_xtts.pth and mel_stats.pth."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from xtts_qa.results import Finding, Severity
from xtts_qa.rules.base import Context, Rule, iter_limited
from xtts_qa.scan import aggregate


class SpeakersSchema(Rule):
    code = "XQ801"
    repair = "copy-speakers-from-base"
    name = "speakers-schema"
    severity = Severity.ERROR
    groups = ("support",)
    requires = ("speakers", "config")
    what = (
        "speakers_xtts.pth maps each speaker name to {gpt_cond_latent: [1, 32, gpt_n_model_channels], "
        "speaker_embedding: [1, d_vector_dim, 1]} and holds nothing else."
    )
    why = (
        "coqui-tts's SpeakerManager unpacks entries with .values(); one non-speaker entry (e.g. "
        "__speaker_metadata__) or a wrong shape breaks or mis-assigns built-in voices at synthesis time, not at load."
    )
    fix = (
        "Remove non-speaker entries and regenerate latents with this model's get_conditioning_latents(); or delete "
        "the file if you clone voices from reference audio."
    )

    def check(self, ctx: Context) -> Iterable[Finding]:
        speakers, path = ctx.candidate.speakers, ctx.candidate.describe("speakers")
        if not isinstance(speakers, dict):
            yield self.finding(f"holds a {type(speakers).__name__}, not a dict of speakers.", file=path)
            return
        args = ctx.candidate.model_args
        channels, dim = args.get("gpt_n_model_channels", 1024), args.get("d_vector_dim", 512)
        want = {"gpt_cond_latent": (1, 32, channels), "speaker_embedding": (1, dim, 1)}
        bad: list[str] = []
        for name, entry in speakers.items():
            if not isinstance(entry, dict) or set(entry) != set(want):
                bad.append(f"{name!s} (not a speaker entry)")
                continue
            for field, shape in want.items():
                t = entry[field]
                if not isinstance(t, torch.Tensor) or tuple(t.shape) != shape:
                    got = list(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                    bad.append(f"{name}.{field} {got} (expected {list(shape)})")
        if not speakers:
            yield self.finding("holds no speakers.", file=path, severity=Severity.WARNING)
        if bad:
            yield self.finding(
                f"{len(bad)} bad {'entry' if len(bad) == 1 else 'entries'}: {iter_limited(bad, 4)}",
                file=path,
                entries=bad[:20],
                speakers=len(speakers),
            )


def _mel_stats_file(ctx: Context) -> torch.Tensor | None:
    t = ctx.candidate.mel_stats
    return t if isinstance(t, torch.Tensor) else None


class MelStatsFile(Rule):
    code = "XQ802"
    repair = "copy-mel-stats-from-base"
    name = "mel-stats-file"
    severity = Severity.ERROR
    groups = ("support", "merge")
    requires = ("mel_stats", "model")
    # only GPTTrainer reads mel_stats.pth (mel_norm_file); inference uses the buffer inside model.pth
    by_intent = {"inference": Severity.INFO}
    what = "mel_stats.pth is a float tensor of shape (80,) equal to the model's mel_stats buffer."
    why = (
        "GPTTrainer copies mel_norm_file into the buffer at the start of a fine-tune: a mel_stats.pth that disagrees "
        "with the buffer (e.g. a merge took it from one input only) silently changes conditioning in the next "
        "fine-tune."
    )
    fix = "Copy mel_stats.pth from the base model folder; it must equal the base's buffer."

    def check(self, ctx: Context) -> Iterable[Finding]:
        t, path = _mel_stats_file(ctx), ctx.candidate.describe("mel_stats")
        if t is None or tuple(t.shape) != (80,) or not t.is_floating_point():
            shape = list(t.shape) if t is not None else type(ctx.candidate.mel_stats).__name__
            yield self.finding(f"holds {shape}, not a float tensor of shape (80,).", file=path)
            return
        buffer = ctx.tensors.get("mel_stats")
        if buffer is not None and tuple(buffer.shape) == (80,):
            found = self.drift_finding(
                "mel_stats.pth vs the model's mel_stats buffer",
                aggregate(ctx.scan_small({"mel_stats": t}, {"mel_stats": buffer}), ["mel_stats"]),
                file=path,
            )
            if found:
                yield found


class MelStatsVsBase(Rule):
    code = "XQ803"
    repair = "copy-mel-stats-from-base"
    name = "mel-stats-file-vs-base"
    severity = Severity.ERROR
    groups = ("support", "base")
    requires = ("mel_stats", "base.mel_stats")
    by_intent = {"inference": Severity.INFO}
    what = "mel_stats.pth is identical to the base model's mel_stats.pth."
    why = (
        "mel_stats is a property of the base model's audio front end and never changes in a fine-tune; a different "
        "file means a wrong mel_norm_file was used."
    )
    fix = "Copy mel_stats.pth from the base model folder."

    def check(self, ctx: Context) -> Iterable[Finding]:
        assert ctx.base is not None
        t, b = _mel_stats_file(ctx), ctx.base.mel_stats
        if t is None or not isinstance(b, torch.Tensor):
            return
        if tuple(b.shape) != tuple(t.shape):
            yield self.finding(
                f"has shape {list(t.shape)}, the base's {list(b.shape)}.", file=ctx.candidate.describe("mel_stats")
            )
            return
        found = self.drift_finding(
            "mel_stats.pth",
            aggregate(ctx.scan_small({"m": t}, {"m": b}), ["m"]),
            file=ctx.candidate.describe("mel_stats"),
        )
        if found:
            yield found
