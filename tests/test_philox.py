"""Philox4x32-10 (scratchgan/philox.py, kernels/philox.cu): known answers, the element -> block
mapping, counter arithmetic, state round trips, ranges, statistics, errors; on the GPU (marked
``gpu``) bitwise agreement with the NumPy stream and CUDA-graph replays.

Element -> block mapping under test (draw of n elements from counter c):
  raw / float32 uniform / integers: element i = word i%4 of block c + i//4,   B(n) = ceil(n/4)
  float64 uniform:                  words 2(i%2), 2(i%2)+1 of block c + i//2, B(n) = ceil(n/2)
  normal:                           words 0..3 of block c + i,                 B(n) = n
"""
import math

import numpy as np
import pytest
from scipy import stats

import scratchgan.philox as ph
from scratchgan.philox import Philox, philox4x32_10, philox_blocks

MASK = 0xFFFFFFFF

# Random123 kat_vectors, philox4x32 with 10 rounds: (counter words, key words, output words).
KATS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((MASK, MASK, MASK, MASK), (MASK, MASK), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


def _u32(*a):
    return np.array(a, dtype=np.uint32)


def philox_scalar(ctr, key):
    """Independent scalar reference (Python ints), written from the Random123 definition."""
    c = list(ctr)
    k0, k1 = key
    for r in range(10):
        if r:
            k0, k1 = (k0 + 0x9E3779B9) & MASK, (k1 + 0xBB67AE85) & MASK
        p0 = 0xD2511F53 * c[0]
        p1 = 0xCD9E8D57 * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k0, p1 & MASK, (p0 >> 32) ^ c[3] ^ k1, p0 & MASK]
    return tuple(c)


def block_scalar(seed, b):
    b %= 2 ** 64
    return philox_scalar((b & MASK, b >> 32, 0, 0), (seed & MASK, seed >> 32))


# ------------------------------------------------------------------------------------------
# The block function
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ctr,key,expected", KATS)
def test_known_answers_random123(ctr, key, expected):
    out = philox4x32_10(_u32(*ctr)[None], _u32(*key))
    assert out.dtype == np.uint32 and out.shape == (1, 4)
    assert tuple(int(v) for v in out[0]) == expected
    assert philox_scalar(ctr, key) == expected


def test_known_answers_batched_rows_are_independent():
    ctrs = np.array([k[0] for k in KATS] * 3, dtype=np.uint32)
    out = philox4x32_10(ctrs, _u32(0xA4093822, 0x299F31D0))
    want = philox_scalar(KATS[2][0], KATS[2][1])
    assert tuple(int(v) for v in out[2]) == want and tuple(int(v) for v in out[5]) == want


def test_vectorised_matches_scalar_reference_on_random_inputs():
    r = np.random.default_rng(3)
    for _ in range(4):
        ctr = r.integers(0, 2 ** 32, size=(64, 4), dtype=np.uint64).astype(np.uint32)
        key = r.integers(0, 2 ** 32, size=2, dtype=np.uint64).astype(np.uint32)
        out = philox4x32_10(ctr, key)
        for row in range(0, 64, 7):
            assert tuple(int(v) for v in out[row]) == philox_scalar(
                tuple(int(v) for v in ctr[row]), tuple(int(v) for v in key))


def test_constants_are_the_standard_ones():
    assert (ph.M0, ph.M1, ph.W0, ph.W1) == (0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85)
    assert ph.TWO_PI == 2 * math.pi


def test_block_layout_counter_lo_hi_and_key_lo_hi():
    seed = 0x0123456789ABCDEF
    for start in (0, 2 ** 32 - 2, 2 ** 64 - 2, 0xDEADBEEF12345678):
        blocks = philox_blocks(seed, start, 4)
        for j in range(4):
            assert tuple(int(v) for v in blocks[j]) == block_scalar(seed, start + j), (start, j)


