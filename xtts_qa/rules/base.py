"""The rule framework: a rule is a class with a stable code, a name, a severity, groups and docs.

Rules register themselves when their module is imported (:mod:`xtts_qa.rules` imports them all). Each rule
declares what it needs (``requires``); the engine skips a rule whose inputs are missing and says why.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

from xtts_qa.architecture import ExpectedArchitecture, expected_architecture
from xtts_qa.checkpoint import Bundle, strip_dvae_prefix
from xtts_qa.errors import UsageError
from xtts_qa.mmap_pages import PageReleaser
from xtts_qa.results import Finding, Severity
from xtts_qa.scan import Drift, TensorStat, scan

__all__ = ["INTENTS", "CheckOptions", "Context", "Rule", "registry", "select_rules", "get_rule"]

#: What the user means to do with the checkpoint; trainer-readiness rules depend on it.
INTENTS = ("inference", "finetune", "restore")


@dataclass(frozen=True)
class CheckOptions:
    """Options of one structural check.

    Attributes:
        intent: ``inference`` (use it to speak), ``finetune`` (start a new fine-tune from it) or
            ``restore`` (pass it to the coqui Trainer as ``restore_path`` to continue training).
        select: rule codes, code prefixes (``XQ4``), names or groups to run; empty means all.
        ignore: the same, to leave out.
        scale_tolerance: how far the median GPT tensor-norm ratio vs base may stray from 1 before a merge is
            called mis-weighted.
    """

    intent: str = "inference"
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    scale_tolerance: float = 0.05

    def __post_init__(self) -> None:
        if self.intent not in INTENTS:
            raise UsageError(f"--intent must be one of {', '.join(INTENTS)}, not {self.intent!r}")


class Context:
    """What a rule may look at: the candidate, the optional base, and the architecture they should have."""

    def __init__(self, candidate: Bundle, base: Bundle | None, options: CheckOptions) -> None:
        self.candidate = candidate
        self.base = base
        self.options = options

        self.arch_error: str | None = None

    @cached_property
    def arch(self) -> ExpectedArchitecture | None:
        """The architecture the candidate's config.json and vocab.json describe (None without a usable config)."""
        config = self.candidate.config
        if config is None:
            return None
        try:
            audio = config.get("audio") or {}
            sample_rate = int(audio.get("sample_rate") or 22050) if isinstance(audio, dict) else 22050
            return expected_architecture(self.candidate.model_args, self._text_tokens(), sample_rate)
        except Exception as exc:  # coqui-tts rejects the config: reported by XQ006, rules needing it skip
            self.arch_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            return None

    def _text_tokens(self) -> int | None:
        """vocab.json's size; without a readable vocab (XQ001/XQ002 report it), the embedding's own row count."""
        if self.candidate.text_tokens is not None:
            return self.candidate.text_tokens
        embedding = self.tensors.get("gpt.text_embedding.weight")
        return int(embedding.shape[0]) if embedding is not None and embedding.dim() == 2 else None

    @cached_property
    def releaser(self) -> PageReleaser:
        """Drops pages of the memory-mapped checkpoint files once read."""
        roles = ("model", "dvae")
        bundles = [b for b in (self.candidate, self.base) if b is not None]
        return PageReleaser([b.paths[r] for b in bundles for r in roles if r in b.paths and b.paths[r].exists()])

    @cached_property
    def stats(self) -> dict[str, TensorStat]:
        """One pass over the candidate's XTTS tensors (and the base's): norms, NaN counts, equality, and
        difference figures for everything outside gpt.* (the parts a fine-tune must leave untouched)."""
        return scan(
            self.tensors, self.base_tensors or None, diff=lambda key: not key.startswith("gpt."), releaser=self.releaser
        )

    def scan_small(self, tensors: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, TensorStat]:
        """:func:`xtts_qa.scan.scan` for other files (dvae.pth, mel_stats.pth), releasing pages the same way."""
        return scan({k: v for k, v in tensors.items() if hasattr(v, "dtype")}, base, releaser=self.releaser)

    @cached_property
    def dvae_stats(self) -> dict[str, TensorStat]:
        """dvae.pth (prefix stripped) scanned against the base's dvae.pth when there is one."""
        if self.candidate.dvae is None:
            return {}
        base = strip_dvae_prefix(self.base.dvae) if self.base is not None and self.base.dvae is not None else None
        return self.scan_small(strip_dvae_prefix(self.candidate.dvae), base)

    @cached_property
    def embedded_dvae_stats(self) -> dict[str, TensorStat]:
        """The dvae.* tensors a trainer checkpoint carries, scanned against the base's dvae.pth."""
        ckpt = self.candidate.checkpoint
        if ckpt is None or not ckpt.dvae_tensors:
            return {}
        base = strip_dvae_prefix(self.base.dvae) if self.base is not None and self.base.dvae is not None else None
        return self.scan_small(ckpt.dvae_tensors, base)

    @property
    def tensors(self) -> dict[str, Any]:
        """The candidate's XTTS tensors (inference namespace); empty when the model file is unreadable."""
        return self.candidate.checkpoint.tensors if self.candidate.checkpoint else {}

    @property
    def base_tensors(self) -> dict[str, Any]:
        return self.base.checkpoint.tensors if self.base and self.base.checkpoint else {}

    def has(self, need: str) -> bool:
        """Whether an input named in ``Rule.requires`` is available."""
        c, b = self.candidate, self.base
        table = {
            "model": c.checkpoint is not None,
            "config": self.arch is not None,
            "vocab": c.vocab is not None,
            "dvae": c.dvae is not None,
            "mel_stats": c.mel_stats is not None,
            "speakers": c.speakers is not None,
            "base": b is not None,
            "base.model": b is not None and b.checkpoint is not None,
            "base.vocab": b is not None and b.vocab is not None,
            "base.dvae": b is not None and b.dvae is not None,
            "base.mel_stats": b is not None and b.mel_stats is not None,
        }
        return table[need]


