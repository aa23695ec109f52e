"""Collectors and items: checkpoint x rule (``health``) and checkpoint x suite sentence (``eval``).

Ids read like ``finetune::XQ401-dvae-key-set`` and ``finetune::smoke::en-003``. A failing rule or sentence raises
an exception whose :meth:`repr_failure` says what is wrong, why it matters and how to fix it, with no traceback;
anything unexpected falls back to pytest's usual report.
"""

from __future__ import annotations

import json
import textwrap
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from xtts_qa.engine import run_rule
from xtts_qa.errors import XttsQaError
from xtts_qa.plugin import evalbridge
from xtts_qa.plugin.keys import PAYLOAD
from xtts_qa.plugin.options import Target
from xtts_qa.plugin.reporter import emit
from xtts_qa.plugin.session import get_state, rule_payload
from xtts_qa.results import Finding, RuleResult, Severity, Status
from xtts_qa.rules import Rule

__all__ = [
    "PAYLOAD",
    "CheckpointWarning",
    "RuleFailure",
    "SentenceFailure",
    "GateFailure",
    "CheckpointCollector",
    "HealthItem",
    "SuiteCollector",
    "SentenceItem",
    "GatesItem",
]


class CheckpointWarning(UserWarning):
    """A warning-severity finding: reported, never failing (unless warnings are turned into errors)."""


def _wrap(text: str, indent: str = "    ") -> str:
    return textwrap.fill(text, width=110, initial_indent=indent, subsequent_indent=indent)


def _plain(data: Any) -> Any:
    """Only JSON types, so the payload survives pytest-xdist's serialisation."""
    return json.loads(json.dumps(data, default=str))


class RuleFailure(Exception):
    """A rule found problems at or above the failing severity (``--xtts-fail-on``) in a checkpoint."""

    def __init__(self, target: Target, rule: type[Rule], findings: list[Finding]) -> None:
        n = len(findings)
        kind = "error" if all(f.severity is Severity.ERROR for f in findings) else "finding"
        super().__init__(f"{rule.code} {rule.name}: {n} {kind}{'s' if n != 1 else ''}")
        self.target = target
        self.rule = rule
        self.findings = findings

    def render(self) -> str:
        lines = [f"{self.rule.code} {self.rule.name} failed on {self.target.label} ({self.target.path})"]
        for f in self.findings:
            lines.append("")
            lines.append(_wrap(f"what is wrong: {f.message}", "  "))
            if f.file:
                lines.append(f"    file: {f.file}")
        lines += [
            "",
            _wrap(f"why it matters: {self.rule.why}", "  "),
            _wrap(f"how to fix: {self.findings[0].fix}", "  "),
            "",
            f"  more: xtts-qa rule {self.rule.code}",
        ]
        return "\n".join(lines)


class RuleCrashed(Exception):
    """A rule raised instead of judging the checkpoint: the item fails with the rule's traceback."""

    def __init__(self, target: Target, rule: type[Rule], error: str) -> None:
        super().__init__(f"{rule.code} {rule.name} crashed on {target.label}")
        self.target, self.rule, self.error = target, rule, error

    def render(self) -> str:
        return (
            f"{self.rule.code} {self.rule.name} crashed on {self.target.label} ({self.target.path}): the checkpoint "
            f"was not judged by this rule, so the check cannot vouch for it. Please report this with the "
            f"traceback below.\n\n{self.error}"
        )


