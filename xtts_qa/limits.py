"""The resource contract: what one input may make a check spend, enforced before the work starts.

Every figure here is checked against the file's own metadata (declared element counts, strides, storage sizes,
nesting depth, configured model sizes) before anything is materialised, built or scanned, so a small hostile
file can never make a check run for minutes or take gigabytes. The released XTTS-v2 (and realistic larger
fine-tunes) sit well inside every limit; README.md "Resource limits" lists them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "MAX_TENSOR_ELEMENTS",
    "MAX_EXPANDED_ELEMENTS",
    "MAX_ALIASED_FACTOR",
    "MAX_JSON_BYTES",
    "MAX_NESTING",
    "MAX_YAML_BYTES",
    "MAX_YAML_NODES",
    "MAX_SENTENCE_CHARS",
    "MODEL_ARG_RANGES",
    "SAMPLE_RATE_RANGE",
    "TensorBudget",
    "tensor_problem",
    "model_args_problems",
    "nesting_depth",
]

#: most elements one tensor may declare (2^27 = 134 M; the largest XTTS-v2 tensor has 6.8 M, a 128k-token
#: vocabulary at 1024 channels 131 M). Scanning one costs about 24 bytes per element at peak.
MAX_TENSOR_ELEMENTS = 2**27
#: most elements a tensor may declare beyond what its storage holds (a stride-0 / overlapping view).
MAX_EXPANDED_ELEMENTS = 2**20
#: all tensors of one file together may declare at most this many times the elements their distinct storages
#: hold (tied weights share a storage; thousands of views of one storage would multiply the scan's work)
MAX_ALIASED_FACTOR = 2
#: JSON files (config.json, vocab.json; the released vocab.json is 0.4 MB)
MAX_JSON_BYTES = 64 * 2**20
#: deepest nesting of JSON, YAML or pickled config objects (real files nest 3 to 5 levels)
MAX_NESTING = 64
#: suite YAML files: size, and nodes after alias expansion ("billion laughs" stops here)
MAX_YAML_BYTES = 4 * 2**20
MAX_YAML_NODES = 100_000
#: one suite sentence (XTTS itself warns above 250 characters for English)
MAX_SENTENCE_CHARS = 5_000

#: model_args field -> (lowest, highest) allowed before anything is built. Released XTTS-v2: gpt_layers 30,
#: channels 1024, heads 16, 6681 text tokens, 1026 audio tokens; the ranges leave room for much larger fine-tunes.
#: The bounds are a resource contract, not validation: the lower bound is 0 everywhere (coqui-tts itself decides
#: what a 0 means; gpt_number_text_tokens 0 is common, vocab.json overrides it) and only negative values and
#: sizes that would take minutes to build are refused.
MODEL_ARG_RANGES: dict[str, tuple[int, int]] = {
    "gpt_layers": (0, 128),
    "gpt_n_model_channels": (0, 16_384),
    "gpt_n_heads": (0, 256),
    "gpt_number_text_tokens": (0, 1_048_576),
    "gpt_start_text_token": (0, 1_048_576),
    "gpt_stop_text_token": (0, 1_048_576),
    "gpt_num_audio_tokens": (0, 262_144),
    "gpt_start_audio_token": (0, 262_144),
    "gpt_stop_audio_token": (0, 262_144),
    "gpt_max_audio_tokens": (0, 100_000),
    "gpt_max_text_tokens": (0, 100_000),
    "gpt_max_prompt_tokens": (0, 100_000),
    "gpt_code_stride_len": (0, 65_536),
    "gpt_batch_size": (0, 65_536),
    "num_chars": (0, 1_048_576),
    "input_sample_rate": (0, 192_000),
    "output_sample_rate": (0, 192_000),
    "output_hop_length": (0, 65_536),
    "decoder_input_dim": (0, 16_384),
    "d_vector_dim": (0, 16_384),
    "duration_const": (0, 10**9),
}
#: config.audio.sample_rate (sizes the mel filterbanks, which are real buffers)
SAMPLE_RATE_RANGE = (1_000, 192_000)


def _storage_elements(t: torch.Tensor) -> int:
    size = t.element_size()
    return t.untyped_storage().nbytes() // size if size else 0


def _span(t: torch.Tensor) -> int:
    """Elements from the storage offset to the furthest one the view reaches (0 for an empty tensor)."""
    if t.numel() == 0:
        return 0
    return int(t.storage_offset()) + 1 + sum((d - 1) * abs(s) for d, s in zip(t.shape, t.stride(), strict=True))


def tensor_problem(t: torch.Tensor) -> str | None:
    """Why coqui-tts could not load this tensor into a dense float parameter, or why the contract refuses to scan
    it; None for an ordinary dense tensor. Reads metadata only, never the data."""
    if t.is_nested:
        return "nested tensor: not a dense parameter"
    if t.layout != torch.strided:
        return f"{str(t.layout).replace('torch.', '')} layout: load_state_dict needs a dense (strided) tensor"
    if t.is_quantized:
        return (
            f"quantized ({str(t.dtype).replace('torch.', '')}): load_state_dict cannot copy it into a float parameter"
        )
    if t.device.type == "meta":
        return "meta tensor: carries no data"
    numel = t.numel()
    if numel > MAX_TENSOR_ELEMENTS:
        return f"declares {numel:.3g} elements, more than the limit of {MAX_TENSOR_ELEMENTS:.3g} per tensor"
    held = _storage_elements(t)
    if _span(t) > held:
        return f"its view reaches element {_span(t)} but its storage holds {held}"
    if numel - held > MAX_EXPANDED_ELEMENTS:
        return (
            f"declares {numel:.3g} elements but its storage holds {held} (an expanded or overlapping view; "
            f"more than {MAX_EXPANDED_ELEMENTS:.3g} extra elements are refused)"
        )
    return None


@dataclass
class TensorBudget:
    """Counts the elements all tensors of one file declare against the distinct storage they really hold.

    Attributes:
        declared: elements declared so far (tensors accepted).
        stored: elements of the distinct storages seen so far.
    """

    declared: int = 0
    stored: int = 0

    def __post_init__(self) -> None:
        self._seen: set[tuple[int, int]] = set()

    def admit(self, t: torch.Tensor) -> str | None:
        """Account for one (already individually valid) tensor; a reason when it would break the file's budget."""
        storage = t.untyped_storage()
        ident = (storage.data_ptr(), storage.nbytes())
        stored = self.stored if ident in self._seen else self.stored + _storage_elements(t)
        declared = self.declared + t.numel()
        if declared > MAX_ALIASED_FACTOR * stored + MAX_EXPANDED_ELEMENTS:
            return (
                f"aliased: the file's tensors would declare {declared:.3g} elements over {stored:.3g} stored "
                f"(more than {MAX_ALIASED_FACTOR}x; views of one storage repeated)"
            )
        self._seen.add(ident)
        self.stored, self.declared = stored, declared
        return None