_NEEDS_TEXT = {
    "model": "the model checkpoint",
    "config": "a usable config.json",
    "vocab": "vocab.json",
    "dvae": "dvae.pth",
    "mel_stats": "mel_stats.pth",
    "speakers": "speakers_xtts.pth",
    "base": "a base model (--base)",
    "base.model": "the base model's checkpoint",
    "base.vocab": "the base model's vocab.json",
    "base.dvae": "the base model's dvae.pth",
    "base.mel_stats": "the base model's mel_stats.pth",
}

_REGISTRY: dict[str, type[Rule]] = {}


class Rule:
    """A documented check with a stable code.

    Subclasses set the class attributes and implement :meth:`check`, yielding findings made with
    :meth:`finding`. ``what``, ``why`` and ``fix`` are the rule's documentation (``xtts-qa rule CODE``).
    """

    code: ClassVar[str] = ""
    name: ClassVar[str] = ""
    severity: ClassVar[Severity] = Severity.ERROR
    groups: ClassVar[tuple[str, ...]] = ()
    requires: ClassVar[tuple[str, ...]] = ()
    what: ClassVar[str] = ""
    why: ClassVar[str] = ""
    fix: ClassVar[str] = ""
    #: severity per intent (inference / finetune / restore) where it differs from ``severity``; None means the rule
    #: does not apply to that intent (it is not run, and says so among the skipped rules)
    by_intent: ClassVar[dict[str, Severity | None]] = {}
    #: name of the safe repair action that fixes this rule's findings (``xtts-qa repair``), None when there is none
    repair: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.code:
            if cls.code in _REGISTRY:
                raise RuntimeError(f"duplicate rule code {cls.code}")
            if not (cls.name and cls.what and cls.why and cls.fix and cls.groups):
                raise RuntimeError(f"rule {cls.code} lacks name, groups or docs")
            _REGISTRY[cls.code] = cls

    def __init__(self, intent: str = "inference") -> None:
        self.intent = intent

    @classmethod
    def severity_for(cls, intent: str) -> Severity | None:
        """This rule's severity when the user's intent is ``intent`` (None: not applicable)."""
        return cls.by_intent.get(intent, cls.severity)

    @classmethod
    def severities(cls) -> dict[str, Severity | None]:
        """Severity for every intent, in :data:`INTENTS` order."""
        return {intent: cls.severity_for(intent) for intent in INTENTS}

    def capped(self, severity: Severity) -> Severity:
        """``severity``, but never more severe than this rule is for the current intent."""
        own = self.severity_for(self.intent) or Severity.INFO
        return severity if severity.rank >= own.rank else own

    def missing_inputs(self, ctx: Context) -> list[str]:
        """Human names of the required inputs that are not available."""
        return [_NEEDS_TEXT[n] for n in self.requires if not ctx.has(n)]

    def check(self, ctx: Context) -> Iterable[Finding]:
        raise NotImplementedError

    def finding(
        self,
        message: str,
        *,
        file: Any = None,
        severity: Severity | None = None,
        fix: str | None = None,
        **details: Any,
    ) -> Finding:
        """Make a finding of this rule (severity defaults to the rule's for the current intent; fix to the rule's)."""
        return Finding(
            code=self.code,
            name=self.name,
            severity=severity or self.severity_for(self.intent) or self.severity,
            message=message,
            why=self.why,
            fix=fix or self.fix,
            file=str(file) if file is not None else None,
            details=details,
        )

    def drift_finding(self, subject: str, drift: Drift, *, file: Any = None, **details: Any) -> Finding | None:
        """A finding for ``subject`` compared with the base, by the tolerance model of :mod:`xtts_qa.scan`.

        Identical: no finding. Changed beyond rounding: the rule's own severity. Only rounding-level differences
        (a dtype cast, or averaging identical tensors in float32): a note (float32) or a warning (half precision,
        where precision was lost for good) naming the likely cause, never an error.
        """
        if not drift.changed:
            return None
        figures = f"max |diff| {drift.max_abs:.3g}, relative L2 {drift.rel_l2:.3g}"
        if drift.rounding_only:
            severity = self.capped(Severity.INFO if drift.rounding == "float32" else Severity.WARNING)
            return self.finding(
                f"{subject}: {drift.changed} of {drift.compared} tensors differ from the base only by "
                f"{drift.rounding_cause()} ({figures}, at most {drift.max_ulps:.3g} float32 ulps); the values are "
                "the base's, not trained.",
                file=file,
                severity=severity,
                fix="Nothing is needed for inference. To be bit-exact again, copy these tensors from the base model "
                "(`xtts-qa repair`); merge only the GPT (`xtts-qa merge`).",
                **drift.to_dict(),
                **details,
            )
        soft = drift.changed - drift.beyond_rounding
        return self.finding(
            f"{subject}: {drift.beyond_rounding} of {drift.compared} tensors differ from the base beyond float "
            f"rounding ({figures}; e.g. {drift.examples[0]})" + (f", {soft} more only by rounding." if soft else "."),
            file=file,
            **drift.to_dict(),
            **details,
        )