# ------------------------------------------------------------------------------------------
# The element -> block mapping and the counter
# ------------------------------------------------------------------------------------------
def test_mapping_of_each_draw_kind_against_blocks():
    seed, c = 99, 12345
    n = 11
    B = philox_blocks(seed, c, n)              # enough blocks for every kind
    flat = B.reshape(-1)

    def gen():
        g = Philox(seed)
        g.load_state_dict({"seed": seed, "counter": c})
        return g

    np.testing.assert_array_equal(gen().raw(n), flat[:n])
    u32 = gen().random(n)
    np.testing.assert_array_equal(u32, (flat[:n] >> 8).astype(np.float64) * 2.0 ** -24)
    u64 = gen().random(n, dtype=np.float64)
    i = np.arange(n)
    wa, wb = B[i // 2, 2 * (i % 2)], B[i // 2, 2 * (i % 2) + 1]
    m = (wa.astype(np.uint64) >> np.uint64(5)) * np.uint64(2 ** 26) + (wb.astype(np.uint64) >> np.uint64(6))
    np.testing.assert_array_equal(u64, m.astype(np.float64) / 2.0 ** 53)
    k = gen().integers(1000, n)
    np.testing.assert_array_equal(k, (flat[:n].astype(np.uint64) * 1000) >> np.uint64(32))
    z = gen().normal(n, dtype=np.float64)
    for e in range(n):   # element e = Box-Muller of block c + e, scalar math module formula
        w = B[e]
        u1 = ((int(w[0]) >> 5) * 2 ** 26 + (int(w[1]) >> 6)) / 2.0 ** 53
        u2 = ((int(w[2]) >> 5) * 2 ** 26 + (int(w[3]) >> 6)) / 2.0 ** 53
        ref = math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2 * math.pi * u2)
        assert abs(z[e] - ref) <= 4 * np.spacing(abs(ref)), (e, z[e], ref)


@pytest.mark.parametrize("kind,per", [("raw", 4), ("f32", 4), ("int", 4), ("f64", 2), ("normal", 1)])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 13, 1000])
def test_counter_advances_by_blocks_needed(kind, per, n):
    g = Philox(5)
    g.load_state_dict({"seed": 5, "counter": 7})
    _draw(g, kind, n)
    assert g.counter == 7 + math.ceil(n / per)


def _draw(g, kind, n):
    if kind == "raw":
        return g.raw(n)
    if kind == "f32":
        return g.random(n)
    if kind == "int":
        return g.integers(77, n)
    if kind == "f64":
        return g.random(n, dtype=np.float64)
    return g.normal(n, dtype=np.float64)


@pytest.mark.parametrize("kind,per", [("raw", 4), ("f32", 4), ("int", 4), ("f64", 2), ("normal", 1)])
def test_two_draws_equal_one_split_exactly_when_first_covers_whole_blocks(kind, per):
    n1, n2 = 4 * per, 9
    a, b = Philox(11), Philox(11)
    whole = _draw(a, kind, n1 + n2)
    split = np.concatenate([_draw(b, kind, n1), _draw(b, kind, n2)])
    np.testing.assert_array_equal(whole, split)
    assert b.counter == math.ceil(n1 / per) + math.ceil(n2 / per)
    if per > 1:   # a partial first block is discarded: the next draw starts on a fresh block
        a, b = Philox(11), Philox(11)
        whole = _draw(a, kind, per + 1 + n2)
        split = np.concatenate([_draw(b, kind, per + 1), _draw(b, kind, n2)])
        assert not np.array_equal(whole, split)
        np.testing.assert_array_equal(whole[:per + 1], split[:per + 1])


def test_draw_is_a_prefix_of_a_longer_draw_and_ignores_shape():
    a, b = Philox(4), Philox(4)
    np.testing.assert_array_equal(a.normal((3, 5)).ravel(), b.normal(40)[:15])
    a, b = Philox(4), Philox(4)
    np.testing.assert_array_equal(a.random((2, 3, 2)), b.random(12).reshape(2, 3, 2))


def test_counter_wraps_mod_2_64():
    seed = 2 ** 64 - 1
    g = Philox(seed)
    g.load_state_dict({"seed": seed, "counter": 2 ** 64 - 1})
    w = g.raw(8)
    assert g.counter == 1
    assert tuple(int(v) for v in w[:4]) == block_scalar(seed, 2 ** 64 - 1)
    assert tuple(int(v) for v in w[4:]) == block_scalar(seed, 0)


def test_seed_is_the_key_and_streams_differ():
    assert not np.array_equal(Philox(0).raw(8), Philox(1).raw(8))
    assert not np.array_equal(Philox(0).raw(8), Philox(2 ** 32).raw(8))   # only the hi key word
    np.testing.assert_array_equal(Philox(2 ** 32).raw(4),
                                  np.array(block_scalar(2 ** 32, 0), dtype=np.uint32))
    np.testing.assert_array_equal(Philox(123).normal(50), Philox(123).normal(50))


def test_empty_draw_consumes_nothing():
    g = Philox(1)
    for x in (g.raw(0), g.random((0, 3)), g.normal((4, 0)), g.integers(5, 0)):
        assert x.size == 0
    assert g.counter == 0


