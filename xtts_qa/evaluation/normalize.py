"""Text normalisation before scoring, so WER measures speech errors and not spelling conventions.

English uses Whisper's own ``EnglishTextNormalizer`` (numbers to digits, contractions expanded, titles spelt
out, punctuation and case removed) as shipped in ``transformers``. Its British-to-American spelling table is
a separate download that is not available offline, so it runs with an empty table (the normaliser name says
so). Other languages use Whisper's ``BasicTextNormalizer`` (Hindi keeps its combining vowel signs, which that
normaliser would turn into spaces). Languages written without spaces (Chinese,
Japanese, Korean) are scored on characters: :meth:`Normaliser.tokens` returns one token per character, so
their "WER" is a character error rate. The normaliser's name is recorded in every result.
"""

from __future__ import annotations

import functools
import importlib.metadata
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["CHARACTER_LANGUAGES", "Normaliser", "normaliser_for", "base_language"]

#: languages scored on characters rather than words
CHARACTER_LANGUAGES = frozenset({"zh", "ja", "ko"})
#: languages whose script needs its combining marks (Whisper's basic normaliser would split their words)
_MARK_SCRIPTS = frozenset({"hi"})


def base_language(language: str) -> str:
    """``zh-cn`` -> ``zh``: the code Whisper and the normalisers use."""
    return language.lower().split("-")[0]


@dataclass(frozen=True)
class Normaliser:
    """A named text normaliser for one language.

    Attributes:
        name: recorded in results, e.g. ``whisper-english(transformers 5.2, no spelling map)``.
        language: the base language code.
        by_character: score on characters (CJK) instead of words.
        func: the normalising function.
    """

    name: str
    language: str
    by_character: bool
    func: Callable[[str], str]

    def __call__(self, text: str) -> str:
        # NFKC first: Whisper's normalisers lower-case before their own NFKC step, so compatibility characters
        # (mathematical letters, full-width forms) would otherwise come out upper-case and differ from a re-run
        return " ".join(self.func(unicodedata.normalize("NFKC", text)).split())

    def tokens(self, text: str) -> list[str]:
        """The units WER counts: words, or characters (spaces dropped) for CJK languages."""
        norm = self(text)
        if self.by_character:
            return [ch for ch in norm if not ch.isspace()]
        return norm.split()

    def joined(self, text: str) -> str:
        """The tokens joined by single spaces (what jiwer's word splitter expects)."""
        return " ".join(self.tokens(text))

    def characters(self, text: str) -> str:
        """The string CER counts: normalised text, spaces removed for CJK languages."""
        norm = self(text)
        return norm.replace(" ", "") if self.by_character else norm


@functools.lru_cache(maxsize=None)
def _english() -> Callable[[str], str]:
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    return EnglishTextNormalizer({})


@functools.lru_cache(maxsize=None)
def _basic() -> Callable[[str], str]:
    from transformers.models.whisper.english_normalizer import BasicTextNormalizer

    return BasicTextNormalizer(remove_diacritics=False, split_letters=False)


def _keep_marks(text: str) -> str:
    """Whisper's basic normaliser minus one step: it turns combining marks into spaces, which splits every
    Devanagari word into fragments, so for those scripts only symbols and punctuation are removed."""
    text = unicodedata.normalize("NFC", text.lower())
    text = re.sub(r"[<\[][^>\]]*[>\]]|\(([^)]+?)\)", "", text)
    return "".join(" " if unicodedata.category(c)[0] in "SP" else c for c in text)


@functools.lru_cache(maxsize=None)
def normaliser_for(language: str) -> Normaliser:
    """The normaliser used to score ``language`` (an XTTS language code such as ``en`` or ``zh-cn``)."""
    try:
        version = importlib.metadata.version("transformers")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - transformers is a coqui-tts dependency
        version = "?"
    lang = base_language(language)
    if lang == "en":
        return Normaliser(f"whisper-english(transformers {version}, no spelling map)", lang, False, _english())
    if lang in _MARK_SCRIPTS:
        return Normaliser("basic-keep-marks", lang, False, _keep_marks)
    by_char = lang in CHARACTER_LANGUAGES
    name = f"whisper-basic(transformers {version}{', characters' if by_char else ''})"
    return Normaliser(name, lang, by_char, _basic())