class SentenceFailure(Exception):
    """A synthesised sentence failed its checks (intelligibility, similarity, length)."""

    def __init__(self, label: str, suite: str, sentence: dict[str, Any]) -> None:
        super().__init__(f"{label}/{suite}/{sentence.get('id')}: {sentence.get('verdict')}")
        self.label, self.suite, self.sentence = label, suite, sentence

    def render(self) -> str:
        s = self.sentence

        def num(key: str) -> str:
            value = s.get(key)
            return f"{value:.3f}" if isinstance(value, (int, float)) else "-"

        lines = [
            f"sentence {s.get('id')} ({s.get('language')}) of suite {self.suite} failed on {self.label}: "
            f"{s.get('verdict')}",
            _wrap(f"text:       {s.get('text')}", "  "),
            _wrap(f"heard:      {s.get('transcript')}", "  "),
        ]
        if s.get("base_transcript") is not None:
            lines.append(_wrap(f"base heard: {s.get('base_transcript')}", "  "))
        lines.append(
            f"  WER {num('wer')} (base {num('base_wer')})  CER {num('cer')}  "
            f"similarity to reference {num('similarity_ref')}, "
            f"to base {num('similarity_base')}  duration {num('duration_s')} s"
        )
        if s.get("flags"):
            why = s.get("explanations") or {}
            lines.append(f"  flags: {', '.join(map(str, s['flags']))}")
            lines += [f"    {flag}: {why[flag]}" for flag in s["flags"] if why.get(flag)]
        for key in ("audio", "base_audio", "reference_audio"):
            if s.get(key):
                lines.append(f"  {key.replace('_', ' ')}: {s[key]}")
        lines.append("  listen to it side by side with the base in the HTML report (see the xtts_qa summary below).")
        return "\n".join(lines)


class GateFailure(Exception):
    """A suite-level release gate failed."""

    def __init__(self, label: str, suite: str, failed: list[Any]) -> None:
        super().__init__(f"{label}/{suite}: {len(failed)} gate(s) failed")
        self.label, self.suite, self.failed = label, suite, failed

    def render(self) -> str:
        lines = [f"release gates of suite {self.suite} failed on {self.label}:"]
        lines += [f"  {g.expr} [{getattr(g, 'outcome', '') or 'fail'}]: {g.message}" for g in self.failed]
        lines.append(
            "  a difference gate fails when its whole 95% interval is on the wrong side of the threshold; inconclusive "
            "(the interval straddles it) fails only under --strict; not-applicable never fails."
        )
        lines.append("  override a threshold for one run with --xtts-gate EXPR, or change the suite's gates.")
        return "\n".join(lines)


def _group(item: pytest.Item, checkpoint: str) -> None:
    """With ``--dist loadgroup`` keep a checkpoint's items on one xdist worker (its bundle and audio are reused)."""
    if item.config.pluginmanager.hasplugin("xdist"):
        item.add_marker(pytest.mark.xdist_group(checkpoint))


def _target_of(node: pytest.Item | pytest.Collector) -> Target:
    """The checkpoint a node belongs to (its nearest :class:`CheckpointCollector`)."""
    collector = node.getparent(CheckpointCollector)
    if collector is None:
        raise RuntimeError(f"{node.nodeid} is not inside a checkpoint collector")
    return collector.target


class _XttsItem(pytest.Item):
    """Shared behaviour: explained failures for our exceptions, pytest's usual report for anything else."""

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, (RuleFailure, RuleCrashed, SentenceFailure, GateFailure)):
            return excinfo.value.render()
        if isinstance(excinfo.value, XttsQaError):  # an input or option the user can fix: one explained line
            return f"{self.name}: {excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def _hand_over(self, payload: dict[str, Any]) -> None:
        self.stash[PAYLOAD] = _plain(payload)