def registry() -> dict[str, type[Rule]]:
    """Every registered rule, by code, in code order."""
    import xtts_qa.rules  # noqa: F401  (imports every rule module)

    return dict(sorted(_REGISTRY.items()))


def get_rule(code_or_name: str) -> type[Rule]:
    """Look a rule up by code (``XQ401``) or name (``dvae-key-set``).

    Raises:
        UsageError: no such rule.
    """
    for code, rule in registry().items():
        if code_or_name.upper() == code or code_or_name == rule.name:
            return rule
    raise UsageError(f"no rule {code_or_name!r}; `xtts-qa rules` lists them")


def _matches(rule: type[Rule], pattern: str) -> bool:
    pattern = pattern.strip()
    return rule.code.startswith(pattern.upper()) or fnmatch.fnmatch(rule.name, pattern) or pattern in rule.groups


def select_rules(select: Iterable[str] = (), ignore: Iterable[str] = ()) -> list[type[Rule]]:
    """Rules chosen by code, code prefix, name glob or group.

    Raises:
        UsageError: a pattern that matches no rule (a typo should not silently run nothing).
    """
    rules = list(registry().values())
    select, ignore = [s for s in select if s], [s for s in ignore if s]
    for pattern in (*select, *ignore):
        if not any(_matches(r, pattern) for r in rules):
            raise UsageError(f"--select/--ignore {pattern!r} matches no rule code, name or group")
    if select:
        rules = [r for r in rules if any(_matches(r, p) for p in select)]
    return [r for r in rules if not any(_matches(r, p) for p in ignore)]


def iter_limited(items: Iterable[str], limit: int = 8) -> str:
    """Format a list of names for a message, eliding the tail."""
    items = list(items)
    head = ", ".join(items[:limit])
    return head + (f" ... (+{len(items) - limit} more)" if len(items) > limit else "")