def test_output_dtypes_shapes_and_out_argument():
    g = Philox(2)
    assert g.raw((2, 3)).dtype == np.uint32
    assert g.random((2, 3)).dtype == np.float32
    assert g.uniform(4, dtype=np.float64).dtype == np.float64
    assert g.normal((1, 2, 3)).shape == (1, 2, 3) and g.normal(2).dtype == np.float32
    assert g.integers(3, (5,)).dtype == np.int64
    out = np.full((3, 4), np.nan, dtype=np.float32)
    c0 = g.counter
    ref = Philox(2)
    ref.load_state_dict(g.state_dict())
    assert g.normal((3, 4), out=out) is out
    np.testing.assert_array_equal(out, ref.normal((3, 4)))
    assert g.counter == c0 + 12


# ------------------------------------------------------------------------------------------
# State
# ------------------------------------------------------------------------------------------
def test_state_dict_round_trip_resumes_the_exact_stream():
    g = Philox(2024)
    g.normal(7)
    g.integers(10, 3)
    st = g.state_dict()
    assert st == {"seed": 2024, "counter": 7 + 1}
    assert all(type(v) is int for v in st.values())
    after = [g.random(9), g.normal(5, dtype=np.float64), g.integers(6, 10), g.raw(3)]
    h = Philox(1)                               # another seed: load_state_dict restores it
    h.load_state_dict(st)
    again = [h.random(9), h.normal(5, dtype=np.float64), h.integers(6, 10), h.raw(3)]
    for x, y in zip(after, again):
        np.testing.assert_array_equal(x, y)
    assert h.state_dict() == g.state_dict()
    # numpy integer scalars and 0-d arrays (as read back from an .npz checkpoint) are accepted
    h.load_state_dict({"seed": np.uint64(2024), "counter": np.array(8, dtype=np.uint64)})
    np.testing.assert_array_equal(h.random(9), after[0])


def test_to_cpu_is_a_no_op_and_bad_devices_are_named():
    g = Philox(1)
    assert g.to("cpu") is g and g.device == "cpu"
    with pytest.raises(ValueError, match="'tpu'"):
        g.to("tpu")
    with pytest.raises(ValueError, match="'gpu'"):
        Philox(1, device="gpu")


# ------------------------------------------------------------------------------------------
# Conversions and ranges
# ------------------------------------------------------------------------------------------
def test_uniforms_are_exact_grid_values_in_unit_interval():
    g = Philox(8)
    u = g.random(100_000)
    assert u.min() >= 0 and u.max() < 1
    assert np.all(np.floor(u.astype(np.float64) * 2 ** 24) == u.astype(np.float64) * 2 ** 24)
    d = g.random(100_000, dtype=np.float64)
    assert d.min() >= 0 and d.max() < 1
    assert np.all(np.floor(d * 2 ** 53) == d * 2 ** 53)
    assert ph.words_to_uniform_f32(_u32(MASK))[0] == np.float32(1 - 2 ** -24)
    assert ph.words_to_uniform_f64(_u32(MASK), _u32(MASK))[0] == 1 - 2 ** -53
    assert ph.words_to_uniform_f32(_u32(255))[0] == 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("low,high", [(0.0, 1.0), (-2.5, 3.75), (1.0, 2.0), (-1e-3, -1e-4),
                                      (100.0, 100.5), (-1e30, 1e30)])
def test_uniform_range_and_formula(dtype, low, high):
    g, ref = Philox(31), Philox(31)
    x = g.uniform(50_001, low, high, dtype=dtype)
    t = np.dtype(dtype).type
    lo, hi = t(low), t(high)
    assert x.dtype == dtype and x.min() >= lo and x.max() < hi
    u = ref.random(50_001, dtype=dtype)
    expect = lo + (hi - lo) * u
    expect = np.where(expect < hi, expect, np.nextafter(hi, t(-np.inf)))
    np.testing.assert_array_equal(x, expect)
    assert (x.max() - lo) / (hi - lo) > 0.999 and (x.min() - lo) / (hi - lo) < 1e-3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniform_rounding_up_to_high_is_kept_below_high(dtype, monkeypatch):
    # In float32, 1 + (1 - 2**-24) is a tie that rounds (to even) to 2.0 == high; in float64
    # 1 + (1 - 2**-53) likewise. The largest word must still give a value < high.
    t = np.dtype(dtype).type
    assert t(1) + t(1) * (t(1) - t(2.0 ** (-24 if dtype == np.float32 else -53))) == t(2)
    monkeypatch.setattr(ph, "philox_blocks", lambda s, c, nb: np.full((nb, 4), MASK, np.uint32))
    x = Philox(0).uniform(16, 1.0, 2.0, dtype=dtype)
    assert np.all(x == np.nextafter(t(2), t(0))) and np.all(x < 2)


