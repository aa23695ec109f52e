"""Text normalisation before scoring, so WER measures speech errors and not spelling conventions.

Rules, each recorded in the normaliser's name (and so in every result and the report's provenance):

* English: Whisper's ``EnglishTextNormalizer`` from the ``whisper-normalizer`` package, which carries OpenAI's
  British-to-American spelling map (numbers to digits, contractions expanded, titles spelt out, punctuation and
  case removed).
* Other languages: Whisper's ``BasicTextNormalizer`` (same package), keeping diacritics; Hindi keeps its combining
  vowel signs, which that normaliser would turn into spaces.
* Numbers, so "nueve" and "9" agree: spelt-out numbers become digits with ``text2num`` (``alpha2digit``) for the
  languages it knows (es, fr, de, pt, it, nl; English is done by Whisper's normaliser); for the others, digits
  become words with ``num2words`` (Chinese uses the ``ja`` numerals, the same characters).
* Chinese: Traditional folded to Simplified with OpenCC (``t2s``) before scoring.
* Chinese, Japanese and Korean are scored on characters: :meth:`Normaliser.tokens` returns one token per character,
  so their "WER" is a character error rate.
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
#: spelt-out numbers -> digits (text2num)
_TEXT2NUM = frozenset({"es", "fr", "de", "pt", "it", "nl"})
#: digits -> words (num2words language code)
_NUM2WORDS = {
    "ja": "ja",
    "zh": "ja",
    "ko": "ko",
    "ru": "ru",
    "pl": "pl",
    "cs": "cs",
    "hu": "hu",
    "tr": "tr",
    "ar": "ar",
}
_DIGITS = re.compile(r"\d+")


def base_language(language: str) -> str:
    """``zh-cn`` -> ``zh``: the code Whisper and the normalisers use."""
    return language.lower().split("-")[0]


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


@dataclass(frozen=True)
class Normaliser:
    """A named text normaliser for one language.

    Attributes:
        name: the rules applied, with package versions, e.g.
            ``whisper-english(whisper-normalizer 0.1.15, spelling map)``.
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


@functools.cache
def _english() -> Callable[[str], str]:
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


@functools.cache
def _basic() -> Callable[[str], str]:
    from whisper_normalizer.basic import BasicTextNormalizer

    return BasicTextNormalizer(remove_diacritics=False, split_letters=False)


@functools.cache
def _t2s() -> Callable[[str], str]:
    import opencc

    return opencc.OpenCC("t2s").convert


def _keep_marks(text: str) -> str:
    """Whisper's basic normaliser minus one step: it turns combining marks into spaces, which splits every
    Devanagari word into fragments, so for those scripts only symbols and punctuation are removed."""
    text = unicodedata.normalize("NFC", text.lower())
    text = re.sub(r"[<\[][^>\]]*[>\]]|\(([^)]+?)\)", "", text)
    return "".join(" " if unicodedata.category(c)[0] in "SP" else c for c in text)


def _words_to_digits(lang: str) -> Callable[[str], str]:
    from text_to_num import alpha2digit

    return lambda text: alpha2digit(text, lang)


def _digits_to_words(lang: str) -> Callable[[str], str]:
    from num2words import num2words

    def convert(text: str) -> str:
        return _DIGITS.sub(lambda m: f" {num2words(int(m.group()), lang=lang)} ", text)

    return convert


def _chain(*steps: Callable[[str], str]) -> Callable[[str], str]:
    def run(text: str) -> str:
        for step in steps:
            text = step(text)
        return text

    return run


@functools.cache
def normaliser_for(language: str) -> Normaliser:
    """The normaliser used to score ``language`` (an XTTS language code such as ``en`` or ``zh-cn``)."""
    lang = base_language(language)
    wn = f"whisper-normalizer {_version('whisper-normalizer')}"
    if lang == "en":
        return Normaliser(f"whisper-english({wn}, spelling map)", lang, False, _english())
    steps: list[Callable[[str], str]] = []
    rules: list[str] = []
    if lang in _NUM2WORDS:
        steps.append(_digits_to_words(_NUM2WORDS[lang]))
        rules.append(f"num2words {_version('num2words')} digits->words({_NUM2WORDS[lang]})")
    if lang == "zh":
        # after the numbers: the Japanese numerals num2words writes (億) are folded to Simplified (亿) too
        steps.append(_t2s())
        rules.append(f"opencc {_version('opencc')} t2s")
    if lang in _MARK_SCRIPTS:
        return Normaliser("basic-keep-marks", lang, False, _chain(*steps, _keep_marks))
    steps.append(_basic())
    rules.append(wn + " basic")
    if lang in _TEXT2NUM:
        # after the basic normaliser: punctuation and case are gone, text2num sees plain words
        steps.append(_words_to_digits(lang))
        rules.append(f"text2num {_version('text2num')} words->digits({lang})")
    by_char = lang in CHARACTER_LANGUAGES
    if by_char:
        rules.append("characters")
    return Normaliser(f"whisper-basic({', '.join(rules)})", lang, by_char, _chain(*steps))
