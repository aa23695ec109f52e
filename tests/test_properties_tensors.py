"""Property tests over tensor metadata: whatever dtype, layout, strides, offset or storage size a checkpoint
declares, reading it never crashes, never scans a tensor the contract refuses, and never calls it loadable when
``load_state_dict`` would reject it."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xtts_qa.checkpoint import _classify
from xtts_qa.inputs import read_json
from xtts_qa.limits import MAX_EXPANDED_ELEMENTS, MAX_TENSOR_ELEMENTS, tensor_problem
from xtts_qa.safeload import load_torch
from xtts_qa.safeyaml import YamlTooLarge, load_yaml_text

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
DTYPES = [
    torch.float32,
    torch.float16,
    torch.bfloat16,
    torch.float64,
    torch.int64,
    torch.int8,
    torch.uint8,
    torch.bool,
    torch.complex64,
]


@st.composite
def strided_views(draw):
    """A view with arbitrary shape, strides and offset over a small real storage (possibly too small)."""
    dtype = draw(st.sampled_from(DTYPES))
    storage_len = draw(st.integers(1, 64))
    dims = draw(st.integers(0, 4))
    shape = draw(st.lists(st.one_of(st.integers(0, 8), st.sampled_from([10**3, 10**6])), min_size=dims, max_size=dims))
    strides = draw(st.lists(st.integers(0, 16), min_size=dims, max_size=dims))
    offset = draw(st.integers(0, 8))
    base = torch.zeros(storage_len, dtype=dtype)
    return base, tuple(shape), tuple(strides), offset


def _loads_into_a_float_parameter(t: torch.Tensor) -> bool:
    """What load_state_dict itself says about this tensor in a float slot of the same shape."""
    module = torch.nn.Module()
    module.register_parameter("w", torch.nn.Parameter(torch.zeros(t.shape)))
    try:
        module.load_state_dict({"w": t}, strict=True)
    except Exception:
        return False
    return True


@SETTINGS
@given(view=strided_views())
def test_declared_metadata_is_bounded_before_any_data_is_read(view) -> None:
    base, shape, strides, offset = view
    try:
        t = base.as_strided(shape, strides, offset)
    except RuntimeError:
        return  # torch itself refuses a view outside its storage; no file can carry it either
    reason = tensor_problem(t)
    if reason is None:
        assert t.numel() <= MAX_TENSOR_ELEMENTS
        assert t.numel() - base.numel() <= MAX_EXPANDED_ELEMENTS
        if t.numel() <= 4096 and not t.is_complex():
            assert _loads_into_a_float_parameter(t)  # accepted tensors are ones coqui-tts's loader accepts
    ckpt = _classify({"model": {"gpt.w": t, "gpt.ok": torch.ones(2)}})
    assert ("gpt.w" in ckpt.tensors) is (reason is None)
    assert ("gpt.w" in ckpt.tensor_problems) is (reason is not None)


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.empty(2, 3, device="meta"),
        lambda: torch.ones(2, 3).to_sparse(),
        lambda: torch.quantize_per_tensor(torch.ones(2, 3), 0.5, 0, torch.quint8),
    ],
    ids=["meta", "sparse", "quantized"],
)
def test_refused_layouts_are_exactly_those_load_state_dict_rejects(make) -> None:
    t = make()
    assert tensor_problem(t) is not None
    assert not _loads_into_a_float_parameter(t)


@SETTINGS
@given(
    layout=st.sampled_from(["dense", "meta", "sparse", "quantized", "expanded"]),
    dtype=st.sampled_from(DTYPES[:4]),
    rows=st.integers(1, 6),
    cols=st.integers(1, 6),
)
def test_saved_and_reloaded_metadata_agrees_with_load_state_dict(tmp_path_factory, layout, dtype, rows, cols) -> None:
    t = torch.randn(rows, cols).to(dtype)
    if layout == "meta":
        t = torch.empty(rows, cols, dtype=dtype, device="meta")
    elif layout == "sparse":
        t = t.to_sparse()
    elif layout == "quantized":
        t = torch.quantize_per_tensor(t.float(), 0.1, 0, torch.qint8)
    elif layout == "expanded":
        t = torch.ones(1, dtype=dtype).expand(rows, cols)
    path = tmp_path_factory.mktemp("t") / "model.pth"
    torch.save({"model": {"gpt.w": t}}, path)
    ckpt = _classify(load_torch(path))
    loaded = load_torch(path)["model"]["gpt.w"]
    assert ("gpt.w" in ckpt.tensor_problems) is (not _loads_into_a_float_parameter(loaded))


@settings(max_examples=60, deadline=None)
@given(depth=st.integers(1, 3000), kind=st.sampled_from(["list", "dict"]))
def test_json_of_any_depth_reads_or_is_refused(tmp_path_factory, depth: int, kind: str) -> None:
    text = ("[" * depth + "]" * depth) if kind == "list" else ('{"a":' * depth + "1" + "}" * depth)
    path = tmp_path_factory.mktemp("j") / "x.json"
    path.write_text(text)
    from xtts_qa.errors import InputError

    try:
        read_json(path)
    except InputError as err:
        assert "nests more than" in err.problem and depth > 60


@settings(max_examples=60, deadline=None)
@given(
    doc=st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
        lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=4), kids, max_size=4)),
        max_leaves=40,
    ),
    anchors=st.integers(0, 6),
)
def test_yaml_reader_agrees_with_safe_load_or_refuses(doc, anchors: int) -> None:
    import yaml

    text = yaml.safe_dump(doc)
    if anchors:  # nest aliases: each level repeats the previous one anchors+1 times
        text = (
            "a0: &a0 "
            + json.dumps(doc)
            + "\n"
            + "".join(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * (anchors + 1)) + "]\n" for i in range(1, 8))
        )
    try:
        ours = load_yaml_text(text)
    except YamlTooLarge:
        assert anchors >= 2  # only wide alias fan-outs exceed the node limit
        return
    assert ours == yaml.safe_load(text)