@pytest.mark.parametrize("dtype,low", [(np.float32, 1024.0), (np.float64, 2.0 ** 40)])
def test_uniform_clamp_in_coarse_ranges(dtype, low):
    # spacing at `low` is 2**-13 (float32 at 2**10) or 2**-12 (float64 at 2**40), so
    # fl(low + u) == low + 1 == high for u > 1 - 2**-14 (resp. 1 - 2**-13): ~60 (~120) of 1e6
    # draws round up to high and must come out as the largest value below high instead.
    t = np.dtype(dtype).type
    x = Philox(9).uniform(1_000_000, low, low + 1.0, dtype=dtype)
    below = np.nextafter(t(low + 1.0), t(0))
    assert x.max() == below and x.min() >= low
    unclamped = t(low) + t(1) * Philox(9).random(1_000_000, dtype=dtype)
    assert (unclamped == t(low + 1.0)).sum() > 20          # the rounding really happens


def test_integers_formula_and_extremes():
    g, ref = Philox(17), Philox(17)
    k = g.integers(1000, 10_001)
    w = ref.raw(10_001).astype(np.uint64)
    np.testing.assert_array_equal(k, ((w * np.uint64(1000)) >> np.uint64(32)).astype(np.int64))
    assert k.min() >= 0 and k.max() < 1000
    assert np.all(Philox(1).integers(1, 100) == 0)
    top = Philox(1).integers(2 ** 31, 100_000)
    assert top.min() >= 0 and top.max() < 2 ** 31 and top.max() > 2 ** 31 * 0.999
    np.testing.assert_array_equal(ph.words_to_integers(_u32(0, MASK, 2 ** 31), 7), [0, 6, 3])


def test_normal_is_finite_even_for_u1_zero_and_bounded():
    z = ph.blocks_to_normal(np.zeros((1, 4), np.uint32), 0.0, 1.0, np.float64)
    assert z[0] == 0.0                                    # u1 = 0 -> log(1) = 0, never log(0)
    z = ph.blocks_to_normal(np.full((1, 4), MASK, np.uint32), 0.0, 1.0, np.float64)
    assert np.isfinite(z[0]) and abs(z[0]) <= math.sqrt(2 * 53 * math.log(2)) + 1e-12
    x = Philox(5).normal(200_000, dtype=np.float64)
    assert np.all(np.isfinite(x)) and np.abs(x).max() < 8.6


def test_normal_mean_std_applied_in_float64_then_cast():
    a, b = Philox(6), Philox(6)
    z = a.normal(1000, dtype=np.float64)
    x = b.normal(1000, mean=3.0, std=0.25, dtype=np.float32)
    np.testing.assert_array_equal(x, (3.0 + 0.25 * z).astype(np.float32))


# ------------------------------------------------------------------------------------------
# Statistics (5 sigma bounds / p = 1e-6 thresholds: a correct generator fails ~never)
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normal_moments_within_5_sigma(dtype):
    n = 1_000_000
    x = Philox(2718).normal(n, dtype=dtype).astype(np.float64)
    assert abs(x.mean()) < 5 / math.sqrt(n)
    assert abs(x.var() - 1) < 5 * math.sqrt(2 / n)
    s = stats.skew(x)
    assert abs(s) < 5 * math.sqrt(6 / n)
    assert abs(stats.kurtosis(x)) < 5 * math.sqrt(24 / n)
    assert stats.kstest(x, "norm").pvalue > 1e-6
    y = Philox(1).normal(n, mean=-2.0, std=3.0, dtype=dtype).astype(np.float64)
    assert abs(y.mean() + 2) < 5 * 3 / math.sqrt(n) and abs(y.std() - 3) < 5 * 3 / math.sqrt(2 * n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniform_moments_ks_and_lag_correlation(dtype):
    n = 1_000_000
    u = Philox(1414).random(n, dtype=dtype).astype(np.float64)
    assert abs(u.mean() - 0.5) < 5 * math.sqrt(1 / 12 / n)
    assert abs(u.var() - 1 / 12) < 5 * math.sqrt(1 / 180 / n)
    assert stats.kstest(u, "uniform").pvalue > 1e-6
    c = np.corrcoef(u[:-1], u[1:])[0, 1]
    assert abs(c) < 5 / math.sqrt(n)
    c4 = np.corrcoef(u[:-4], u[4:])[0, 1]      # same word position in consecutive blocks
    assert abs(c4) < 5 / math.sqrt(n)


@pytest.mark.parametrize("high", [2, 7, 10, 1000])
def test_integers_histogram_chi_square(high):
    n = 1_000_000
    k = Philox(577).integers(high, n)
    counts = np.bincount(k, minlength=high)
    assert counts.size == high and counts.min() > 0
    chi2 = ((counts - n / high) ** 2 / (n / high)).sum()
    assert chi2 < stats.chi2.isf(1e-6, high - 1), (high, chi2)


def test_chi_square_would_catch_a_biased_generator():
    # the same test on a deliberately biased mapping (w % 7 on the top 4 bits) fails
    w = Philox(577).raw(1_000_000)
    k = (w >> 28) % 7
    counts = np.bincount(k, minlength=7)
    chi2 = ((counts - w.size / 7) ** 2 / (w.size / 7)).sum()
    assert chi2 > stats.chi2.isf(1e-6, 6)


# ------------------------------------------------------------------------------------------
# Errors name what was wrong
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed,msg", [(-1, "-1"), (2 ** 64, str(2 ** 64)), (1.5, "1.5"),
                                      (True, "True"), ("3", "'3'"), (None, "None")])
