"""One pass over every tensor: the figures all tensor rules need, computed once per tensor.

Reading a 1.87 GB checkpoint is the expensive part of a check, so each tensor (and its base counterpart) is read
here once: its norm, non-finite count, bit-equality with the base, and, for the parts a fine-tune must not touch,
the size of any difference. Pages are handed back to the kernel after each tensor (:mod:`xtts_qa.mmap_pages`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypedDict

import torch

from xtts_qa.mmap_pages import PageReleaser

__all__ = ["TensorStat", "Drift", "DriftFigures", "scan", "aggregate"]


@dataclass(frozen=True)
class TensorStat:
    """Figures of one tensor.

    Attributes:
        norm: L2 norm (float tensors; None otherwise). Non-finite when the tensor holds NaN/Inf.
        nonfinite: number of NaN/Inf elements.
        base_norm: L2 norm of the base tensor (float, same key), or None.
        equal: bit-identical to the base (None when there is no base tensor or the shapes differ).
        shape_differs: the base tensor exists with another shape.
        max_abs: largest absolute element difference (0 when equal or not computed).
        diff_sq: squared L2 norm of the difference.
        cosine: cosine similarity with the base (1.0 when equal; None when not computed).
        base_constant: the base tensor holds one value repeated (fresh LayerNorm weights, zero biases); computed
            for difference keys only.
        rounding: how the values compare with the base (difference keys only): ``identical``, ``float32``
            (differences within float32 rounding: averaging identical tensors), ``float16`` / ``bfloat16`` (the
            values lie on that dtype's grid within one of its ulps of the base: a cast through half precision), or
            ``changed`` (beyond rounding). None when not compared.
        ulps: the largest difference in float32 ulps at the element's magnitude (difference keys only).
    """

    norm: float | None
    nonfinite: int
    base_norm: float | None = None
    equal: bool | None = None
    shape_differs: bool = False
    max_abs: float = 0.0
    diff_sq: float = 0.0
    cosine: float | None = None
    base_constant: bool = False
    rounding: str | None = None
    ulps: float = 0.0


def _constant(t: torch.Tensor) -> bool:
    if t.numel() < 2 or t.is_complex():
        return True
    lo, hi = torch.aminmax(t.float() if t.dtype == torch.bool else t)
    return bool(lo == hi)


def _norm(t: torch.Tensor) -> float | None:
    if not (t.is_floating_point() or t.is_complex()):
        return None
    return float(torch.linalg.vector_norm(t.to(torch.complex64) if t.is_complex() else t.float()))


def _nonfinite(t: torch.Tensor, norm: float | None) -> int:
    if norm is None or math.isfinite(norm):
        return 0  # a finite norm proves every element finite
    return int((~torch.isfinite(t)).sum())


#: Precision (significand bits incl. the implicit one) and smallest ulp (subnormal spacing) of each float dtype.
_PRECISION = {"float32": (24, 2.0**-149), "float16": (11, 2.0**-24), "bfloat16": (8, 2.0**-133)}
_HALF = {"float16": torch.float16, "bfloat16": torch.bfloat16}
#: A weighted average of identical float32 tensors (weights >= 0 summing to 1, up to 8 inputs) stays within
#: about N/2 + N/2 ulps (one rounding per product and per addition, plus the weights' own rounding).
FLOAT32_ROUNDING_ULPS = 16.0


def _ulp32(magnitude: torch.Tensor) -> torch.Tensor:
    """The spacing of the float32 grid just above each (float32) magnitude."""
    return torch.nextafter(magnitude, torch.tensor(math.inf, dtype=torch.float32)) - magnitude


def _ulp(magnitude: torch.Tensor, dtype: str) -> torch.Tensor:
    """The spacing of ``dtype``'s grid at each float32 magnitude: float32's, scaled by the missing significand
    bits, never below the dtype's subnormal spacing."""
    bits, smallest = _PRECISION[dtype]
    return (_ulp32(magnitude) * float(2 ** (24 - bits))).clamp_min(smallest)


def rounding_class(a: torch.Tensor, b: torch.Tensor) -> tuple[str, float]:
    """Classify how candidate ``a`` differs from base ``b`` (same shape): see :attr:`TensorStat.rounding`.

    Returns the class and the largest difference in float32 ulps. Rounding is told from a change by the size of
    each element's difference at its own magnitude, and for half precision also by the candidate's values lying on
    that dtype's grid (a trained or perturbed tensor does not). Computed in float32 (a difference of a few ulps
    between two float32 values is exact there), one tensor at a time.
    """
    af, bf = a.float(), b.float()
    if af.numel() == 0:
        return "identical", 0.0
    d = (af - bf).abs()
    if not bool(torch.isfinite(d).all()):
        return "changed", math.inf
    if float(d.max()) == 0.0:
        return "identical", 0.0
    magnitude = torch.maximum(af.abs(), bf.abs())
    ulps = float((d / _ulp32(magnitude)).max())
    if ulps <= FLOAT32_ROUNDING_ULPS:
        return "float32", ulps
    for name, dtype in _HALF.items():
        on_grid = torch.equal(af, af.to(dtype).float())
        if on_grid and float((d / _ulp(magnitude, name)).max()) <= 1.0:
            return name, ulps
    return "changed", ulps


def _diff(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float, float | None, str, float]:
    if a.is_complex() or b.is_complex():
        a, b = a.real if a.is_complex() else a, b.real if b.is_complex() else b
    d = a.double() - b.double()
    max_abs = float(d.abs().max()) if d.numel() else 0.0
    if max_abs == 0.0:
        return 0.0, 0.0, 1.0, "identical", 0.0
    a64, b64 = a.double().flatten(), b.double().flatten()
    denom = float(torch.linalg.vector_norm(a64) * torch.linalg.vector_norm(b64))
    cosine = float(a64 @ b64) / denom if denom > 0 else None
    if a.is_floating_point() or b.is_floating_point():
        rounding, ulps = rounding_class(a, b)
    else:
        rounding, ulps = "changed", math.inf
    return max_abs, float(d.pow(2).sum()), cosine, rounding, ulps


def scan(
    tensors: dict[str, torch.Tensor],
    base: dict[str, torch.Tensor] | None = None,
    *,
    diff: Callable[[str], bool] = lambda key: True,
    releaser: PageReleaser | None = None,
) -> dict[str, TensorStat]:
    """Figures for every tensor; difference figures only for keys where ``diff(key)`` is true."""
    stats: dict[str, TensorStat] = {}
    base = base or {}
    for key, t in tensors.items():
        norm = _norm(t)
        stat = TensorStat(norm=norm, nonfinite=_nonfinite(t, norm))
        b = base.get(key)
        if b is not None:
            base_norm = _norm(b)
            if b.shape != t.shape:
                stat = TensorStat(norm, stat.nonfinite, base_norm, None, True)
            elif t.dtype == b.dtype and torch.equal(t, b):
                stat = TensorStat(
                    norm,
                    stat.nonfinite,
                    base_norm,
                    True,
                    cosine=1.0,
                    base_constant=diff(key) and _constant(b),
                    rounding="identical" if diff(key) else None,
                )
            elif diff(key):
                max_abs, diff_sq, cosine, rounding, ulps = _diff(t, b)
                stat = TensorStat(
                    norm,
                    stat.nonfinite,
                    base_norm,
                    max_abs == 0.0,
                    False,
                    max_abs,
                    diff_sq,
                    cosine,
                    _constant(b),
                    rounding,
                    ulps,
                )
            else:
                stat = TensorStat(norm, stat.nonfinite, base_norm, False)
            if releaser:
                releaser.release(b)
        if releaser:
            releaser.release(t)
        stats[key] = stat
    return stats


class DriftFigures(TypedDict):
    """:meth:`Drift.to_dict`: the figures a drift finding carries in its details (non-finite floats as strings)."""

    compared: int
    changed: int
    max_abs: float | str
    rel_l2: float | str
    examples: list[str]
    beyond_rounding: int
    rounding: str | None
    max_ulps: float | str


@dataclass(frozen=True)
class Drift:
    """How far a set of tensors moved from the base (aggregated from :class:`TensorStat`).

    Attributes:
        compared: tensors present on both sides.
        changed: tensors not bit-identical (a different shape counts as changed).
        max_abs: the largest absolute element difference.
        rel_l2: ||candidate - base|| / ||base|| over the compared float tensors.
        examples: a few changed keys (those changed beyond rounding first).
        beyond_rounding: changed tensors whose differences are not explained by float rounding (a shape change,
            a different dtype grid, or a difference larger than rounding at the values' magnitude).
        rounding: the coarsest rounding seen among the other changed tensors: ``float32``, ``float16``,
            ``bfloat16``, or None when every changed tensor changed beyond rounding (or none changed).
        max_ulps: the largest difference in float32 ulps.
    """

    compared: int
    changed: int
    max_abs: float
    rel_l2: float
    examples: tuple[str, ...]
    beyond_rounding: int = 0
    rounding: str | None = None
    max_ulps: float = 0.0

    @property
    def rounding_only(self) -> bool:
        """Something differs, but only by float rounding (a dtype cast or float averaging), never by training."""
        return self.changed > 0 and self.beyond_rounding == 0

    def rounding_cause(self) -> str:
        """The likely cause of rounding-level differences, in a user's words."""
        if self.rounding == "float32":
            return "float32 rounding, as a weighted average of identical tensors (weights summing to 1) produces"
        return f"{self.rounding} rounding: the tensors were saved in (or cast through) {self.rounding}"

    def to_dict(self) -> DriftFigures:
        def num(x: float) -> float | str:
            return x if math.isfinite(x) else str(x)

        return {
            "compared": self.compared,
            "changed": self.changed,
            "max_abs": num(self.max_abs),
            "rel_l2": num(self.rel_l2),
            "examples": list(self.examples),
            "beyond_rounding": self.beyond_rounding,
            "rounding": self.rounding,
            "max_ulps": num(self.max_ulps),
        }


def aggregate(stats: dict[str, TensorStat], keys: Iterable[str]) -> Drift:
    """Sum the difference figures of ``keys`` (those without a base counterpart are ignored)."""
    compared = changed = beyond = 0
    max_abs = diff_sq = base_sq = max_ulps = 0.0
    hard: list[str] = []
    soft: list[str] = []
    coarsest = -1
    order = ("float32", "float16", "bfloat16")
    for key in keys:
        s = stats.get(key)
        if s is None or (s.equal is None and not s.shape_differs):
            continue
        compared += 1
        if s.base_norm is not None and math.isfinite(s.base_norm):
            base_sq += s.base_norm**2
        if s.equal:
            continue
        changed += 1
        if s.rounding in order:
            coarsest = max(coarsest, order.index(s.rounding))
            soft.append(key)
        else:
            beyond += 1
            hard.append(key)
        max_abs = s.max_abs if not math.isfinite(s.max_abs) else max(max_abs, s.max_abs)
        max_ulps = s.ulps if not math.isfinite(s.ulps) else max(max_ulps, s.ulps)
        diff_sq += s.diff_sq
    rel = math.sqrt(diff_sq / base_sq) if base_sq > 0 else (0.0 if diff_sq == 0 else math.inf)
    examples = tuple((hard + soft)[:5])
    return Drift(
        compared, changed, max_abs, rel, examples, beyond, order[coarsest] if coarsest >= 0 else None, max_ulps
    )
