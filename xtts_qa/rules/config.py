"""XQ3xx: config.json's model_args against the tensors they describe, and against the base config."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from xtts_qa.results import Finding, Severity
from xtts_qa.rules.base import Context, Rule

_LAYER = re.compile(r"^gpt\.gpt\.h\.(\d+)\.")
#: model_args that change tensor shapes or generation; the rest (paths, batch size) may differ freely
SHAPE_ARGS = (
    "gpt_layers",
    "gpt_n_model_channels",
    "gpt_n_heads",
    "gpt_num_audio_tokens",
    "gpt_start_audio_token",
    "gpt_stop_audio_token",
    "gpt_max_audio_tokens",
    "gpt_max_text_tokens",
    "gpt_max_prompt_tokens",
    "gpt_use_perceiver_resampler",
    "gpt_code_stride_len",
    "decoder_input_dim",
    "d_vector_dim",
    "input_sample_rate",
    "output_sample_rate",
    "output_hop_length",
    "cond_d_vector_in_each_upsampling_layer",
)


def _arg(ctx: Context, name: str) -> Any:
    return ctx.candidate.model_args.get(name)


class AudioTokens(Rule):
    code = "XQ301"
    name = "audio-tokens-mismatch"
    severity = Severity.ERROR
    groups = ("config",)
    requires = ("model", "config")
    what = "gpt_num_audio_tokens in config.json equals the rows of gpt.mel_embedding and gpt.mel_head."
    why = (
        "A config with XTTS v1 defaults (8194 audio tokens) against v2 tensors (1026) fails to load with misleading "
        "errors about gpt.gpt_inference keys."
    )
    fix = (
        "Use the XTTS-v2 config.json the checkpoint was trained with (gpt_num_audio_tokens 1026, start 1024, stop "
        "1025)."
    )

    def check(self, ctx: Context) -> Iterable[Finding]:
        want = _arg(ctx, "gpt_num_audio_tokens")
        for key in ("gpt.mel_embedding.weight", "gpt.mel_head.weight"):
            t = ctx.tensors.get(key)
            if t is not None and want is not None and t.dim() >= 1 and t.shape[0] != want:
                hint = " (XTTS v1 defaults in config.json)" if want == 8194 else ""
                yield self.finding(
                    f"config.json says gpt_num_audio_tokens={want}{hint}, but {key} has {t.shape[0]} rows.",
                    file=ctx.candidate.config_source,
                    tensor=key,
                    rows=int(t.shape[0]),
                    config=want,
                )


class Perceiver(Rule):
    code = "XQ302"
    name = "perceiver-mismatch"
    severity = Severity.ERROR
    groups = ("config",)
    requires = ("model", "config")
    what = "gpt_use_perceiver_resampler in config.json agrees with whether gpt.conditioning_perceiver.* tensors exist."
    why = (
        "XTTS-v2 conditions on the perceiver resampler; a config without it builds a v1 model that cannot load v2 "
        "weights (and vice versa)."
    )
    fix = "Set model_args.gpt_use_perceiver_resampler to match the checkpoint (true for XTTS-v2)."

    def check(self, ctx: Context) -> Iterable[Finding]:
        flag = bool(_arg(ctx, "gpt_use_perceiver_resampler"))
        has = any(k.startswith("gpt.conditioning_perceiver.") for k in ctx.tensors)
        if flag != has:
            yield self.finding(
                f"config.json says gpt_use_perceiver_resampler={str(flag).lower()} but the checkpoint "
                f"{'has' if has else 'has no'} gpt.conditioning_perceiver tensors.",
                file=ctx.candidate.config_source,
                config=flag,
                tensors=has,
            )


class ModelChannels(Rule):
    code = "XQ303"
    name = "channels-mismatch"
    severity = Severity.ERROR
    groups = ("config",)
    requires = ("model", "config")
    what = "gpt_n_model_channels equals the width of the GPT's text embedding."
    why = "A different width means config.json describes another model size; nothing in the GPT will load."
    fix = "Use the config.json that belongs to this checkpoint."

    def check(self, ctx: Context) -> Iterable[Finding]:
        want = _arg(ctx, "gpt_n_model_channels")
        t = ctx.tensors.get("gpt.text_embedding.weight")
        if t is not None and want is not None and t.dim() == 2 and t.shape[1] != want:
            yield self.finding(
                f"config.json says gpt_n_model_channels={want}, but gpt.text_embedding.weight is {t.shape[1]} wide.",
                file=ctx.candidate.config_source,
                config=want,
                tensor_width=int(t.shape[1]),
            )


class LayerCount(Rule):
    code = "XQ304"
    name = "layers-mismatch"
    severity = Severity.ERROR
    groups = ("config",)
    requires = ("model", "config")
    what = "gpt_layers equals the number of transformer blocks (gpt.gpt.h.N) in the checkpoint."
    why = "Extra blocks are unexpected keys and missing ones stay random under a non-strict loader."
    fix = "Use the config.json that belongs to this checkpoint (XTTS-v2: gpt_layers 30)."

    def check(self, ctx: Context) -> Iterable[Finding]:
        want = _arg(ctx, "gpt_layers")
        blocks = {int(m.group(1)) for k in ctx.tensors if (m := _LAYER.match(k))}
        if want is not None and blocks and len(blocks) != want:
            yield self.finding(
                f"config.json says gpt_layers={want}, but the checkpoint has {len(blocks)} transformer blocks.",
                file=ctx.candidate.config_source,
                config=want,
                blocks=len(blocks),
            )


class ConfigVsBase(Rule):
    code = "XQ305"
    name = "config-differs-from-base"
    severity = Severity.WARNING
    groups = ("config", "base")
    requires = ("config", "base")
    what = "model_args that shape the model or its generation, and the language list, equal the base model's."
    why = (
        "A fine-tune keeps the base architecture; a different value means a mismatched config.json or a different "
        "model family."
    )
    fix = "Copy the architecture fields from the base config.json (training-only fields may differ)."

    def check(self, ctx: Context) -> Iterable[Finding]:
        assert ctx.base is not None
        if ctx.base.config is None:
            return
        mine, theirs = ctx.candidate.model_args, ctx.base.model_args
        changed = {k: [theirs.get(k), mine.get(k)] for k in SHAPE_ARGS if mine.get(k) != theirs.get(k)}
        langs = [ctx.base.config.get("languages"), (ctx.candidate.config or {}).get("languages")]
        if langs[0] != langs[1]:
            changed["languages"] = langs
        if changed:
            text = ", ".join(f"{k}: {v[0]} -> {v[1]}" for k, v in list(changed.items())[:6])
            yield self.finding(
                f"config.json differs from the base: {text}", file=ctx.candidate.config_source, changed=changed
            )
