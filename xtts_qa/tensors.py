"""Tensor comparisons used by the rules: exact equality first (cheap), drift figures only where they differ."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch

__all__ = ["Drift", "compare", "component_of", "cosine", "drift_by_component", "tensor_norm"]


@dataclass(frozen=True)
class Drift:
    """How far a set of tensors moved from the base.

    Attributes:
        compared: tensors compared.
        changed: tensors not bit-identical.
        shape_changed: tensors whose shape differs (not comparable).
        max_abs: the largest absolute element difference.
        rel_l2: ||cand - base|| / ||base|| over every compared element.
        examples: a few changed keys.
    """

    compared: int
    changed: int
    shape_changed: int
    max_abs: float
    rel_l2: float
    examples: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "compared": self.compared, "changed": self.changed, "shape_changed": self.shape_changed,
            "max_abs": _round(self.max_abs), "rel_l2": _round(self.rel_l2), "examples": list(self.examples),
        }


def _round(x: float) -> float | str:
    return x if math.isfinite(x) else str(x)


def _sq(t: torch.Tensor) -> float:
    return float(t.double().pow(2).sum()) if t.is_floating_point() else 0.0


def compare(cand: dict[str, torch.Tensor], base: dict[str, torch.Tensor], keys: Iterable[str]) -> Drift:
    """Compare ``cand[k]`` with ``base[k]`` for the given keys (keys missing on either side are ignored)."""
    compared = changed = shape_changed = 0
    max_abs = 0.0
    diff_sq = base_sq = 0.0
    examples: list[str] = []
    unchanged: list[torch.Tensor] = []
    for key in keys:
        a, b = cand.get(key), base.get(key)
        if a is None or b is None:
            continue
        compared += 1
        if a.shape != b.shape:
            shape_changed += 1
            changed += 1
            examples.append(key)
            continue
        if a.dtype == b.dtype and torch.equal(a, b):
            unchanged.append(b)
            continue
        d = a.double() - b.double()
        m = float(d.abs().max()) if d.numel() else 0.0
        if m == 0.0:  # the same values stored in another dtype: not a content change
            continue
        changed += 1
        examples.append(key)
        max_abs = m if not math.isfinite(m) else max(max_abs, m)
        diff_sq += float(d.pow(2).sum())
        base_sq += _sq(b)
    if diff_sq > 0:  # only then is the base norm needed
        base_sq += sum(_sq(t) for t in unchanged)
    rel = math.sqrt(diff_sq / base_sq) if base_sq > 0 else (0.0 if diff_sq == 0 else math.inf)
    return Drift(compared, changed, shape_changed, max_abs, rel, tuple(examples[:5]))


def component_of(key: str) -> str:
    """The model component a key belongs to: ``gpt``, ``hifigan_decoder.waveform_decoder``, ``mel_stats``, ..."""
    parts = key.split(".")
    if parts[0] == "hifigan_decoder" and len(parts) > 2:
        return ".".join(parts[:2])
    return parts[0]


def drift_by_component(cand: dict[str, torch.Tensor], base: dict[str, torch.Tensor], keys: Iterable[str]) -> dict[str, Drift]:
    """:func:`compare` per component."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(component_of(key), []).append(key)
    return {name: compare(cand, base, ks) for name, ks in sorted(groups.items())}


def tensor_norm(t: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(t.float()))


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity of two same-shaped tensors, flattened (1.0 for a tensor and any positive multiple of it)."""
    a64, b64 = a.double().flatten(), b.double().flatten()
    denom = float(torch.linalg.vector_norm(a64) * torch.linalg.vector_norm(b64))
    return float(a64 @ b64) / denom if denom > 0 else 1.0