def test_bad_seed(seed, msg):
    with pytest.raises(ValueError, match="seed") as e:
        Philox(seed)
    assert msg in str(e.value)


def test_seed_extremes_are_accepted():
    assert Philox(0).seed == 0 and Philox(2 ** 64 - 1).seed == 2 ** 64 - 1
    assert Philox(np.uint64(7)).seed == 7


@pytest.mark.parametrize("shape,msg", [(-1, "-1"), ((2, -3), "-3"), (2.5, "2.5"), ("ab", "'ab'"),
                                       ((2, 1.0), "1.0"), (None, "None")])
def test_bad_shape(shape, msg):
    g = Philox(0)
    for f in (lambda: g.random(shape), lambda: g.normal(shape), lambda: g.integers(3, shape),
              lambda: g.raw(shape)):
        with pytest.raises(ValueError, match="shape") as e:
            f()
        assert msg in str(e.value)
    assert g.counter == 0


@pytest.mark.parametrize("high,msg", [(0, "0"), (-5, "-5"), (2 ** 31 + 1, str(2 ** 31 + 1)),
                                      (2.0, "2.0"), (True, "True")])
def test_bad_high(high, msg):
    with pytest.raises(ValueError, match="high") as e:
        Philox(0).integers(high, 4)
    assert msg in str(e.value)


@pytest.mark.parametrize("dtype,msg", [(np.int32, "int32"), (np.float16, "float16"),
                                       ("complex64", "complex64"), ("nonsense", "nonsense"),
                                       (None, "None")])
def test_bad_dtype(dtype, msg):
    g = Philox(0)
    for f in (lambda: g.random(3, dtype=dtype), lambda: g.uniform(3, dtype=dtype),
              lambda: g.normal(3, dtype=dtype)):
        with pytest.raises(ValueError, match="dtype") as e:
            f()
        assert msg in str(e.value)


def test_bad_uniform_bounds_and_normal_params():
    g = Philox(0)
    with pytest.raises(ValueError, match="low < high"):
        g.uniform(3, 2.0, 2.0)
    with pytest.raises(ValueError, match="low < high"):
        g.uniform(3, 1.0, 1.0 + 1e-12)               # equal once rounded to float32
    with pytest.raises(ValueError, match="nan"):
        g.uniform(3, float("nan"), 1.0)
    with pytest.raises(ValueError, match="finite"):
        g.uniform(3, 0.0, 1e39)                        # inf in float32
    with pytest.raises(ValueError, match="overflows"):
        g.uniform(3, -3e38, 3e38)
    with pytest.raises(ValueError, match="std.*-1.0"):
        g.normal(3, std=-1.0)
    with pytest.raises(ValueError, match="mean.*inf"):
        g.normal(3, mean=float("inf"))
    assert g.counter == 0


def test_bad_state_and_out():
    g = Philox(0)
    with pytest.raises(ValueError, match="keys"):
        g.load_state_dict({"seed": 1})
    with pytest.raises(ValueError, match="counter.*-4"):
        g.load_state_dict({"seed": 1, "counter": -4})
    with pytest.raises(ValueError, match="counter.*2.5"):
        g.load_state_dict({"seed": 1, "counter": 2.5})
    with pytest.raises(ValueError, match="dict"):
        g.load_state_dict([1, 2])
    assert g.state_dict() == {"seed": 0, "counter": 0}
    with pytest.raises(ValueError, match=r"out must be .*\(2, 3\).*float32"):
        g.random((2, 3), out=np.empty((3, 2), np.float32))
    with pytest.raises(ValueError, match="out must be"):
        g.random((2, 3), out=np.empty((2, 3), np.float64))
    with pytest.raises(ValueError, match="out must be"):
        g.random((2, 3), out=np.empty((3, 2), np.float32).T)
    with pytest.raises(ValueError, match=r"\(n, 4\) uint32"):
        philox4x32_10(np.zeros((2, 4), np.int64), _u32(0, 0))
    with pytest.raises(ValueError, match=r"\(2,\) uint32"):
        philox4x32_10(np.zeros((2, 4), np.uint32), _u32(0, 0, 0))


