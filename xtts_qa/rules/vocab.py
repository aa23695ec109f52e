"""XQ2xx: vocab.json against the text embedding, the config's languages and the base model's vocab."""

from __future__ import annotations

from collections.abc import Iterable

from xtts_qa.results import Finding, Severity
from xtts_qa.rules.base import Context, Rule, iter_limited

SPECIAL_TOKENS = ("[START]", "[STOP]", "[SPACE]")
_TEXT_TENSORS = ("gpt.text_embedding.weight", "gpt.text_head.weight", "gpt.text_head.bias")


def language_token(lang: str) -> str:
    """The token coqui-tts's VoiceBpeTokenizer prepends for a language (``zh-cn`` -> ``[zh]``)."""
    return f"[{lang.split('-')[0]}]"


class VocabSize(Rule):
    code = "XQ201"
    name = "vocab-size-mismatch"
    severity = Severity.ERROR
    groups = ("vocab", "load")
    requires = ("model", "vocab")
    what = "The text embedding and text head have max(vocab id) + 1 rows."
    why = (
        "coqui-tts sizes the GPT from vocab.json; a different row count gives 'size mismatch for "
        "gpt.text_embedding.weight' at load."
    )
    fix = (
        "Use the vocab.json the checkpoint was trained with (normally the base model's); if you extended the vocab, "
        "the fine-tune must have been trained with the extended one."
    )

    def check(self, ctx: Context) -> Iterable[Finding]:
        size = ctx.candidate.text_tokens
        for key in _TEXT_TENSORS:
            t = ctx.tensors.get(key)
            if t is not None and t.dim() >= 1 and t.shape[0] != size:
                yield self.finding(
                    f"{key} has {t.shape[0]} rows but vocab.json defines {size} text tokens (max id + 1).",
                    file=ctx.candidate.describe("vocab"),
                    tensor=key,
                    rows=int(t.shape[0]),
                    vocab_size=size,
                )


class SpecialTokens(Rule):
    code = "XQ202"
    name = "special-tokens"
    severity = Severity.ERROR
    groups = ("vocab",)
    requires = ("vocab",)
    what = "vocab.json has the [START], [STOP] and [SPACE] tokens."
    why = (
        "coqui-tts reads the start/stop ids from the vocab and replaces spaces with [SPACE]; without them text is "
        "mis-tokenised and generation never stops cleanly."
    )
    fix = "Restore vocab.json from the base model folder; if you edited it, keep the special tokens and their ids."

    def check(self, ctx: Context) -> Iterable[Finding]:
        vocab = ctx.candidate.vocab
        assert vocab is not None
        missing = [t for t in SPECIAL_TOKENS if t not in vocab]
        if missing:
            yield self.finding(
                f"vocab.json lacks {', '.join(missing)}.", file=ctx.candidate.describe("vocab"), missing=missing
            )


class LanguageTokens(Rule):
    code = "XQ203"
    name = "language-tokens"
    severity = Severity.ERROR
    groups = ("vocab", "config")
    requires = ("vocab", "config")
    what = "Every language listed in config.json has its [xx] token in vocab.json."
    why = (
        "The tokenizer prepends [xx] to every sentence; a missing token becomes [UNK] characters and the model "
        "speaks that language badly or not at all, with no error."
    )
    fix = (
        "Add the language token to vocab.json before fine-tuning on that language (and resize the text embedding), "
        "or remove the language from config.json."
    )

    def check(self, ctx: Context) -> Iterable[Finding]:
        vocab = ctx.candidate.vocab
        assert vocab is not None
        languages = (ctx.candidate.config or {}).get("languages") or []
        if not isinstance(languages, list):  # the loader reports a non-list as an unreadable config (XQ001)
            return
        missing = [lang for lang in languages if language_token(str(lang)) not in vocab]
        if missing:
            yield self.finding(
                (
                    f"{len(missing)} configured languages have no token in vocab.json: "
                    f"{iter_limited(language_token(m) for m in missing)}"
                ),
                file=ctx.candidate.describe("vocab"),
                languages=missing,
            )


class VocabVsBase(Rule):
    code = "XQ204"
    name = "vocab-differs-from-base"
    severity = Severity.ERROR
    groups = ("vocab", "base")
    requires = ("vocab", "base.vocab")
    what = (
        "vocab.json maps every token to the same id as the base model's vocab.json (an extension that only appends "
        "tokens is reported as info)."
    )
    why = (
        "The GPT's text embedding is indexed by token id: a re-ordered vocab of the same size loads without error "
        "and speaks gibberish."
    )
    fix = (
        "Copy vocab.json from the base model folder, unless you trained this checkpoint with a deliberately extended "
        "vocab."
    )

    def check(self, ctx: Context) -> Iterable[Finding]:
        base_bundle = ctx.base
        cand, base = ctx.candidate.vocab, base_bundle.vocab if base_bundle else None
        assert cand is not None and base is not None and base_bundle is not None
        if ctx.candidate.vocab_digest() == base_bundle.vocab_digest():
            return
        moved = [t for t, i in base.items() if t in cand and cand[t] != i]
        dropped = [t for t in base if t not in cand]
        added = [t for t in cand if t not in base]
        path = ctx.candidate.describe("vocab")
        if not moved and not dropped:
            yield self.finding(
                (
                    f"vocab.json extends the base vocab with {len(added)} tokens ({iter_limited(added, 5)}); "
                    "existing ids are unchanged."
                ),
                file=path,
                severity=Severity.INFO,
                added=len(added),
            )
            return
        yield self.finding(
            f"{len(moved)} tokens changed id and {len(dropped)} base tokens are gone (e.g. "
            f"{iter_limited((moved + dropped)[:5], 5)}); "
            f"the GPT was trained on the base ids.",
            file=path,
            moved=len(moved),
            dropped=len(dropped),
            added=len(added),
        )
