"""The dSprites-like set: factor bookkeeping, determinism, and that the pictures follow their
factors (the centroid tracks the position, the pixel count tracks scale^2, orientation turns
the shape), the lazy view and the cache, the registry entry."""
import numpy as np
import pytest

from scratchgan.data import dataset_info, load_dataset
from scratchgan.data import dsprites as D

PX = D.IMAGE_SIZE


def render1(shape, scale, orient, px, py):
    return D.render_classes(np.array([[shape, scale, orient, px, py]]))[0]


def centroid(img):
    r, c = np.nonzero(img)
    return c.mean(), r.mean()


def test_factor_specification_and_index_round_trip():
    assert D.N_IMAGES == 737_280 == 3 * 6 * 40 * 32 * 32
    np.testing.assert_allclose(D.SCALES, np.linspace(0.5, 1.0, 6))
    assert D.ORIENTATIONS[0] == 0.0 and D.ORIENTATIONS[-1] < 2 * np.pi
    np.testing.assert_allclose(np.diff(D.ORIENTATIONS), 2 * np.pi / 40)
    assert D.POSITIONS[0] == 0.0 and D.POSITIONS[-1] == 1.0 and len(D.POSITIONS) == 32
    idx = np.random.default_rng(0).integers(0, D.N_IMAGES, 1000)
    c = D.factor_classes(idx)
    np.testing.assert_array_equal(D.index_of(c), idx)
    assert (c.max(axis=0) < np.array(D.FACTOR_SIZES)).all()
    np.testing.assert_array_equal(D.factor_classes([0, D.N_IMAGES - 1]),
                                  [[0, 0, 0, 0, 0], [2, 5, 39, 31, 31]])
    v = D.factor_values(idx)
    np.testing.assert_allclose(v[:, 1], D.SCALES[c[:, 1]])
    np.testing.assert_allclose(v[:, 2], D.ORIENTATIONS[c[:, 2]])
    with pytest.raises(IndexError, match="737280"):
        D.factor_classes([D.N_IMAGES])
    with pytest.raises(TypeError, match="integers"):
        D.render([0.5])


def test_deterministic_and_binary():
    idx = np.random.default_rng(1).integers(0, D.N_IMAGES, 64)
    a, b = D.render(idx), D.render(idx)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.uint8 and set(np.unique(a)) <= {0, 1}
    assert (a.reshape(64, -1).sum(axis=1) > 20).all()          # every sprite is visible
    # rendering one at a time gives the batch's pictures
    np.testing.assert_array_equal(np.stack([D.render([i])[0] for i in idx[:5]]), a[:5])


def test_centroid_tracks_position():
    rng = np.random.default_rng(2)
    for shape in range(3):
        orient = int(rng.integers(0, 40))
        py = int(rng.integers(0, 32))
        cx = np.array([centroid(render1(shape, 5, orient, p, py))[0] for p in range(32)])
        want = (D.MARGIN + D.SPAN * D.POSITIONS) * PX - 0.5     # pixel centres at c + 1/2
        assert np.abs(cx - want).max() < 0.35, (shape, np.abs(cx - want).max())
        cy = np.array([centroid(render1(shape, 5, orient, 7, p))[1] for p in range(32)])
        assert np.abs(cy - want).max() < 0.35, (shape, np.abs(cy - want).max())
        # and the step is the nominal 0.6 * 64 / 31 pixels
        assert abs(np.polyfit(np.arange(32), cx, 1)[0] - D.SPAN * PX / 31) < 0.01


def test_area_tracks_scale_squared():
    areas = {0: 4 * D.SQUARE_HALF ** 2, 1: np.pi * D.ELLIPSE_MINOR}
    for shape in range(3):
        counts = np.array([np.mean([render1(shape, s, o, 16, 16).sum() for o in (0, 7, 13, 22)])
                           for s in range(6)])
        ratio = counts / (D.SCALES ** 2)
        assert ratio.max() / ratio.min() < 1.08, (shape, counts)    # count ~ scale^2
        if shape in areas:                                          # and ~ the true area
            want = areas[shape] * (D.RADIUS * PX) ** 2
            np.testing.assert_allclose(ratio[3:], want, rtol=0.05)