class CheckpointCollector(pytest.Collector):
    """One checkpoint: a health item per selected rule and a suite collector per suite."""

    def __init__(self, *, target: Target, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = target

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        state = get_state(self.config)
        for rule in state.rules:
            yield HealthItem.from_parent(self, name=f"{rule.code}-{rule.name}", rule=rule)
        for ref in state.settings.suites:
            try:
                spec = evalbridge.load_suite(ref)
            except evalbridge.EvalUnavailable as exc:
                yield UnavailableEvalItem.from_parent(self, name=f"eval-{_suite_name(ref)}", reason=str(exc))
                continue
            yield SuiteCollector.from_parent(self, name=spec.name, spec=spec)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.target.path, None, self.target.label


def _suite_name(ref: str) -> str:
    from pathlib import Path

    return Path(ref).stem if ref.endswith((".yaml", ".yml", ".json")) else ref


class HealthItem(_XttsItem):
    """One structural rule on one checkpoint (CPU, seconds)."""

    def __init__(self, *, rule: type[Rule], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rule = rule
        self.add_marker(pytest.mark.health)
        _group(self, self.parent.name)  # type: ignore[union-attr]

    @property
    def target(self) -> Target:
        return _target_of(self)

    def runtest(self) -> None:
        state = get_state(self.config)
        ctx = state.context(self.target.label)
        result: RuleResult = run_rule(self.rule, ctx)
        meta = state.check_meta(self.target.label)
        self._hand_over(rule_payload(self.target.label, result, meta))
        counts = {s: sum(1 for f in result.findings if f.severity is s) for s in Severity}
        self.user_properties += [
            ("xtts_qa.checkpoint", self.target.label),
            ("xtts_qa.rule", self.rule.code),
            ("xtts_qa.status", result.status.value),
            ("xtts_qa.errors", counts[Severity.ERROR]),
            ("xtts_qa.warnings", counts[Severity.WARNING]),
            ("xtts_qa.seconds", round(result.seconds, 4)),
        ]
        if result.status is Status.SKIPPED:
            pytest.skip(f"{self.rule.code} {self.rule.name}: {result.skip_reason}")
        if result.status is Status.ERROR:
            raise RuleCrashed(self.target, self.rule, result.error)
        failing = {Severity.ERROR} | ({Severity.WARNING} if state.settings.fail_on == "warning" else set())
        digest = (meta.get("provenance") or {}).get("checkpoint_digest")
        accepted = state.accepted(digest, self.target.label)
        fails = []
        for f in result.findings:
            if f.severity in failing and f.code not in accepted:
                fails.append(f)
            elif f.severity in (Severity.ERROR, Severity.WARNING):
                why = " (accepted by the baseline)" if f.code in accepted else ""
                warnings.warn(
                    CheckpointWarning(f"{self.target.label}: {f.code} {f.name}: {f.message}{why} Fix: {f.fix}"),
                    stacklevel=1,
                )
        if fails:
            raise RuleFailure(self.target, self.rule, fails)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.target.path, None, f"{self.target.label}: {self.rule.code} {self.rule.name}"


class UnavailableEvalItem(_XttsItem):
    """Stands in for a suite that cannot be collected here; it skips with the reason."""

    def __init__(self, *, reason: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reason = reason
        self.add_marker(pytest.mark.eval)

    def runtest(self) -> None:
        pytest.skip(f"evaluation unavailable: {self.reason}")

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return _target_of(self).path, None, f"{self.name} (unavailable)"


class SuiteCollector(pytest.Collector):
    """One suite on one checkpoint: an item per sentence and one for the suite's gates."""

    def __init__(self, *, spec: evalbridge.SuiteSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec

    @property
    def target(self) -> Target:
        return _target_of(self)

    def collect(self) -> Iterator[pytest.Item]:
        for sid in self.spec.sentence_ids:
            yield SentenceItem.from_parent(self, name=sid)
        yield GatesItem.from_parent(self, name="gates")

    def evaluation(self, item: pytest.Item) -> dict[str, Any]:
        """The suite's EvalReport dict, computed once per process and shared by its items (``item`` is the one
        that computes it: progress lines name it)."""
        state = get_state(self.config)
        settings = state.settings

        def compute() -> dict[str, Any]:
            n = len(self.spec.sentence_ids)
            emit(
                item,
                f"{self.target.label}: evaluating suite {self.spec.name} ({n} sentences, {settings.engine} engine)",
            )
            started = time.monotonic()
            report = evalbridge.run_suite(
                self.target.path,
                settings.base,
                self.spec.ref,
                state.device,
                settings.gates,
                engine=settings.engine,
                ray_address=settings.ray_address,
                progress=_main_thread_lines(item, f"{self.target.label} {self.spec.name}"),
            )
            emit(item, f"{self.target.label}: suite {self.spec.name} evaluated in {time.monotonic() - started:.0f} s")
            return report

        outcome = state.evaluation(self.target.label, self.spec.ref, compute)
        if isinstance(outcome, evalbridge.EvalUnavailable):
            pytest.skip(f"evaluation unavailable: {outcome}")
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome  # type: ignore[no-any-return]

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.target.path, None, f"{self.target.label}: suite {self.spec.name}"


def _summary_of(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "sentences"}


class _EvalItem(_XttsItem):
    """An ``eval``-marked item; all of one checkpoint's eval items share an xdist group (one model load)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_marker(pytest.mark.eval)
        _group(self, self.parent.parent.name)  # type: ignore[union-attr]


class SentenceItem(_EvalItem):
    """One suite sentence synthesised by one checkpoint, transcribed and scored."""

    def runtest(self) -> None:
        suite: SuiteCollector = self.parent  # type: ignore[assignment]
        report = suite.evaluation(self)
        sentence = next((s for s in report.get("sentences", []) if str(s.get("id")) == self.name), None)
        if sentence is None:
            pytest.fail(f"the evaluation of suite {suite.spec.name} has no sentence {self.name}", pytrace=False)
        index = [str(s.get("id")) for s in report.get("sentences", [])].index(self.name)
        self._hand_over(
            {
                "kind": "eval",
                "checkpoint": suite.target.label,
                "suite": suite.spec.name,
                "report": _summary_of(report),
                "sentence": sentence,
                "index": index,
            }
        )
        self.user_properties.append(("xtts_qa.checkpoint", suite.target.label))
        for key in ("wer", "cer", "base_wer", "similarity_ref", "similarity_base", "duration_s", "rtf", "verdict"):
            if sentence.get(key) is not None:
                self.user_properties.append((f"xtts_qa.{key}", sentence[key]))
        if str(sentence.get("verdict", "")).lower() not in ("pass", "passed", "ok", "warn", "warning"):
            failure = SentenceFailure(suite.target.label, suite.spec.name, sentence)
            if get_state(self.config).settings.sentences == "warn":
                warnings.warn(CheckpointWarning(failure.render()), stacklevel=1)
                return
            raise failure

    def reportinfo(self) -> tuple[Any, int | None, str]:
        suite: SuiteCollector = self.parent  # type: ignore[assignment]
        return suite.target.path, None, f"{suite.target.label}: {suite.spec.name} sentence {self.name}"


class GatesItem(_EvalItem):
    """The suite's release gates (signal flags, per-sentence and corpus differences from the base, similarity), with
    per-run overrides; each gate ends pass, fail, inconclusive or not-applicable."""

    def runtest(self) -> None:
        from xtts_qa.reporting import EvalEntry, RunRecord, evaluate_run, parse_gates

        suite: SuiteCollector = self.parent  # type: ignore[assignment]
        report = suite.evaluation(self)
        self._hand_over(
            {"kind": "eval", "checkpoint": suite.target.label, "suite": suite.spec.name, "report": _summary_of(report)}
        )
        overrides = parse_gates(get_state(self.config).settings.gates)
        record = RunRecord("", "", "", evals=(EvalEntry(suite.target.label, suite.spec.name, report),))
        results = evaluate_run(record, overrides)
        for metric, value in ((report.get("metrics") or {}).get("candidate") or {}).items():
            self.user_properties.append((f"xtts_qa.{metric}", value))
        for r in results:
            self.user_properties.append((f"xtts_qa.gate.{r.expr}", r.outcome))
        failed = [r for r in results if not r.passed]
        if failed:
            raise GateFailure(suite.target.label, suite.spec.name, failed)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        suite: SuiteCollector = self.parent  # type: ignore[assignment]
        return suite.target.path, None, f"{suite.target.label}: {suite.spec.name} gates"


def _main_thread_lines(item: pytest.Item, prefix: str) -> Callable[[str], None]:
    """A progress sink for the evaluation that reports lines through pytest from the item's own thread only:
    lines produced on the ASR worker threads are held and sent with the next line from the main thread."""
    held: list[str] = []
    lock = threading.Lock()

    def sink(line: str) -> None:
        with lock:
            held.append(line)
            if threading.current_thread() is not threading.main_thread():
                return
            lines, held[:] = list(held), []
        for text in lines:
            emit(item, f"{prefix}: {text}")

    return sink