# ------------------------------------------------------------------------------------------
# GPU: bitwise agreement with the NumPy stream, CUDA graphs (run on a CUDA machine)
# ------------------------------------------------------------------------------------------
GPU_SIZES = [1, 3, 4, 5, 7, 1023, 4097, 65_537, 1_000_003]
GPU_COUNTERS = [0, 5, 2 ** 32 - 3, 2 ** 64 - 2]
# GPU normals vs NumPy's. log and cos come from libdevice on the GPU (documented max error
# 1 ulp for log, 2 ulp for cos) and from NumPy on the CPU (its SIMD log differs from glibc's by
# 1 ulp in ~0.4% of these arguments; its cos matched glibc on all of them). In z = rad * cos,
# a 1-ulp relative error of rad can show as 2 ulps of z (the ulp's relative size varies by 2x
# within a binade): NumPy vs glibc alone, measured on x86 with AVX-512 over 2e6 normals, gives
# float64 max 2 ulp (99.84% identical) and float32 0 ulp (100%). Adding libdevice's cos error
# makes 3-4 ulps possible in float64, hence its bound of 4; float32 outputs (cast from float64)
# should be identical except within a few 2**-29 of a rounding tie: bound 2 (expected 0-1).
NORMAL_ULP_BOUND = {np.dtype(np.float32): 2, np.dtype(np.float64): 4}

def _pair(seed, counter):
    cpu, gpu = Philox(seed), Philox(seed, device="cuda")
    cpu.load_state_dict({"seed": seed, "counter": counter})
    gpu.load_state_dict({"seed": seed, "counter": counter})
    return cpu, gpu


def _bits(x):
    x = np.ascontiguousarray(x)
    return x.view({1: np.uint8, 4: np.uint32, 8: np.uint64}[x.dtype.itemsize])


def _ulp_distance(a, b):
    """|a - b| in units in the last place of their dtype: the distance between the bit patterns
    mapped to integers monotone in the value (-0 and +0 both map to 0)."""
    it = {np.dtype(np.float32): np.int32, np.dtype(np.float64): np.int64}[a.dtype]

    def ordered(x):
        i = np.ascontiguousarray(x).view(it).astype(np.int64)
        return np.where(i < 0, np.iinfo(it).min - i, i)

    ia, ib = ordered(a), ordered(b)
    same_side = (ia >= 0) == (ib >= 0)
    far = np.abs(ia).astype(np.float64) + np.abs(ib).astype(np.float64)   # only when signs differ
    return np.where(same_side, np.abs(np.where(same_side, ia - ib, 0)).astype(np.float64), far)


def test_ulp_distance_helper():
    x = np.array([1.0, -1.0, 0.0, 1e-300], dtype=np.float64)
    y = np.array([np.nextafter(1.0, 2.0), np.nextafter(-1.0, -2.0), -0.0, 1e-300])
    np.testing.assert_array_equal(_ulp_distance(x, y), [1, 1, 0, 0])
    f = np.float32
    assert _ulp_distance(np.array([f(1)]), np.array([f(1) + 3 * np.spacing(f(1))]))[0] == 3
    assert _ulp_distance(np.array([f(-2)]), np.array([f(2)]))[0] == 2 ** 31   # 2 * 0x40000000


