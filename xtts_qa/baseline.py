"""A baseline: structural findings a team has looked at and accepted, so they stop failing the verdict.

The file is JSON, versioned and meant to be read and edited by people::

    {
      "kind": "xtts-qa-baseline",
      "version": 1,
      "created_at": "2026-11-23T23:00:00+00:00",
      "source_run": "20261123T230000-abc123",
      "accepted": [
        {"checkpoint_digest": "9f2c...", "checkpoint": "finetune", "code": "XQ602",
         "severity": "warning", "message": "stored in float16"}
      ]
    }

An entry accepts every finding with its ``code`` on one checkpoint. The checkpoint is matched by content
(``checkpoint_digest``, the digest a check report carries in ``provenance.checkpoint_digest``) when both the entry
and the report have one, else by its label. ``message`` and ``severity`` are for humans and are not matched: a
baselined rule that starts reporting different figures stays accepted until the checkpoint's content changes.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xtts_qa.errors import InputError

if TYPE_CHECKING:
    from xtts_qa.reporting.record import RunRecord

__all__ = ["BASELINE_KIND", "BASELINE_VERSION", "AcceptedFinding", "Baseline", "finding_identity"]

BASELINE_KIND = "xtts-qa-baseline"
BASELINE_VERSION = 1
_FIX = "write one with `xtts-qa baseline RUN -o FILE` (RUN: a run id, `latest` or a summary.json)."


@dataclass(frozen=True)
class AcceptedFinding:
    """One accepted (checkpoint, rule code) pair.

    Attributes:
        code: the rule code, e.g. ``XQ602``.
        checkpoint: the checkpoint's label when the baseline was written.
        checkpoint_digest: the checkpoint file's content digest, or None when the report had none.
        severity: the finding's severity then (for humans).
        message: the finding's message then (for humans).
    """

    code: str
    checkpoint: str
    checkpoint_digest: str | None = None
    severity: str = ""
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint_digest": self.checkpoint_digest,
            "checkpoint": self.checkpoint,
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
        }

    def matches(self, digest: str | None, label: str, code: str) -> bool:
        """True when this entry accepts ``code`` on the checkpoint: by digest when the entry has one (a run whose
        checkpoint could not be digested cannot show it holds the accepted weights), else by label."""
        if code != self.code:
            return False
        if self.checkpoint_digest:
            return digest == self.checkpoint_digest
        return self.checkpoint == label


def finding_identity(report: dict[str, Any], label: str) -> str | None:
    """The digest a check report identifies its checkpoint by (None: fall back to ``label``)."""
    digest = (report.get("provenance") or {}).get("checkpoint_digest")
    return str(digest) if digest else None


def _findings(record: RunRecord) -> Iterator[tuple[str | None, str, dict[str, Any]]]:
    for check in record.checks:
        digest = finding_identity(check.report, check.checkpoint)
        for result in check.report.get("results") or []:
            for finding in result.get("findings") or []:
                yield digest, check.checkpoint, finding


@dataclass(frozen=True)
class Baseline:
    """Accepted findings, loaded from or written to a baseline file.

    Attributes:
        accepted: the accepted (checkpoint, code) entries.
        source_run: the run it was made from, if any.
        created_at: when it was written (ISO-8601 UTC).
        path: the file it was read from, if any.
    """

    accepted: tuple[AcceptedFinding, ...] = ()
    source_run: str = ""
    created_at: str = ""
    path: Path | None = None

    def accepts(self, digest: str | None, label: str, code: str) -> bool:
        """True when a finding ``code`` on this checkpoint (``digest``, else ``label``) is accepted."""
        return any(entry.matches(digest, label, code) for entry in self.accepted)

    def __len__(self) -> int:
        return len(self.accepted)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": BASELINE_KIND,
            "version": BASELINE_VERSION,
            "created_at": self.created_at,
            "source_run": self.source_run,
            "accepted": [a.to_dict() for a in self.accepted],
        }

    @classmethod
    def from_entries(cls, entries: Iterable[AcceptedFinding], *, source_run: str = "") -> Baseline:
        """A baseline of ``entries`` (duplicates of one digest/label/code are kept once), stamped now."""
        unique: dict[tuple[str | None, str, str], AcceptedFinding] = {}
        for e in entries:
            unique.setdefault((e.checkpoint_digest, e.checkpoint, e.code), e)
        ordered = sorted(unique.values(), key=lambda e: (e.checkpoint, e.code, e.checkpoint_digest or ""))
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        return cls(tuple(ordered), source_run, created)

    @classmethod
    def from_record(cls, record: RunRecord) -> Baseline:
        """Accept every structural finding of ``record`` (each checkpoint by digest, else by label)."""
        return cls.from_entries(
            (
                AcceptedFinding(
                    str(f.get("code")),
                    label,
                    digest,
                    str(f.get("severity") or ""),
                    str(f.get("message") or ""),
                )
                for digest, label, f in _findings(record)
            ),
            source_run=record.run_id,
        )

    @classmethod
    def from_dict(cls, data: Any, path: str | Path = "<baseline>") -> Baseline:
        """Read a baseline document (the JSON of :meth:`to_dict`).

        Raises:
            InputError: not a baseline, a newer version, or a malformed entry (naming ``path`` and the fix).
        """
        if not isinstance(data, dict) or data.get("kind") != BASELINE_KIND:
            kind = data.get("kind") if isinstance(data, dict) else type(data).__name__
            raise InputError(path, f"is not an xtts-qa baseline (kind {kind!r}, expected {BASELINE_KIND!r}).", _FIX)
        version = data.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise InputError(path, f"has no valid baseline version ({version!r}).", _FIX)
        if version > BASELINE_VERSION:
            raise InputError(
                path,
                f"is baseline version {version}, newer than this xtts-qa reads ({BASELINE_VERSION}).",
                "upgrade xtts-qa, or rewrite the baseline with this version.",
            )
        accepted = data.get("accepted")
        if not isinstance(accepted, list):
            raise InputError(path, "has no 'accepted' list.", _FIX)
        entries = []
        for i, item in enumerate(accepted):
            if not isinstance(item, dict):
                raise InputError(path, f"accepted[{i}] is not an object.", "each entry needs 'code' and 'checkpoint'.")
            code, label, digest = item.get("code"), item.get("checkpoint"), item.get("checkpoint_digest")
            if not isinstance(code, str) or not code.strip():
                raise InputError(path, f"accepted[{i}] has no rule 'code'.", 'give the rule code, e.g. "XQ602".')
            if not isinstance(label, str) or not label.strip():
                raise InputError(
                    path, f"accepted[{i}] ({code}) has no 'checkpoint' label.", "give the checkpoint's label."
                )
            if digest is not None and not isinstance(digest, str):
                raise InputError(
                    path,
                    f"accepted[{i}] ({code}) has a non-text 'checkpoint_digest'.",
                    "use the digest string or null.",
                )
            entries.append(
                AcceptedFinding(
                    code.strip(), label, digest or None, str(item.get("severity") or ""), str(item.get("message") or "")
                )
            )
        return cls(tuple(entries), str(data.get("source_run") or ""), str(data.get("created_at") or ""), Path(path))

    @classmethod
    def load(cls, path: str | Path) -> Baseline:
        """Read a baseline file.

        Raises:
            InputError: missing, unreadable, not JSON, or not a baseline (naming the file and the fix).
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(path, "does not exist.", _FIX) from None
        except IsADirectoryError:
            raise InputError(path, "is a folder, not a baseline file.", "pass the baseline JSON file.") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(path, f"cannot be read ({exc}).", "check the file's permissions and encoding.") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(
                path, f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}).", "fix it or " + _FIX
            ) from None
        return cls.from_dict(data, path)

    def write(self, path: str | Path) -> Path:
        """Write this baseline to ``path`` atomically (a crash leaves the old file or the new one, never half).

        An existing baseline is replaced; any other existing file is left alone.

        Raises:
            InputError: ``path`` exists and is not a baseline, or is a folder.
        """
        path = Path(path)
        if path.is_dir():
            raise InputError(path, "is a folder.", "give a file name for the baseline, e.g. xtts-baseline.json.")
        if path.exists():
            try:
                Baseline.load(path)
            except InputError:
                raise InputError(
                    path,
                    "exists and is not an xtts-qa baseline; refusing to overwrite it.",
                    "choose another file name, or move that file away first.",
                ) from None
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.to_dict(), fh, indent=2)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
