"""Property-based tests (hypothesis), kept small for CI:

* IDX and checkpoint files: any truncation or flipped byte gives the library's own error
  (``IDXError``, ``CheckpointError``) with a message naming the file, never a raw
  exception from numpy, zipfile, gzip or json;
* layer shape rules: random valid shapes run forward and backward with the output shape of
  PyTorch's formulas and gradients shaped like their inputs and parameters; invalid ones
  give a ValueError that names the layer;
* the ``--set KEY=VALUE`` parser (``scratchgan.cli.parse_hyper``) against every model's
  ``defaults``: a default written as text parses back to itself, any text gives a value of
  the default's type or a ValueError naming the key, and unknown names are refused.
"""
from __future__ import annotations

import atexit
import math
import shutil
import tempfile

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.configuration import set_hypothesis_home_dir  # noqa: E402

from scratchgan import nn  # noqa: E402
from scratchgan.checkpoint import CheckpointError, load_checkpoint, save_checkpoint  # noqa: E402
from scratchgan.cli import parse_hyper  # noqa: E402
from scratchgan.data.idx import IDXError, parse_idx, read_idx, write_idx  # noqa: E402
from scratchgan.models import REGISTRY  # noqa: E402
from scratchgan.models.base import LOOP_KEYS  # noqa: E402

# Hypothesis keeps its example database and caches in ./.hypothesis (the cwd) unless told
# otherwise: a temporary folder instead, and no example database.
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="scratchgan-hypothesis-")
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, True)
set_hypothesis_home_dir(_HYPOTHESIS_HOME)
SMALL = settings(max_examples=40, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------------------------- files
def _idx_bytes(shape, dtype=np.uint8):
    a = (np.arange(math.prod(shape)) % 251).astype(dtype).reshape(shape)
    return a, _raw_idx(a)


def _raw_idx(a):
    import struct
    code = {np.dtype(np.uint8): 8, np.dtype(">i4"): 0x0C}[a.dtype]
    return (struct.pack(">HBB", 0, code, a.ndim) + struct.pack(">" + "I" * a.ndim, *a.shape)
            + a.tobytes())


IDX_SHAPES = st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple)


@SMALL
@given(shape=IDX_SHAPES, data=st.data())
def test_idx_truncation_is_an_idx_error(shape, data):
    a, raw = _idx_bytes(shape)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(IDXError, match="<bytes>"):
        parse_idx(raw[:cut])
    np.testing.assert_array_equal(parse_idx(raw), a)


@SMALL
@given(shape=IDX_SHAPES, data=st.data())
def test_idx_byte_flip_is_an_idx_error_or_data(shape, data):
    a, raw = _idx_bytes(shape)
    i = data.draw(st.integers(0, len(raw) - 1))
    bit = data.draw(st.integers(0, 7))
    bad = bytearray(raw)
    bad[i] ^= 1 << bit
    try:
        out = parse_idx(bytes(bad))
    except IDXError as e:
        assert "<bytes>" in str(e)
    else:                  # a flip in the pixels (or one that still describes them) reads
        assert out.size == a.size


@SMALL
@given(dims=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4),
       extra=st.integers(0, 16))
def test_idx_header_any_dims_is_an_idx_error_or_data(dims, extra):
    """Any shape in the header, with up to 16 data bytes: data that matches, else IDXError.
    Dimensions whose int64 product wraps to 0 (2**31 * 2**31 * 4) once passed the size check
    and failed in numpy's reshape."""
    import struct
    raw = struct.pack(">HBB", 0, 8, len(dims)) + struct.pack(">" + "I" * len(dims), *dims)
    try:
        out = parse_idx(raw + bytes(extra))
    except IDXError:
        assert math.prod(dims) != extra
    else:
        assert out.shape == tuple(dims) and math.prod(dims) == extra


def test_idx_header_whose_int64_size_wraps_is_an_idx_error():
    import struct
    raw = struct.pack(">HBB", 0, 8, 3) + struct.pack(">III", 2**31, 2**31, 4)
    with pytest.raises(IDXError, match="size mismatch"):
        parse_idx(raw)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("files")