@pytest.mark.gpu
@pytest.mark.parametrize("counter", GPU_COUNTERS)
def test_gpu_words_uniforms_integers_bitwise_equal_to_numpy(counter):
    import cupy as cp
    seed = 0x9E3779B97F4A7C15
    cpu, gpu = _pair(seed, counter)
    for n in GPU_SIZES:
        draws = [
            ("raw", lambda g, out=None: g.raw(n, out=out), np.uint32, 0xFFFFFFFF),
            ("f32", lambda g, out=None: g.random(n, out=out), np.float32, np.nan),
            ("f64", lambda g, out=None: g.random(n, dtype=np.float64, out=out), np.float64, np.nan),
            ("u32lh", lambda g, out=None: g.uniform(n, -2.5, 3.75, out=out), np.float32, np.nan),
            ("u64lh", lambda g, out=None: g.uniform(n, 1.0, 2.0, dtype=np.float64, out=out),
             np.float64, np.nan),
            ("u32clamp", lambda g, out=None: g.uniform(n, 1024.0, 1025.0, out=out), np.float32,
             np.nan),     # ~n * 2**-14 of these round up to high and are clamped
            ("u64clamp", lambda g, out=None: g.uniform(n, 2.0 ** 40, 2.0 ** 40 + 1, dtype=np.float64,
                                                       out=out), np.float64, np.nan),
            ("int", lambda g, out=None: g.integers(1000, n, out=out), np.int64, -1),
            ("int2", lambda g, out=None: g.integers(2 ** 31, n, out=out), np.int64, -1),
        ]
        for name, draw, dt, poison in draws:
            ref = draw(cpu)
            out = cp.full(n, poison, dtype=dt)
            got = draw(gpu, out=out)
            assert got is out
            h = cp.asnumpy(got)
            if np.issubdtype(dt, np.floating):
                assert not np.isnan(h).any(), f"{name} n={n}: {np.isnan(h).sum()} elements unwritten"
            bad = np.flatnonzero(_bits(h) != _bits(ref))
            assert bad.size == 0, (f"{name} n={n} counter0={counter}: {bad.size} differ, first at "
                                   f"{bad[0]}: gpu {h[bad[0]]!r} cpu {ref[bad[0]]!r}")
            if name.endswith("clamp"):
                high = np.float32(1025.0) if dt == np.float32 else 2.0 ** 40 + 1
                assert h.max() < high, f"{name} n={n}: a value reached high"
                if n == GPU_SIZES[-1]:
                    assert (h == np.nextafter(dt(high), dt(0))).sum() > 20   # clamping exercised
        assert gpu.counter == cpu.counter, (n, gpu.counter, cpu.counter)


def _normal_error(h, ref, mean):
    """Ulp distance of GPU normals ``h`` from NumPy's ``ref``, measured in ulps of
    ``|mean| + |ref - mean|`` where that is coarser (mean + std z cancels near zero)."""
    d = _ulp_distance(h, ref)
    scale = np.spacing((abs(mean) + np.abs(ref.astype(np.float64) - mean)).astype(ref.dtype))
    cancel = np.abs(h.astype(np.float64) - ref) / scale.astype(np.float64)
    return np.minimum(d, cancel), d


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mean,std", [(0.0, 1.0), (0.0, 2.0), (0.5, 2.0)])
def test_gpu_normals_within_ulp_bound(dtype, mean, std):
    import cupy as cp
    bound = NORMAL_ULP_BOUND[np.dtype(dtype)]
    cpu, gpu = _pair(1234567, 77)
    worst = 0.0
    for n in (1, 5, 4097, 1_000_003):
        ref = cpu.normal(n, mean, std, dtype=dtype)
        out = cp.full(n, np.nan, dtype=dtype)
        h = cp.asnumpy(gpu.normal(n, mean, std, dtype=dtype, out=out))
        assert not np.isnan(h).any(), f"n={n}: {np.isnan(h).sum()} elements unwritten"
        err, d = _normal_error(h, ref, mean)
        worst = max(worst, float(err.max()))
        assert gpu.counter == cpu.counter
    hist = np.bincount(np.ceil(np.minimum(err, bound + 1)).astype(np.int64), minlength=bound + 2)
    print(f"\nnormal {np.dtype(dtype)} mean={mean} std={std}: max error {worst:g} ulp (bound "
          f"{bound}); of 1,000,003: bit-identical {hist[0] / d.size:.6f}, ulp histogram "
          f"0..{bound}, >{bound}: {hist.tolist()}")
    assert worst <= bound, f"max ulp distance {worst} > {bound}"