def test_heart_constants_are_its_centroid_and_tip():
    g = np.linspace(-1.3, 1.3, 2601)
    x, y = np.meshgrid(g, g)
    inside = (x * x + y * y - 1) ** 3 - x * x * y ** 3 <= 0
    assert abs(y[inside].mean() - D.HEART_YC) < 1e-3
    assert abs(np.sqrt(x[inside] ** 2 + (y[inside] - D.HEART_YC) ** 2).max() - D.HEART_K) < 2e-3
    # rendered: lobes up at orientation 0 (more pixels in the band just above the centroid
    # than in the band as far below it, towards the tip), and down at orientation pi
    d = int(round(0.6 * D.RADIUS * PX))
    for orient, sign in ((0, 1), (20, -1)):
        im = render1(2, 5, orient, 16, 16)
        cy = int(round(centroid(im)[1]))
        above, below = int(im[cy - d:cy].sum()), int(im[cy + 1:cy + d + 1].sum())
        assert sign * (above - below) > 0.1 * (above + below) / 2, (orient, above, below)


def test_orientation_symmetries():
    # a square turned by 90 degrees (10 steps of 9) is the same square, up to edge pixels
    a, b = render1(0, 5, 3, 10, 20), render1(0, 5, 13, 10, 20)
    assert (a != b).sum() <= 0.05 * a.sum()
    # an ellipse at 0 is wide, at 90 degrees tall
    e0, e90 = render1(1, 5, 0, 16, 16), render1(1, 5, 10, 16, 16)
    width = lambda im: np.ptp(np.nonzero(im)[1]) + 1  # noqa: E731
    height = lambda im: np.ptp(np.nonzero(im)[0]) + 1  # noqa: E731
    assert width(e0) > 1.5 * height(e0) and height(e90) > 1.5 * width(e90)
    assert abs(width(e0) - 2 * D.RADIUS * PX) <= 2


def test_nothing_is_clipped():
    c = np.array([[s, 5, o, p, q] for s in range(3) for o in range(0, 40, 3)
                  for p in (0, 31) for q in (0, 31)])
    im = D.render_classes(c)
    border = np.concatenate([im[:, 0], im[:, -1], im[:, :, 0], im[:, :, -1]], axis=1)
    assert border.sum() == 0


def test_splits_lazy_view_and_registry():
    te = D.split_indices("test")
    tr = D.split_indices("train")
    assert len(te) == D.TEST_SIZE and len(tr) == D.N_IMAGES - D.TEST_SIZE
    assert len(np.intersect1d(te[:2000], tr)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([te, tr]))[:100], np.arange(100))
    np.testing.assert_array_equal(D.split_indices("test"), te)          # deterministic
    assert not np.array_equal(D.split_indices("test", seed=1), te)
    x, y = load_dataset("dsprites", limit=40)
    assert x.shape == (40, 1, 64, 64) and len(x) == 40 and x.nbytes == 40 * 4096 * 4
    np.testing.assert_array_equal(x.indices, tr[:40])
    np.testing.assert_array_equal(y, D.factor_classes(tr[:40])[:, 0])
    full, _ = load_dataset("dsprites")
    assert len(full) == 727_280 and full.nbytes > 10e9              # never materialised
    sl, arr = x[5:9], x[np.array([5, 6, 7, 8])]
    assert sl.dtype == np.float32 and sl.shape == (4, 1, 64, 64)
    np.testing.assert_array_equal(sl, arr)
    np.testing.assert_array_equal(x[6], arr[1])
    np.testing.assert_array_equal(np.asarray(x)[5:9], sl)
    assert x.astype(np.float64).dtype == np.float64 and x.astype(np.float32).shape == x.shape
    xs, _ = load_dataset("dsprites", data_range=(-1.0, 1.0), limit=4)
    assert set(np.unique(xs[:])) == {-1.0, 1.0}
    xt, _ = load_dataset("dsprites", split="test", limit=3)
    np.testing.assert_array_equal(xt.indices, te[:3])
    info = dataset_info("dsprites")
    assert info["shape"] == (1, 64, 64) and info["num_classes"] == 3
    with pytest.raises(ValueError, match="split"):
        load_dataset("dsprites", split="valid")


def test_cache_gives_the_same_images():
    src = D.DSpritesLike(cache=True)
    idx = np.array([5, 70_000, 5, 737_279])
    a = src.images(idx)
    assert src.cached == 3
    np.testing.assert_array_equal(a, D.render(idx))
    np.testing.assert_array_equal(src.images(idx[::-1]), a[::-1])
    assert src.cached == 3
    with pytest.raises(ValueError, match="cache=False"):
        D.DSpritesLike().fill_cache()


@pytest.mark.gpu
def test_gpu_render_matches_numpy():
    import cupy as cp
    idx = np.random.default_rng(3).integers(0, D.N_IMAGES, 512)
    a = D.render(idx)
    b = cp.asnumpy(D.render(idx, xp=cp))
    # the same float64 multiply-adds; a pixel centre on a boundary could round either way
    assert (a != b).sum() <= 5, (a != b).sum()