def model_args_problems(model_args: Mapping[str, Any]) -> list[str]:
    """Each bounded model_args field that is not an integer inside its range, as ``name = value (allowed a-b)``."""
    out: list[str] = []
    for name, (lo, hi) in MODEL_ARG_RANGES.items():
        if name not in model_args or model_args[name] is None:
            continue
        value = model_args[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            out.append(f"model_args.{name} is a {type(value).__name__}, not an integer (allowed {lo}-{hi})")
        elif isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
            out.append(f"model_args.{name} = {value!r} is not a whole number (allowed {lo}-{hi})")
        elif not lo <= value <= hi:
            shown = repr(value) if abs(value) < 10**15 else f"about 10^{int(math.log10(abs(value)))}"
            out.append(f"model_args.{name} = {shown} is outside the allowed range {lo}-{hi}")
    return out


def nesting_depth(obj: Any, limit: int = MAX_NESTING) -> int:
    """Depth of nested dicts / lists / tuples (iterative, stops counting past ``limit`` and on cycles).

    Returns ``limit + 1`` when ``obj`` nests deeper than ``limit`` or contains itself.
    Objects with a ``fields`` dict (pickled config stand-ins) count as dicts.
    """
    stack: list[tuple[Any, int]] = [(obj, 1)]
    deepest = 0
    while stack:  # a cycle only ever goes deeper, so the depth limit also ends it
        item, depth = stack.pop()
        children = _children(item)
        if children is None:
            continue
        deepest = max(deepest, depth)
        if depth > limit:
            return limit + 1
        stack.extend((v, depth + 1) for v in children)
    return deepest


def _children(item: Any) -> list[Any] | None:
    if isinstance(item, dict):
        return list(item.values())
    if isinstance(item, (list, tuple)):
        return list(item)
    fields = getattr(item, "fields", None)
    return list(fields.values()) if isinstance(fields, dict) and not isinstance(item, type) else None