@pytest.mark.gpu
def test_gpu_large_draw_uses_64_bit_indices():
    import cupy as cp
    n = (1 << 30) + 7                              # past the kernel's 32-bit index range
    seed, c = 42, 2 ** 40 + 3
    cpu, gpu = _pair(seed, c)
    out = cp.full(n, 0, dtype=np.uint32)
    gpu.raw(n, out=out)
    idx = np.array([0, 1, 5, (1 << 30) - 1, 1 << 30, n - 5, n - 2, n - 1], dtype=np.int64)
    rng = np.random.default_rng(0)
    idx = np.concatenate([idx, rng.integers(0, n, 64)])
    got = cp.asnumpy(out[cp.asarray(idx)])
    for i, g in zip(idx, got):
        assert int(g) == block_scalar(seed, c + int(i) // 4)[int(i) % 4], i
    assert gpu.counter == c + math.ceil(n / 4)
    del out
    x = cp.full(n, np.nan, dtype=np.float32)
    gpu.random(n, out=x)
    assert not bool(cp.isnan(x).any())
    del x


@pytest.mark.gpu
def test_gpu_state_dict_to_and_from_device():
    cpu = Philox(5)
    cpu.normal(3)
    g = Philox(5).to("cuda")
    g.load_state_dict(cpu.state_dict())
    assert g.device == "cuda" and g.counter == 3 and g.state_dict() == {"seed": 5, "counter": 3}
    a = g.random(10)
    g.to("cpu")
    assert g.device == "cpu" and g.counter == 6
    b = g.random(10)
    np.testing.assert_array_equal(_bits(a.get()), _bits(cpu.random(10)))
    np.testing.assert_array_equal(b, cpu.random(10))


def _warm_up_kernels():
    w = Philox(0, device="cuda")    # to('cuda') compiles every kernel: nothing compiles in capture
    w.random(5), w.random(5, dtype=np.float64), w.normal(5), w.normal(5, dtype=np.float64)
    w.integers(3, 5), w.raw(5)


@pytest.mark.gpu
def test_gpu_graph_replays_continue_the_stream():
    import cupy as cp
    _warm_up_kernels()
    n1, n2 = 1001, 4099                               # odd sizes: partial last blocks
    seed = 31337
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        g = Philox(seed, device="cuda")
        out1 = cp.empty(n1, dtype=cp.float32)
        out2 = cp.empty((n2,), dtype=cp.float64)
        stream.synchronize()
        stream.begin_capture()
        g.uniform(n1, -1.0, 1.0, out=out1)            # preallocated output
        z = g.normal(n2, dtype=np.float64, out=out2)
        k = g.integers(10, 333)                        # output allocated inside the capture
        graph = stream.end_capture()
        replays = []
        for _ in range(3):
            out1.fill(np.nan)
            out2.fill(np.nan)
            k.fill(-1)
            graph.launch(stream)
            stream.synchronize()
            replays.append((out1.get(), z.get(), k.get()))
        assert g.counter == 3 * (math.ceil(n1 / 4) + n2 + math.ceil(333 / 4))

    fresh = cp.cuda.Stream(non_blocking=True)
    cpu = Philox(seed)
    with fresh:
        e = Philox(seed, device="cuda")
        for a, b, kk in replays:
            assert not np.isnan(a).any() and not np.isnan(b).any() and (kk >= 0).all()
            ea = e.uniform(n1, -1.0, 1.0).get()
            eb = e.normal(n2, dtype=np.float64).get()
            ek = e.integers(10, 333).get()
            np.testing.assert_array_equal(_bits(a), _bits(ea))
            np.testing.assert_array_equal(_bits(b), _bits(eb))
            np.testing.assert_array_equal(kk, ek)
            np.testing.assert_array_equal(_bits(a), _bits(cpu.uniform(n1, -1.0, 1.0)))
            assert _normal_error(b, cpu.normal(n2, dtype=np.float64), 0.0)[0].max() <= \
                NORMAL_ULP_BOUND[np.dtype(np.float64)]
            np.testing.assert_array_equal(kk, cpu.integers(10, 333))
        fresh.synchronize()
    assert not np.array_equal(replays[0][0], replays[1][0])   # each replay draws new numbers

    # The kernels read the counter from device memory: rewinding it rewinds the graph.
    with stream:
        g.load_state_dict({"seed": seed, "counter": 0})
        out1.fill(np.nan)
        graph.launch(stream)
        stream.synchronize()
        np.testing.assert_array_equal(_bits(out1.get()), _bits(replays[0][0]))


def test_mark_and_rewind_repeat_the_draws():
    g = Philox(9)
    g.uniform(5)
    m = g.mark()
    a, b = g.random(7), g.normal(3)
    g.rewind(m)
    assert np.array_equal(g.random(7), a) and np.array_equal(g.normal(3), b)
    with pytest.raises(TypeError, match="mark"):
        g.rewind(3.5)


@pytest.mark.gpu
def test_gpu_mark_and_rewind_inside_a_captured_graph():
    """mark/rewind are device copies: captured in a graph, each replay draws the same masks
    twice, and the CPU twin agrees."""
    import cupy as cp
    g = Philox(9).to("cuda")
    out1 = cp.zeros(6, cp.float32)
    out2 = cp.zeros(6, cp.float32)
    stream = cp.cuda.Stream(non_blocking=False)
    with stream:
        m = g.mark()                      # warm allocations outside the capture
        g.rewind(m)
        stream.begin_capture()
        m = g.mark()
        g.random(6, out=out1)
        g.rewind(m)
        g.random(6, out=out2)
        graph = stream.end_capture()
        for _ in range(2):
            graph.launch()
        stream.synchronize()
    assert cp.array_equal(out1, out2)
    cpu = Philox(9)
    cpu.random(6)                         # the first replay's draw
    np.testing.assert_array_equal(cp.asnumpy(out1), cpu.random(6))   # the second replay's
    assert g.counter == cpu.counter
