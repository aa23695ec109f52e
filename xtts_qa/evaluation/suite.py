"""Evaluation suites: YAML files listing sentences, speaker references and gates, validated with a JSON schema.

A suite is found by path or by name (``smoke-en`` -> ``smoke-en.yaml``, searched in ``$XTTS_QA_SUITES``,
``./suites`` and the built-in suites shipped as package data in ``xtts_qa/suites/``, read with
:mod:`importlib.resources` so they resolve the same from a wheel as from a checkout). Speaker references are wav
paths (relative to the suite file) or ``{espeak: {voice, text}}`` clips generated at run time, so no audio is ever
committed::

    name: smoke-en
    language: en
    seed: 1234
    speakers:
      narrator: {espeak: {voice: en-us, text: "A reference sentence of a few seconds."}}
    gates: ["wer <= 0.5", "wer_delta <= 0.05", "similarity_delta >= -0.05"]
    sentences:
      - {id: numbers, text: "There are 25 apples and 3 pears."}
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib.resources
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from xtts_qa.errors import InputError, UsageError
from xtts_qa.limits import MAX_SENTENCE_CHARS
from xtts_qa.safeyaml import load_yaml

__all__ = [
    "LANGUAGES",
    "SCHEMA",
    "SpeakerSpec",
    "Sentence",
    "Suite",
    "builtin_suites",
    "load_suite",
    "suite_paths",
    "parse_suite",
]

#: XTTS-v2's languages
LANGUAGES = ("en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru", "nl", "cs", "ar", "zh-cn", "hu", "ko", "ja", "hi")

#: spoken text: something to say (not only whitespace), bounded in length
_TEXT = {"type": "string", "minLength": 1, "maxLength": MAX_SENTENCE_CHARS, "pattern": "\\S"}
_SPEAKER = {
    "oneOf": [
        {"type": "string", "minLength": 1},
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["path"],
            "properties": {"path": {"type": "string", "minLength": 1}},
        },
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["espeak"],
            "properties": {
                "espeak": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["text"],
                    "properties": {
                        "voice": {"type": "string"},
                        "text": _TEXT,
                        "speed": {"type": "integer", "minimum": 80, "maximum": 450},
                        "pitch": {"type": "integer", "minimum": 0, "maximum": 99},
                    },
                }
            },
        },
    ]
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "sentences"],
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z0-9_.-]+$"},
        "description": {"type": "string"},
        "language": {"enum": list(LANGUAGES)},
        "seed": {"type": "integer", "minimum": 0},
        "speaker": {"type": "string"},
        "reference": _SPEAKER,
        "speakers": {"type": "object", "minProperties": 1, "additionalProperties": _SPEAKER},
        "gates": {"type": "array", "items": {"type": "string"}},
        "sentences": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "text"],
                "properties": {
                    "id": {"type": "string", "pattern": "^[A-Za-z0-9_.-]+$"},
                    "text": _TEXT,
                    "language": {"enum": list(LANGUAGES)},
                    "speaker": {"type": "string"},
                    "voice": {"type": "string"},
                    "note": {"type": "string"},
                },
            },
        },
    },
}


@dataclass(frozen=True)
class SpeakerSpec:
    """Where a speaker's reference clip comes from.

    Attributes:
        name: the speaker's name in the suite.
        path: a wav file (absolute, resolved against the suite folder), or None.
        espeak_voice: espeak-ng voice for a generated reference.
        espeak_text: what the generated reference says.
        espeak_speed: words per minute (espeak ``-s``), or None for the default.
        espeak_pitch: espeak ``-p``, or None.
    """

    name: str
    path: Path | None = None
    espeak_voice: str = "en-us"
    espeak_text: str = ""
    espeak_speed: int | None = None
    espeak_pitch: int | None = None


@dataclass(frozen=True)
class Sentence:
    """One sentence to synthesise.

    Attributes:
        id: unique within the suite.
        text: what to say.
        language: XTTS language code.
        speaker: the speaker reference to clone.
        voice: voice name for the command backend (``{voice}``), or None for the language's default.
    """

    id: str
    text: str
    language: str
    speaker: str
    voice: str | None = None


@dataclass(frozen=True)
class Suite:
    """A parsed suite.

    Attributes:
        name: the suite's name.
        path: the file it was read from.
        seed: base seed; each sentence's seed is derived from it and the sentence id.
        speakers: name -> reference spec.
        sentences: in file order.
        gates: gate expressions.
        description: free text.
    """

    name: str
    path: Path
    seed: int
    speakers: dict[str, SpeakerSpec]
    sentences: tuple[Sentence, ...]
    gates: tuple[str, ...]
    description: str = ""

    @property
    def languages(self) -> list[str]:
        return sorted({s.language for s in self.sentences})

    def seed_for(self, sentence: Sentence) -> int:
        """A per-sentence seed stable under adding or reordering sentences."""
        import zlib

        return (self.seed + zlib.crc32(sentence.id.encode())) % (2**31)


@functools.cache
def builtin_suites() -> Path:
    """The folder of the suites shipped inside the package (``xtts_qa/suites``, package data).

    Read through :mod:`importlib.resources`: an installed wheel or an editable checkout give the folder itself; a
    zipped install is extracted once to a temporary folder that lives until the interpreter exits.
    """
    resource = importlib.resources.files("xtts_qa") / "suites"
    if isinstance(resource, Path):
        return resource
    stack = contextlib.ExitStack()
    atexit.register(stack.close)
    return Path(stack.enter_context(importlib.resources.as_file(resource)))


def _format_hint() -> str:
    return f"see {builtin_suites() / 'smoke-en.yaml'} for the format."


def suite_paths() -> list[Path]:
    """Folders searched for suites by name, first match wins: ``$XTTS_QA_SUITES``, ``./suites``, the built-ins."""
    found = [Path(p) for p in os.environ.get("XTTS_QA_SUITES", "").split(os.pathsep) if p]
    found += [Path.cwd() / "suites", builtin_suites()]
    return found


def _resolve(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise InputError(path, "suite file not found.", "check the path, or pass a suite name such as smoke-en.")
        return path
    for folder in suite_paths():
        for ext in (".yaml", ".yml"):
            if (folder / f"{name_or_path}{ext}").is_file():
                return folder / f"{name_or_path}{ext}"
    names = sorted({p.stem for folder in suite_paths() if folder.is_dir() for p in folder.glob("*.y*ml")})
    raise UsageError(
        f"no suite named {str(name_or_path)!r}; known suites: {', '.join(names) or 'none'} "
        f"(searched {', '.join(str(f) for f in suite_paths())})."
    )


def _speaker(name: str, raw: Any, folder: Path) -> SpeakerSpec:
    if isinstance(raw, str):
        raw = {"path": raw}
    if "path" in raw:
        path = Path(raw["path"]).expanduser()
        return SpeakerSpec(name, path if path.is_absolute() else (folder / path).resolve())
    spec = raw["espeak"]
    return SpeakerSpec(name, None, spec.get("voice", "en-us"), spec["text"], spec.get("speed"), spec.get("pitch"))


def _json_type(value: Any) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _describe(error: jsonschema.ValidationError) -> str:
    """A schema error in one short line that never repeats the offending value (which may be huge)."""
    kind, want, got = error.validator, error.validator_value, error.instance
    if kind == "type":
        return f"expected {want}, got {_json_type(got)}."
    if kind == "required":
        missing = [k for k in want if isinstance(got, dict) and k not in got]
        return "; ".join(f"{repr(k)[:40]} is a required property" for k in missing[:3]) + "."
    if kind == "additionalProperties" and isinstance(got, dict):
        allowed = set(error.schema.get("properties") or {})
        extra = [repr(k)[:40] for k in got if k not in allowed]
        return f"unknown field {', '.join(extra[:3])}{' ...' if len(extra) > 3 else ''}."
    if kind == "enum":
        return f"must be one of {', '.join(map(str, want))}."
    if kind == "pattern":
        return "must contain a non-space character." if want == "\\S" else f"must match {want}."
    if kind in ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "minimum", "maximum"):
        return f"breaks {kind} {want}."
    if kind == "oneOf":
        return "matches none of the allowed forms (a wav path, {path: ...} or {espeak: {text: ...}})."
    return f"breaks the schema rule {kind!r}."


def parse_suite(data: Any, path: Path) -> Suite:
    """Validate a loaded YAML document and build a :class:`Suite`.

    Raises:
        InputError: the document breaks the schema, names an unknown speaker or repeats a sentence id.
    """
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p)[:40] for p in first.absolute_path) or "(top level)"
        raise InputError(
            path,
            f"suite does not match the schema at {where[:200]}: {_describe(first)}"
            + (f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""),
            _format_hint(),
        )
    speakers_raw = dict(data.get("speakers") or {})
    if "reference" in data:
        speakers_raw.setdefault("default", data["reference"])
    if not speakers_raw:
        raise InputError(
            path,
            "suite names no speaker reference.",
            "add `reference: {espeak: {voice: en-us, text: ...}}` or a `speakers:` map.",
        )
    speakers = {name: _speaker(name, raw, path.parent) for name, raw in speakers_raw.items()}
    default_speaker = data.get("speaker") or ("default" if "default" in speakers else next(iter(speakers)))
    language = data.get("language", "en")
    sentences, seen = [], set()
    for item in data["sentences"]:
        if item["id"] in seen:
            raise InputError(path, f"sentence id {item['id']!r} appears twice.", "give every sentence a unique id.")
        seen.add(item["id"])
        speaker = item.get("speaker", default_speaker)
        if speaker not in speakers:
            raise InputError(
                path,
                f"sentence {item['id']!r} uses speaker {speaker!r}, which the suite does not define.",
                f"define it under speakers: (known: {', '.join(speakers)}).",
            )
        sentences.append(
            Sentence(item["id"], item["text"].strip(), item.get("language", language), speaker, item.get("voice"))
        )
    if default_speaker not in speakers:
        raise InputError(
            path, f"default speaker {default_speaker!r} is not defined.", f"use one of: {', '.join(speakers)}."
        )
    return Suite(
        data["name"],
        path,
        int(data.get("seed", 0)),
        speakers,
        tuple(sentences),
        tuple(data.get("gates") or ()),
        data.get("description", ""),
    )


def load_suite(name_or_path: str | Path) -> Suite:
    """Read a suite by name or path.

    Raises:
        UsageError: no suite by that name.
        InputError: the file is not valid YAML or does not match the schema.
    """
    path = _resolve(name_or_path)
    data = load_yaml(path, fix=f"fix the suite file ({_format_hint()[:-1]}).")
    return parse_suite(data, path)
