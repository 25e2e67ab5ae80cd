"""The GPU convolution's A/B switches (``scratchgan.cuda.conv.switches``), on the CPU.

``benchmarks/bench_kernels.py --ab-vector-b / --ab-s2k4`` flips ``gconv.switches.vector_b``
and ``gconv.switches.s2k4`` between timed calls. These tests check that the dispatch reads
the switches at call time through that one object, without a GPU: the kernel the gather
picker names, the stride-2 4x4 decision, and the fast path's key, each before and after a
flip through ``scratchgan.cuda.conv`` (the benchmark's path). They also check that the old
module-level names (``_VECTOR_B``, ``_S2K4``) cannot be set silently any more.
"""
import types

import numpy as np
import pytest

from scratchgan.cuda import conv as gconv
from scratchgan.cuda import conv_plans, conv_tiles


@pytest.fixture
def restore_switches():
    saved = (conv_tiles.switches.vector_b, conv_tiles.switches.s2k4)
    yield conv_tiles.switches
    conv_tiles.switches.vector_b, conv_tiles.switches.s2k4 = saved


def test_one_switches_object():
    assert gconv.switches is conv_tiles.switches
    assert conv_plans.switches is conv_tiles.switches
    assert (gconv.switches.vector_b, gconv.switches.s2k4) == (True, True)    # the defaults


def test_vector_b_flip_changes_the_forward_kernel_name(restore_switches):
    # tf32 forward, 128 output channels, C*R*S = 64 * 16 (divisible by 4), aligned weights
    args = ("conv2d_fwd", "tf32", 128, 64 * 16, True)
    gconv.switches.vector_b = True
    on = conv_tiles._pick_gather_kernel(*args)
    gconv.switches.vector_b = False
    off = conv_tiles._pick_gather_kernel(*args)
    gconv.switches.vector_b = True
    again = conv_tiles._pick_gather_kernel(*args)
    assert on[0] == "conv2d_fwd_tf32_128x128_vb"
    assert off[0] == "conv2d_fwd_tf32_128x128"
    assert again == on
    assert on[1:] == off[1:]              # the switch changes the kernel, not the tiling


@pytest.mark.parametrize("args", [
    ("conv2d_bwd_data", "tf32", 128, 64 * 16, True),    # backward-data has no _vb kernel
    ("conv2d_fwd", "f32", 128, 64 * 16, True),          # nor does fp32
    ("conv2d_fwd", "tf32", 128, 64 * 16 + 2, True),     # C*R*S not a multiple of 4
    ("conv2d_fwd", "tf32", 128, 64 * 16, False),        # weights not 16-byte aligned
    ("conv2d_fwd", "tf32", 3, 64 * 16, True),           # narrow (<= 8 columns): FMA kernel
])
def test_vector_b_only_where_it_applies(restore_switches, args):
    gconv.switches.vector_b = True
    assert not conv_tiles._pick_gather_kernel(*args)[0].endswith("_vb")


def _fake_dx(shape=(128, 3, 64, 64), dtype=np.float32, ptr=256):
    """Stands in for a CuPy array: s2k4_narrow_applies reads shape, dtype and data.ptr."""
    return types.SimpleNamespace(shape=shape, dtype=np.dtype(dtype),
                                 data=types.SimpleNamespace(ptr=ptr))


def test_s2k4_flip_changes_the_backward_data_choice(restore_switches):
    # DCGAN's image-side layer: dx (128, 3, 64, 64), dy (128, 64, 32, 32), 4x4, stride 2, pad 1
    dx = _fake_dx()
    geom = (64, 4, 4, 32, 32, (2, 2), (1, 1), (1, 1))
    assert gconv.s2k4_narrow_applies(dx, *geom)
    gconv.switches.s2k4 = True
    assert conv_tiles._pick_s2k4(dx, *geom)
    gconv.switches.s2k4 = False
    assert not conv_tiles._pick_s2k4(dx, *geom)
    gconv.switches.s2k4 = True
    assert conv_tiles._pick_s2k4(dx, *geom)
    # where the kernel does not apply, the switch does not force it
    assert not conv_tiles._pick_s2k4(_fake_dx(shape=(128, 8, 64, 64)), *geom)
    assert not conv_tiles._pick_s2k4(_fake_dx(dtype=np.float64), *geom)
    assert not conv_tiles._pick_s2k4(_fake_dx(ptr=260), *geom)


class _FakeArray:
    """Enough of a C-contiguous CuPy array for _fast_key."""

    def __init__(self, shape):
        self.shape, self.dtype = shape, np.dtype(np.float32)
        self.flags = types.SimpleNamespace(c_contiguous=True)
        self.data = types.SimpleNamespace(ptr=1024)


def test_fast_key_follows_the_switches(restore_switches, monkeypatch):
    """A flip must miss the fast path's cache (whose plans were built under the other
    setting): the key reads both switches at call time."""
    fake_cp = types.SimpleNamespace(
        ndarray=_FakeArray,
        cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(getDevice=lambda: 0)))
    monkeypatch.setattr(conv_plans, "cupy", lambda: fake_cp)
    a, b = _FakeArray((2, 64, 8, 8)), _FakeArray((64, 64, 4, 4))

    def key():
        return conv_plans._fast_key("fwd", a, b, None, 2, 1, 1, None)

    gconv.switches.vector_b, gconv.switches.s2k4 = True, True
    k_on = key()
    assert k_on is not None and key() == k_on
    gconv.switches.vector_b = False
    k_vb = key()
    gconv.switches.vector_b, gconv.switches.s2k4 = True, False
    k_s2 = key()
    gconv.switches.s2k4 = True
    assert len({k_on, k_vb, k_s2}) == 3
    assert key() == k_on


@pytest.mark.parametrize("old, new", [("_VECTOR_B", "vector_b"), ("_S2K4", "s2k4")])
def test_old_module_names_raise(old, new):
    with pytest.raises(AttributeError, match=f"switches.{new}"):
        setattr(gconv, old, False)
    with pytest.raises(AttributeError, match=f"switches.{new}"):
        getattr(gconv, old)
    assert not hasattr(conv_tiles, old)
    assert not hasattr(conv_plans, old)


def test_unknown_switch_raises():
    with pytest.raises(AttributeError):
        gconv.switches.vector_bb = False      # a typo must not pass silently


def test_module_attribute_setting_still_works(monkeypatch):
    """The guard only concerns the two moved names (monkeypatching other names works)."""
    monkeypatch.setattr(gconv, "conv2d_forward", gconv.conv2d_forward)
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        gconv.no_such_name