@SMALL
@given(data=st.data())
def test_gzipped_idx_damage_is_an_idx_error(folder, data):
    a = (np.arange(6 * 7 * 7) % 256).astype(np.uint8).reshape(6, 7, 7)
    good = folder / "good-idx3-ubyte.gz"
    write_idx(good, a)
    raw = good.read_bytes()
    bad = bytearray(raw)
    if data.draw(st.booleans()):
        bad = bad[:data.draw(st.integers(0, len(raw) - 1))]
    else:
        bad[data.draw(st.integers(0, len(raw) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    path = folder / "bad-idx3-ubyte.gz"
    path.write_bytes(bytes(bad))
    try:
        out = read_idx(path, expected_magic=2051)
    except IDXError as e:
        assert str(path) in str(e)
    else:                  # gzip's header has fields no reader checks (mtime, flags)
        np.testing.assert_array_equal(out, a)


def _checkpoint_bytes(folder):
    state = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "step": 7,
             "nested": {"b": np.ones(2), "t": (1, "x", None)}, 3: [np.int64(2)]}
    path = save_checkpoint(folder / "ref.ckpt.npz", state)
    return path.read_bytes(), load_checkpoint(path)


@SMALL
@given(data=st.data())
def test_checkpoint_truncation_is_a_checkpoint_error(folder, data):
    raw, _ = _checkpoint_bytes(folder)
    path = folder / "cut.ckpt.npz"
    path.write_bytes(raw[:data.draw(st.integers(0, len(raw) - 1))])
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


@settings(SMALL, max_examples=80)
@given(data=st.data())
def test_checkpoint_byte_flip_is_a_checkpoint_error_or_the_same_state(folder, data):
    raw, ref = _checkpoint_bytes(folder)
    bad = bytearray(raw)
    bad[data.draw(st.integers(0, len(raw) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    path = folder / "flip.ckpt.npz"
    path.write_bytes(bytes(bad))
    try:
        got = load_checkpoint(path)
    except CheckpointError as e:
        assert str(path) in str(e)
    else:                  # zip fields nobody reads (timestamps, comments, extra data)
        np.testing.assert_array_equal(got["w"], ref["w"])
        assert got["step"] == ref["step"] and got["nested"]["t"] == ref["nested"]["t"]


def test_checkpoint_damaged_member_names_are_checkpoint_errors(folder):
    """Every bit of every copy of the member names (local headers and central directory):
    a renamed member once left a raw KeyError from the structure's array reference."""
    raw, _ = _checkpoint_bytes(folder)
    path = folder / "names.ckpt.npz"
    positions = set()
    for member in (b"a0.npy", b"a1.npy", b"a2.npy", b"__structure__.npy"):
        start = raw.find(member)
        while start >= 0:
            positions.update(range(start, start + len(member)))
            start = raw.find(member, start + 1)
    assert positions
    for i in sorted(positions):
        for bit in range(8):
            bad = bytearray(raw)
            bad[i] ^= 1 << bit
            path.write_bytes(bytes(bad))
            with pytest.raises(CheckpointError):
                load_checkpoint(path)


# ----------------------------------------------------------------------------- layers
def _run(layer, x):
    """forward then backward with dy = ones: (y, dx, {param name: grad})."""
    y = layer(x)
    dx = layer.backward(np.ones_like(y))
    return y, dx, {n: p.grad for n, p in layer.named_parameters()}


def _check_grads(layer, x, y, dx, grads):
    assert dx.shape == x.shape and dx.dtype == x.dtype
    for n, p in layer.named_parameters():
        assert grads[n].shape == p.data.shape, n
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))


def _conv_out(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


@SMALL
@given(n=st.integers(1, 4), fin=st.integers(1, 6), fout=st.integers(1, 6),
       bias=st.booleans(), extra=st.integers(-3, 3).filter(bool))
def test_linear_shapes(n, fin, fout, bias, extra):
    g = np.random.default_rng(0)
    layer = nn.Linear(fin, fout, bias=bias, rng=g)
    x = g.standard_normal((n, fin)).astype(np.float32)
    y, dx, grads = _run(layer, x)
    assert y.shape == (n, fout)
    _check_grads(layer, x, y, dx, grads)
    assume(fin + extra > 0)
    with pytest.raises(ValueError, match=r"^Linear\(.*expected"):
        layer(np.zeros((n, fin + extra), np.float32))


@SMALL
@given(n=st.integers(1, 3), cin=st.integers(1, 3), cout=st.integers(1, 3),
       k=st.integers(1, 4), s=st.integers(1, 3), p=st.integers(0, 2), d=st.integers(1, 2),
       h=st.integers(1, 9), w=st.integers(1, 9), bias=st.booleans())
def test_conv2d_shapes(n, cin, cout, k, s, p, d, h, w, bias):
    g = np.random.default_rng(0)
    layer = nn.Conv2d(cin, cout, k, stride=s, padding=p, dilation=d, bias=bias, rng=g)
    x = g.standard_normal((n, cin, h, w)).astype(np.float32)
    ho, wo = _conv_out(h, k, s, p, d), _conv_out(w, k, s, p, d)
    if ho < 1 or wo < 1:
        with pytest.raises(ValueError, match=r"^Conv2d\(.*larger than the padded input"):
            layer(x)
        return
    y, dx, grads = _run(layer, x)
    assert y.shape == (n, cout, ho, wo)
    _check_grads(layer, x, y, dx, grads)
    with pytest.raises(ValueError, match=r"^Conv2d\(.*expected \d+ input channels"):
        layer(np.zeros((n, cin + 1, h, w), np.float32))


@SMALL
@given(n=st.integers(1, 3), cin=st.integers(1, 3), cout=st.integers(1, 3),
       k=st.integers(1, 4), s=st.integers(1, 3), p=st.integers(0, 2), d=st.integers(1, 2),
       op=st.integers(0, 2), h=st.integers(1, 6), w=st.integers(1, 6))
def test_conv_transpose2d_shapes(n, cin, cout, k, s, p, d, op, h, w):
    assume(op < max(s, d))                     # PyTorch's rule for output_padding
    g = np.random.default_rng(0)
    ho = (h - 1) * s - 2 * p + d * (k - 1) + op + 1
    wo = (w - 1) * s - 2 * p + d * (k - 1) + op + 1
    assume(ho >= 1 and wo >= 1)
    layer = nn.ConvTranspose2d(cin, cout, k, stride=s, padding=p, output_padding=op,
                               dilation=d, rng=g)
    x = g.standard_normal((n, cin, h, w)).astype(np.float32)
    y, dx, grads = _run(layer, x)
    assert y.shape == (n, cout, ho, wo)
    _check_grads(layer, x, y, dx, grads)
    with pytest.raises(ValueError, match=r"^ConvTranspose2d\(.*4-D input"):
        layer(np.zeros((n, cin, h), np.float32))


@SMALL
@given(n=st.integers(2, 5), c=st.integers(1, 4), hw=st.integers(1, 4), two_d=st.booleans(),
       wrong=st.integers(1, 3))
def test_batchnorm_shapes(n, c, hw, two_d, wrong):
    g = np.random.default_rng(0)
    layer = nn.BatchNorm2d(c) if two_d else nn.BatchNorm1d(c)
    shape = (n, c, hw, hw) if two_d else (n, c)
    x = g.standard_normal(shape).astype(np.float32)
    y, dx, grads = _run(layer, x)
    assert y.shape == x.shape
    _check_grads(layer, x, y, dx, grads)
    name = type(layer).__name__
    with pytest.raises(ValueError, match=rf"^{name}\(.*expected {c} channels"):
        layer(np.zeros((n, c + wrong) + shape[2:], np.float32))


@SMALL
@given(n=st.integers(1, 3), dims=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       delta=st.integers(1, 3))
def test_reshape_flatten_shapes(n, dims, delta):
    size = math.prod(dims)
    x = np.arange(n * size, dtype=np.float32).reshape((n, size))
    y, dx, _ = _run(nn.Reshape(tuple(dims)), x)
    assert y.shape == (n, *dims) and dx.shape == x.shape
    f, dxf, _ = _run(nn.Flatten(), y.copy())
    assert f.shape == (n, size) and dxf.shape == y.shape
    with pytest.raises(ValueError, match=r"^Reshape\(.*cannot reshape"):
        nn.Reshape(tuple(dims))(np.zeros((n, size + delta), np.float32))


# ----------------------------------------------------------------------------- --set
def _typed_defaults():
    out = []
    for name, cls in sorted(REGISTRY.items()):
        for k, v in (cls.defaults or {}).items():
            if k not in LOOP_KEYS:
                out.append((name, k, v))
    return out


DEFAULTS = _typed_defaults()


def _as_text(v):
    if isinstance(v, (tuple, list)):
        return ",".join(_as_text(u) for u in v)
    return "none" if v is None else repr(v) if isinstance(v, float) else str(v)


@pytest.mark.parametrize("name,key,value", DEFAULTS,
                         ids=[f"{n}.{k}" for n, k, _ in DEFAULTS])
def test_default_written_as_text_parses_back(name, key, value):
    got = parse_hyper(REGISTRY[name], key, _as_text(value))
    assert got == value or (isinstance(value, (tuple, list)) and list(got) == list(value))
    assert type(got) is type(value) or value is None


@settings(SMALL, max_examples=150)
@given(entry=st.sampled_from(DEFAULTS), text=st.text(max_size=12))
def test_any_text_parses_to_the_default_type_or_names_the_key(entry, text):
    name, key, default = entry
    try:
        got = parse_hyper(REGISTRY[name], key, text)
    except ValueError as e:
        assert str(e).startswith(f"--set {key}=") and "expected" in str(e)
        return
    if default is None or got is None:
        return
    if isinstance(default, (tuple, list)):
        assert type(got) is type(default) and (not default or len(got) == len(default))
    elif isinstance(default, bool):
        assert isinstance(got, bool)
    elif isinstance(default, float):
        assert isinstance(got, float) and math.isfinite(got)
    elif isinstance(default, int):
        assert isinstance(got, int) and not isinstance(got, bool)
    else:
        assert got == text


@settings(SMALL, max_examples=30)
@given(model=st.sampled_from(sorted(REGISTRY)),
       key=st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True))
def test_unknown_hyperparameter_is_refused_by_name(model, key):
    cls = REGISTRY[model]
    assume(key not in cls.defaults)
    with pytest.raises(ValueError, match=rf"unknown hyperparameter\(s\) \['{key}'\]; valid names"):
        cls((1, 28, 28), rng=0, **{key: 1})
