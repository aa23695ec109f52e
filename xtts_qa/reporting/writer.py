"""Write one run to disk: ``summary.json``, ``sentences.jsonl``, ``report.html`` and the audio it plays.

Layout: ``<report_dir>/<run_id>/{summary.json, sentences.jsonl, report.html, audio/...}``. Audio files are
hard-linked (or copied) next to the report so the folder is self-contained and can be archived as a CI artefact.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from xtts_qa.reporting.html import render_report
from xtts_qa.reporting.record import RunRecord

log = logging.getLogger("xtts_qa")

__all__ = ["RunPaths", "write_run"]

_AUDIO_KEYS = {"audio": "candidate", "base_audio": "base", "reference_audio": "reference"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class RunPaths:
    """Where a run was written.

    Attributes:
        folder: the run's folder.
        summary: the JSON summary (the whole :class:`RunRecord`, with the verdict of :func:`xtts_qa.verdict.decide`
            under the run's stored policy: ``exit_code``, ``outcome``, ``reasons``).
        sentences: one JSON line per evaluated sentence.
        html: the self-contained HTML report.
    """

    folder: Path
    summary: Path
    sentences: Path
    html: Path


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name).strip("_") or "x"


def _place(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        return
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def _collect_audio(record: RunRecord, folder: Path) -> dict[str, str]:
    """Copy every audio file the evals name into ``folder/audio``; returns original path -> relative link."""
    links: dict[str, str] = {}
    for entry in record.evals:
        for sentence in entry.sentences:
            for key, role in _AUDIO_KEYS.items():
                src = sentence.get(key)
                if not src or str(src) in links:
                    continue
                path = Path(str(src))
                if not path.is_file():
                    log.warning(
                        "audio %s named by %s/%s is missing; the report shows no player for it",
                        path,
                        entry.checkpoint,
                        sentence.get("id"),
                    )
                    continue
                if role == "reference":
                    rel = Path("audio", "reference", _safe(path.parent.name) + "-" + _safe(path.name))
                else:
                    rel = Path(
                        "audio",
                        _safe(entry.checkpoint),
                        _safe(entry.suite),
                        f"{_safe(str(sentence.get('id')))}-{role}{path.suffix or '.wav'}",
                    )
                _place(path, folder / rel)
                links[str(src)] = rel.as_posix()
    return links


def write_run(record: RunRecord, report_dir: str | Path, *, folder: str | Path | None = None) -> RunPaths:
    """Write ``record`` under ``report_dir/<run_id>/`` (or straight into ``folder``) and return the paths."""
    folder = Path(folder) if folder is not None else Path(report_dir) / record.run_id
    folder.mkdir(parents=True, exist_ok=True)
    paths = RunPaths(folder, folder / "summary.json", folder / "sentences.jsonl", folder / "report.html")
    summary = record.to_dict()  # carries exit_code, outcome and reasons from xtts_qa.verdict.decide
    paths.summary.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    with open(paths.sentences, "w") as fh:
        for row in record.sentence_rows():
            fh.write(json.dumps(row, default=str) + "\n")
    links = _collect_audio(record, folder)
    paths.html.write_text(render_report(record, links))
    log.info("xtts-qa report written to %s", paths.html)
    return paths
