"""One way to name checkpoints in reports and the history."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["checkpoint_labels"]


def checkpoint_labels(targets: Sequence[str | Path]) -> list[str]:
    """Short unique names for checkpoints: folder names (file stems for checkpoint files), made unique with as many
    parent folders as it takes. The pytest plugin and ``xtts-qa sweep`` both label with it, so their history series
    line up."""
    paths = [Path(t) for t in targets]

    def name(path: Path, depth: int) -> str:
        leaf = path.stem if path.suffix == ".pth" or path.is_file() else path.name
        parts = [*path.parent.parts[-(depth - 1) :], leaf] if depth > 1 else [leaf]
        return "-".join(p for p in parts if p not in ("/", ""))

    depth = 1
    labels = [name(p, depth) for p in paths]
    while len(set(labels)) < len(labels) and depth < 8:
        depth += 1
        labels = [name(p, depth) if labels.count(lab) > 1 else lab for p, lab in zip(paths, labels, strict=True)]
    seen: dict[str, int] = {}
    out = []
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
        out.append(lab if seen[lab] == 1 else f"{lab}-{seen[lab]}")
    return out
