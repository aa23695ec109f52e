"""Property tests: any change to a frozen tensor is found; no input crashes the engine."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from xtts_qa.checkpoint import _classify, open_bundle
from xtts_qa.engine import run_rules
from xtts_qa.rules import CheckOptions
from xtts_qa.scan import rounding_class

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
DTYPES = [
    torch.float32,
    torch.float16,
    torch.bfloat16,
    torch.float64,
    torch.int64,
    torch.int8,
    torch.bool,
    torch.complex64,
]


def _with_tensors(bundle, tensors=None, dvae=None):
    ckpt = dataclasses.replace(bundle.checkpoint, tensors=tensors if tensors is not None else bundle.checkpoint.tensors)
    return dataclasses.replace(
        bundle, checkpoint=ckpt, dvae=dvae if dvae is not None else bundle.dvae, problems=list(bundle.problems)
    )


def _changed_value(data, t: torch.Tensor, index: int):
    old = t.view(-1)[index].item()
    if t.is_floating_point():
        new = data.draw(
            st.floats(width=32 if t.dtype == torch.float32 else 64, allow_nan=True, allow_infinity=True), label="value"
        )
        assume(math.isnan(new) or new != old)
    else:
        new = data.draw(st.integers(-(2**31), 2**31 - 1), label="value")
        assume(new != old)
    return new


@SETTINGS
@given(data=st.data())
def test_any_change_to_a_frozen_tensor_is_found(base_bundle, data) -> None:
    tensors = base_bundle.checkpoint.tensors
    key = data.draw(
        st.sampled_from(sorted(k for k, v in tensors.items() if not k.startswith("gpt.") and v.numel())), label="key"
    )
    t = tensors[key].clone()
    index = data.draw(st.integers(0, t.numel() - 1), label="index")
    t.view(-1)[index] = _changed_value(data, t, index)
    candidate = _with_tensors(base_bundle, {**tensors, key: t})
    report = run_rules(candidate, base_bundle, CheckOptions(select=("frozen",)))
    assert ("XQ502" if key == "mel_stats" else "XQ501") in report.codes()  # every change is reported
    old, new = tensors[key].reshape(-1)[index].item(), t.reshape(-1)[index].item()
    if t.is_floating_point() and abs(new - old) <= 16 * float(np.spacing(np.float32(max(abs(old), abs(new))))):
        assert report.exit_code == 0  # within float32 rounding: a note, never "trained"
    elif abs(new - old) > max(2.0**-24, 2.0**-7 * max(abs(old), abs(new))):
        assert report.exit_code == 1  # beyond any float32/float16/bfloat16 rounding: an error
    else:  # in between, the tensor's grid decides: a cast through half precision, or a change
        assert report.exit_code == (0 if rounding_class(t, tensors[key])[0] != "changed" else 1)


@SETTINGS
@given(data=st.data())
def test_any_change_to_the_dvae_is_found(base_bundle, data) -> None:
    dvae = base_bundle.dvae
    key = data.draw(st.sampled_from(sorted(k for k, v in dvae.items() if v.numel())), label="key")
    t = dvae[key].clone()
    index = data.draw(st.integers(0, t.numel() - 1), label="index")
    t.view(-1)[index] = _changed_value(data, t, index)
    report = run_rules(_with_tensors(base_bundle, dvae={**dvae, key: t}), base_bundle, CheckOptions(select=("XQ402",)))
    assert report.codes() == {"XQ402"}


def _tensor(dtype: torch.dtype, shape: list[int]) -> torch.Tensor:
    if dtype.is_floating_point or dtype.is_complex:
        return torch.randn(shape, dtype=torch.float32).to(dtype)
    return torch.randint(0, 3, shape).to(dtype)


@st.composite
def state_dicts(draw, real_keys: list[str]):
    keys = draw(
        st.lists(
            st.one_of(
                st.sampled_from(real_keys),
                st.sampled_from([f"xtts.{k}" for k in real_keys[:50]]),
                st.sampled_from(["dvae.encoder.0.0.weight", "mel_stats", "a.weight_g", "a.weight_v"]),
                st.text(min_size=0, max_size=12),
            ),
            max_size=12,
            unique=True,
        )
    )
    out: dict[object, object] = {}
    for key in keys:
        kind = draw(st.sampled_from(["tensor", "tensor", "tensor", "other"]))
        if kind == "tensor":
            shape = draw(st.lists(st.integers(0, 4), max_size=3))
            out[key] = _tensor(draw(st.sampled_from(DTYPES)), shape)
        else:
            out[key] = draw(
                st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=3))
            )
    return out


@SETTINGS
@given(data=st.data())
def test_engine_never_crashes_on_arbitrary_state_dicts(base_bundle, data) -> None:
    real_keys = sorted(base_bundle.checkpoint.tensors)
    state = data.draw(state_dicts(real_keys), label="state")
    top = data.draw(
        st.fixed_dictionaries(
            {}, optional={"epoch": st.integers(), "step": st.text(max_size=3), "optimizer": st.none()}
        )
    )
    try:
        ckpt = _classify({"model": state, **top} if data.draw(st.booleans()) else state)
    except ValueError:
        return  # "holds no tensors": reported by open_bundle as an unreadable file
    dvae = data.draw(st.one_of(st.none(), state_dicts(["encoder.0.0.weight", "codebook.embed"])), label="dvae")
    entries = st.one_of(st.integers(), st.just({"gpt_cond_latent": torch.zeros(1)}))
    speakers = data.draw(
        st.one_of(st.none(), st.dictionaries(st.text(max_size=4), entries, max_size=3)), label="speakers"
    )
    mel = data.draw(st.one_of(st.none(), st.just(torch.zeros(3)), st.just("x")), label="mel")
    candidate = dataclasses.replace(
        base_bundle, checkpoint=ckpt, dvae=dvae, speakers=speakers, mel_stats=mel, problems=[]
    )
    for base in (None, base_bundle):
        report = run_rules(
            candidate, base, CheckOptions(intent=data.draw(st.sampled_from(["inference", "finetune", "restore"])))
        )
        crashed = [r for r in report.results if r.skip_reason.startswith("internal error")]
        assert not crashed, crashed
        json.dumps(report.to_dict())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(max_size=2048), flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8))
def test_malformed_files_never_crash(tmp_path_factory, blob: bytes, flips) -> None:
    folder = tmp_path_factory.mktemp("m")
    good = folder / "good.pth"
    torch.save({"model": {"gpt.a": torch.ones(4)}}, good)
    data = bytearray(good.read_bytes())
    for pos, value in flips:
        data[pos % len(data)] = value
    (folder / "model.pth").write_bytes(bytes(data) if flips else blob)
    (folder / "config.json").write_bytes(blob)
    (folder / "dvae.pth").write_bytes(blob[::-1])
    bundle = open_bundle(folder)
    report = run_rules(bundle, None, CheckOptions())
    assert report.exit_code in (1, 2)
    assert not [r for r in report.results if r.skip_reason.startswith("internal error")]
    assert isinstance(report.to_dict(), dict)


@pytest.mark.parametrize(
    "key",
    [
        "gpt.text_embedding.weight",
        "gpt.text_head.weight",
        "gpt.text_head.bias",
        "gpt.mel_embedding.weight",
        "gpt.mel_head.weight",
        "gpt.conditioning_perceiver.latents",
    ],
)
def test_scalar_where_a_matrix_belongs(base_bundle, key: str) -> None:
    """Regression (found by hypothesis): rules that read row counts must not crash on a 0-d tensor."""
    candidate = _with_tensors(base_bundle, {**base_bundle.checkpoint.tensors, key: torch.tensor(1.0)})
    report = run_rules(candidate, base_bundle, CheckOptions())
    assert not [r for r in report.results if r.skip_reason.startswith("internal error")]
    assert "XQ103" in report.codes() and report.loads_in_coqui is False
