"""Merge fine-tunes of one base model the safe way (``xtts-qa merge``).

Only ``gpt.*`` floating-point tensors are merged: coqui's ``GPTTrainer`` optimises only the GPT, so in every proper
fine-tune everything else (HiFi-GAN decoder, speaker encoder, ``mel_stats``, integer buffers, and the support files
dvae.pth, mel_stats.pth, vocab.json, config.json, speakers_xtts.pth) equals the base. Averaging those anyway can
only add rounding noise (frozen tensors end up off the base by ~1e-7), turn integer counters into floats, or, with
an input from another base, mix unrelated weights; so they are copied from the base bit for bit.

``average``: M = sum_i w_i FT_i.  ``task-vector``: M = BASE + sum_i w_i (FT_i - BASE). Sums run in float64 and are
rounded once to the stored dtype, so a merge of a model with itself is that model exactly. Inputs are memory-mapped
and the output is written tensor by tensor, so memory stays at a few tensors whatever the model size.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from xtts_qa.cache import file_digest
from xtts_qa.checkpoint import ROLES, Bundle, open_bundle
from xtts_qa.engine import check, run_rules
from xtts_qa.errors import InputError, UsageError
from xtts_qa.mmap_pages import PageReleaser
from xtts_qa.repair.writer import LazyTensor, NewFolder, copy_file, save_streaming
from xtts_qa.results import CheckReport, Severity
from xtts_qa.rules import CheckOptions, Context
from xtts_qa.versions import package_versions as versions

log = logging.getLogger("xtts_qa")

__all__ = ["METHODS", "MergeOptions", "MergeResult", "merge", "merge_weights", "PROVENANCE_FILE"]

METHODS = ("average", "task-vector")
#: the provenance record written into every merged folder
PROVENANCE_FILE = "merge.json"
_SUM_TOLERANCE = 1e-6
#: rules whose errors make an input unfit to merge: unreadable, wrong keys/vocab/config, NaN, scaled, another base
_GATE = ("XQ0", "XQ1", "XQ2", "XQ3", "XQ601", "XQ901", "XQ902")
_SUPPORT = ("config", "vocab", "dvae", "mel_stats", "speakers")


@dataclass(frozen=True)
class MergeOptions:
    """How to merge.

    Attributes:
        method: ``average`` or ``task-vector``.
        normalise: scale weights that do not sum to 1 instead of refusing them.
        force: replace an existing non-empty output folder.
    """

    method: str = "average"
    normalise: bool = False
    force: bool = False


@dataclass(frozen=True)
class MergeResult:
    """A finished merge.

    Attributes:
        out: the merged model folder.
        inputs: the input paths, in order.
        weights: the weights used (after normalising).
        method: average or task-vector.
        merged: number of gpt.* tensors merged.
        copied: number of tensors copied from the base.
        support: support files copied from the base.
        provenance: the provenance file.
        after: the check of the merged folder against the base.
    """

    out: Path
    inputs: tuple[Path, ...]
    weights: tuple[float, ...]
    method: str
    merged: int
    copied: int
    support: tuple[str, ...]
    provenance: Path
    after: CheckReport


def merge_weights(raw: Sequence[str | float], count: int, *, normalise: bool = False) -> list[float]:
    """Parse and validate merge weights (equal weights when ``raw`` is empty).

    Raises:
        UsageError: wrong count, not numbers, not finite, or not summing to 1 (without ``normalise``).
    """
    if not raw:
        return [1.0 / count] * count
    try:
        weights = [float(w) for w in raw]
    except ValueError:
        raise UsageError(f"--weights must be numbers separated by commas, not {','.join(map(str, raw))!r}.") from None
    if len(weights) != count:
        raise UsageError(f"--weights has {len(weights)} values for {count} inputs: give one weight per input.")
    if not all(math.isfinite(w) for w in weights):
        raise UsageError("--weights must be finite numbers.")
    total = math.fsum(weights)
    if abs(total - 1.0) > _SUM_TOLERANCE:
        if not normalise:
            raise UsageError(
                f"--weights sum to {total:.6g}, not 1: every GPT tensor would be scaled by {total:.3g} and the model "
                "babbles (XQ901). Fix: give weights that sum to 1, or pass --normalise to scale them."
            )
        if total <= 0:
            raise UsageError(f"--weights sum to {total:.6g}: they cannot be normalised to 1.")
        weights = [w / total for w in weights]
    return weights


def _fit_to_merge(path: Path, bundle: Bundle, base: Bundle, base_arch: object) -> None:
    """Refuse an input that is not a readable fine-tune of ``base`` with its config and vocab."""
    if bundle.checkpoint is None:
        p = bundle.problem("model")
        raise InputError(
            path,
            f"cannot be merged: its model cannot be read ({p.problem if p else 'no model file'}).",
            "copy or export it again.",
        )
    arch = Context(bundle, None, CheckOptions()).arch
    if arch is None or getattr(arch, "model", None) != getattr(base_arch, "model", None):
        raise InputError(
            path,
            "cannot be merged: its config.json/vocab.json describe another architecture than the base's "
            "(layers, channels, vocabulary size).",
            "merge only fine-tunes of the same base with its config.json.",
        )
    if bundle.vocab_digest() != base.vocab_digest():
        raise InputError(
            path,
            "cannot be merged: its vocab.json differs from the base's (token ids would not line up).",
            "merge only fine-tunes trained with the base's vocab.json.",
        )
    report = run_rules(bundle, base, CheckOptions(select=_GATE))
    errors = [f for f in report.findings if f.severity is Severity.ERROR]
    if errors:
        first = errors[0]
        what = "is not a fine-tune of the base" if first.code == "XQ902" else "is not fit to merge"
        raise InputError(
            path,
            f"{what}: {first.code} {first.name}: {first.message}"
            + (f" (+{len(errors) - 1} more errors)" if len(errors) > 1 else ""),
            first.fix,
        )


def _tensors(bundle: Bundle) -> dict[str, torch.Tensor]:
    """The state dict of a bundle that :func:`merge` has already checked to be readable."""
    assert bundle.checkpoint is not None
    return bundle.checkpoint.tensors


def _merged(
    key: str, inputs: list[Bundle], base: Bundle, weights: list[float], method: str, releaser: PageReleaser
) -> LazyTensor:
    ref = _tensors(base)[key]

    def produce() -> torch.Tensor:
        tensors = [_tensors(b)[key] for b in inputs]
        for t in tensors:
            if tuple(t.shape) != tuple(ref.shape):
                raise InputError(
                    inputs[0].target,
                    f"{key} has shape {list(t.shape)}, the base {list(ref.shape)}.",
                    "merge only fine-tunes of this base.",
                )
        acc = tensors[0].to(torch.float64).mul_(weights[0])
        for w, t in zip(weights[1:], tensors[1:], strict=True):
            acc.add_(t.to(torch.float64), alpha=w)
        if method == "task-vector":
            acc.add_(ref.to(torch.float64), alpha=1.0 - math.fsum(weights))
        for t in (*tensors, ref):
            releaser.release(t)
        return acc.to(ref.dtype)

    return LazyTensor(tuple(ref.shape), ref.dtype, produce)


def merge(
    inputs: Sequence[str | Path],
    base: str | Path,
    weights: Sequence[str | float],
    out: str | Path,
    options: MergeOptions | None = None,
) -> MergeResult:
    """Merge fine-tunes of ``base`` into the NEW folder ``out`` and check the result against ``base``.

    Raises:
        UsageError: fewer than two inputs, an unknown method, bad weights.
        InputError: an input that is not a fine-tune of ``base`` (another base, config or vocab), an unreadable
            input, or an unusable ``out``.
    """
    options = options or MergeOptions()
    if options.method not in METHODS:
        raise UsageError(f"--method must be one of {', '.join(METHODS)}, not {options.method!r}.")
    paths = [Path(p) for p in inputs]
    if len(paths) < 2:
        raise UsageError("xtts-qa merge needs at least two inputs.")
    used = merge_weights(list(weights), len(paths), normalise=options.normalise)
    base_bundle = open_bundle(base)
    base_arch = Context(base_bundle, None, CheckOptions()).arch
    if base_bundle.checkpoint is None or base_arch is None:
        raise InputError(
            base,
            "the base model cannot be read or its config.json does not build a model.",
            "pass the base model folder (model.pth, config.json, vocab.json, ...) as --base.",
        )
    bundles = [open_bundle(p) for p in paths]
    for path, bundle in zip(paths, bundles, strict=True):
        _fit_to_merge(path, bundle, base_bundle, base_arch)
    releaser = PageReleaser([b.paths["model"] for b in (*bundles, base_bundle)])
    state: dict[str, LazyTensor] = {}
    merged = copied = 0
    for key, ref in base_bundle.checkpoint.tensors.items():
        if key.startswith("gpt.") and ref.is_floating_point():
            state[key] = _merged(key, bundles, base_bundle, used, options.method, releaser)
            merged += 1
        else:
            state[key] = LazyTensor.of(ref, functools.partial(releaser.release, ref))
            copied += 1
    with NewFolder(out, [*paths, Path(base)], force=options.force) as folder:
        save_streaming({"model": state}, folder.path(ROLES["model"]))
        support = []
        for role in _SUPPORT:
            src = base_bundle.paths.get(role)
            if src is not None and src.is_file() and base_bundle.problem(role) is None:
                copy_file(src, folder.path(ROLES[role]))
                support.append(role)
        record = {
            "method": options.method,
            "formula": "sum_i w_i * FT_i" if options.method == "average" else "BASE + sum_i w_i * (FT_i - BASE)",
            "weights_given": [str(w) for w in weights],
            "weights_used": used,
            "normalised": options.normalise and bool(weights),
            "inputs": [
                {
                    "path": str(p.resolve()),
                    "model": str(b.paths["model"]),
                    "model_digest": file_digest(b.paths["model"]),
                    "layout": b.checkpoint.layout if b.checkpoint else None,
                    "weight": w,
                }
                for p, b, w in zip(paths, bundles, used, strict=True)
            ],
            "base": {
                "path": str(Path(base).resolve()),
                "model_digest": file_digest(base_bundle.paths["model"]),
                "vocab_digest": base_bundle.vocab_digest(),
            },
            "merged": f"{merged} gpt.* floating-point tensors",
            "copied_from_base": f"{copied} tensors and {', '.join(support)}",
            "versions": versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        folder.path(PROVENANCE_FILE).write_text(json.dumps(record, indent=2))
        done = folder.commit()
    after = check(done, base, CheckOptions())
    return MergeResult(
        done, tuple(paths), tuple(used), options.method, merged, copied, tuple(support), done / PROVENANCE_FILE, after
    )
