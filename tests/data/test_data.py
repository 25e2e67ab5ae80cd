"""Data: IDX reading and its errors, lookup order, download fallbacks, stand-in images, toy
samplers, batching (the not-found messages and download limits: test_data_messages.py)."""
import gzip
import hashlib
import struct
import time

import numpy as np
import pytest

from scratchgan.data import (DATASETS, IMAGE_DATASETS, STANDIN_DATASETS, TOY_DATASETS,
                             BatchIterator, DataNotFoundError, IDXError, dataset_info,
                             load_dataset, load_mnist, load_or_standin, read_idx, sample_toy,
                             scale_images, standin_images, standin_mnist, toy_modes, toy_std,
                             write_idx)
from scratchgan.data import idx as idxmod


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No $SCRATCHGAN_DATA, a cache inside tmp_path, and a downloader that must not be called."""
    monkeypatch.delenv("SCRATCHGAN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    def no_network(url, dest, timeout=None):
        raise OSError(f"network disabled in tests ({url})")

    monkeypatch.setattr(idxmod, "_fetch", no_network)
    return tmp_path


def make_fake_mnist(root, n=12, dataset="mnist", split="train", seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    d = root / dataset
    d.mkdir(parents=True, exist_ok=True)
    prefix = "train" if split == "train" else "t10k"
    write_idx(d / f"{prefix}-images-idx3-ubyte.gz", images)
    write_idx(d / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return images, labels


# ------------------------------------------------------------------------------------ IDX
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, dtype):
    a = (np.arange(2 * 3 * 5) - 7).reshape(2, 3, 5).astype(dtype)
    p = tmp_path / "a.idx.gz"
    write_idx(p, a)
    b = read_idx(p)
    assert b.dtype == np.dtype(dtype) and b.shape == a.shape
    np.testing.assert_array_equal(a, b)


def test_idx_header_is_the_mnist_layout(tmp_path):
    a = np.zeros((3, 28, 28), np.uint8)
    p = tmp_path / "x.gz"
    write_idx(p, a)
    raw = gzip.open(p).read()
    assert struct.unpack(">IIII", raw[:16]) == (2051, 3, 28, 28)
    write_idx(p, np.zeros(4, np.uint8))
    assert struct.unpack(">II", gzip.open(p).read()[:8]) == (2049, 4)


def test_truncated_gzip_names_file(tmp_path):
    p = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(p, np.ones((50, 28, 28), np.uint8))
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(IDXError, match="train-images-idx3-ubyte.gz.*(decompress|truncated)"):
        read_idx(p)


def test_not_gzip_names_file(tmp_path):
    p = tmp_path / "bad.gz"
    p.write_bytes(b"this is not gzip data at all")
    with pytest.raises(IDXError, match="bad.gz"):
        read_idx(p)


def test_size_mismatch_vs_header(tmp_path):
    raw = struct.pack(">IIII", 2051, 10, 28, 28) + bytes(9 * 28 * 28)  # one image short
    p = tmp_path / "short.gz"
    with gzip.open(p, "wb") as f:
        f.write(raw)
    with pytest.raises(IDXError, match=r"short.gz: size mismatch.*\(10, 28, 28\)"):
        read_idx(p)


def test_wrong_magic(tmp_path):
    p = tmp_path / "labels.gz"
    write_idx(p, np.zeros(5, np.uint8))  # a label file (2049)
    with pytest.raises(IDXError, match="labels.gz: wrong IDX magic 2049.*2051"):
        read_idx(p, expected_magic=2051)
    q = tmp_path / "garbage.gz"
    with gzip.open(q, "wb") as f:
        f.write(b"\x12\x34\x56\x78" + bytes(20))
    with pytest.raises(IDXError, match="garbage.gz: bad IDX magic"):
        read_idx(q)


# ------------------------------------------------------------------------------ lookup
def test_lookup_order_and_md5_errors(isolated, monkeypatch):
    explicit, env, cache = isolated / "explicit", isolated / "env", isolated / "xdg" / "scratchgan"
    img_e, _ = make_fake_mnist(explicit, n=3, seed=1)
    img_v, _ = make_fake_mnist(env, n=4, seed=2)
    img_c, lab_c = make_fake_mnist(cache, n=5, seed=3)
    # cache only
    x, y = load_mnist("train", data_dir=None, check_md5=False)
    np.testing.assert_array_equal(x, img_c)
    np.testing.assert_array_equal(y, lab_c)
    # $SCRATCHGAN_DATA beats the cache
    monkeypatch.setenv("SCRATCHGAN_DATA", str(env))
    np.testing.assert_array_equal(load_mnist("train", check_md5=False)[0], img_v)
    # an explicit data_dir beats both
    np.testing.assert_array_equal(load_mnist("train", data_dir=explicit, check_md5=False)[0], img_e)
    # these small files are not the official release: the md5 check names the file
    with pytest.raises(IDXError, match=r"explicit/mnist/train-images-idx3-ubyte.gz: md5 mismatch"):
        load_mnist("train", data_dir=explicit)


def test_missing_files_offline_error_lists_the_three_places(isolated):
    with pytest.raises(DataNotFoundError) as e:
        load_mnist("test", dataset="fashion-mnist", data_dir=isolated / "nowhere")
    msg = str(e.value)
    assert "t10k-images-idx3-ubyte.gz" in msg and "t10k-labels-idx1-ubyte.gz" in msg
    assert "--data-dir" in msg and "SCRATCHGAN_DATA" in msg and "user cache" in msg
    assert str(isolated / "nowhere" / "fashion-mnist") in msg  # the folder the user gave
    assert str(isolated / "xdg" / "scratchgan" / "fashion-mnist") in msg
    assert "download=True" not in msg
    assert not (isolated / "xdg").exists()  # a failed download leaves no empty folder
    assert "network disabled" in msg  # every mirror was tried and its error reported
    assert "fashion-mnist.s3-website" in msg and "raw.githubusercontent.com" in msg
    with pytest.raises(DataNotFoundError, match="train-images"):
        load_mnist("train", data_dir=isolated / "nowhere", download=False)


def test_download_verifies_md5_and_writes_atomically(isolated, monkeypatch):
    payload = b"fake contents"
    filename = "t10k-labels-idx1-ubyte.gz"

    def fetch(url, dest, timeout=None):
        dest.write_bytes(payload)

    monkeypatch.setattr(idxmod, "_fetch", fetch)
    # wrong md5 for both mirrors -> error, nothing left in the cache
    with pytest.raises(DataNotFoundError, match="md5 mismatch"):
        idxmod.download_file("mnist", filename)
    cache = isolated / "xdg" / "scratchgan" / "mnist"
    assert not (isolated / "xdg").exists()  # no folder until a download succeeds
    monkeypatch.setitem(idxmod.FILES["mnist"], filename, hashlib.md5(payload).hexdigest())
    p = idxmod.download_file("mnist", filename)
    assert p == cache / filename and p.read_bytes() == payload
    assert [q.name for q in cache.iterdir()] == [filename]


def test_no_download_at_import():
    import subprocess
    import sys
    code = ("import urllib.request as u\n"
            "def boom(*a, **k): raise SystemExit('network used at import')\n"
            "u.urlopen = boom\n"
            "import scratchgan, scratchgan.data, scratchgan.cli, scratchgan.train, scratchgan.viz\n")
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------- real MNIST
def test_real_mnist(data_dir):
    x, y = load_mnist("train", data_dir=data_dir)
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8 and y.dtype == np.uint8
    assert list(y[:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert list(np.bincount(y)) == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    xt, yt = load_mnist("test", data_dir=data_dir)
    assert xt.shape == (10000, 28, 28) and list(yt[:10]) == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert x.max() == 255 and x.min() == 0


def test_real_fashion_mnist(data_dir):
    _, y = load_mnist("test", dataset="fashion-mnist", data_dir=data_dir)
    assert list(np.bincount(y)) == [1000] * 10


def test_load_dataset_images(data_dir):
    x, y = load_dataset("mnist", (-1.0, 1.0), data_dir=data_dir, split="test", limit=50)
    assert x.shape == (50, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() == -1.0 and x.max() == 1.0
    xf, _ = load_dataset("mnist", (0.0, 1.0), data_dir=data_dir, split="test", limit=50, flat=True)
    assert xf.shape == (50, 784) and 0.0 <= xf.min() and xf.max() == 1.0
    np.testing.assert_allclose(xf, (x.reshape(50, -1) + 1) / 2, atol=1e-6)


def test_load_dataset_errors():
    with pytest.raises(ValueError, match="unknown data set 'cifar'.*mnist, fashion-mnist.*ring8"):
        load_dataset("cifar")
    with pytest.raises(ValueError, match="split"):
        load_dataset("ring8", split="valid")
    assert set(TOY_DATASETS) < set(DATASETS) and "mnist" in DATASETS


def test_scale_images():
    a = np.array([0, 127, 255], np.uint8)
    np.testing.assert_allclose(scale_images(a, (0, 1)), [0, 127 / 255, 1])
    np.testing.assert_allclose(scale_images(a, (-1, 1)), [-1, 127 / 127.5 - 1, 1], atol=1e-7)
    assert scale_images(a).dtype == np.float32
    with pytest.raises(TypeError, match="uint8"):
        scale_images(a.astype(np.float32))
    with pytest.raises(ValueError, match="data_range"):
        scale_images(a, (0, 255))


# ---------------------------------------------------------------------------- stand-in
def test_standin_covers_every_image_data_set():
    assert set(STANDIN_DATASETS) == set(IMAGE_DATASETS) == {"mnist", "fashion-mnist"}


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize("data_range", [(0.0, 1.0), (-1.0, 1.0)])
def test_standin_images_look_like_the_real_loader(name, data_range):
    x, y, info = standin_images(name, 256, data_range=data_range)
    assert x.shape == (256, 1, 28, 28) and x.dtype == np.float32 and x.flags.c_contiguous
    assert y.shape == (256,) and y.dtype == np.int64
    lo, hi = data_range
    assert x.min() == lo and x.max() == hi
    # the real loader's scaling of uint8 pixels: exactly 256 possible values
    u8 = np.rint((x - lo) / (hi - lo) * 255)
    np.testing.assert_allclose(scale_images(u8.astype(np.uint8), data_range), x, atol=1e-6)
    # labels 0..9, balanced: each block of ten rows holds every class once
    assert (np.sort(y[:250].reshape(25, 10), axis=1) == np.arange(10)).all()
    assert sorted(np.bincount(y, minlength=10)) == [25] * 4 + [26] * 6
    assert info["standin"] is True and "stand-in" in info["note"] and name in info["note"]
    for k, v in dataset_info(name).items():
        assert info[k] == v
    assert info["num_classes"] == 10 and info["shape"] == (1, 28, 28)
    xf, _, _ = standin_images(name, 256, data_range=data_range, flat=True)
    np.testing.assert_array_equal(xf, x.reshape(256, 784))


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_standin_uint8_like_load_mnist(name):
    images, labels = standin_mnist("train", name, n=30)
    assert images.shape == (30, 28, 28) and images.dtype == np.uint8 and labels.dtype == np.uint8
    assert labels.max() <= 9 and images.max() == 255 and images.min() == 0
    # every picture has ink, and a background: not blank, not noise
    ink = (images > 127).mean(axis=(1, 2))
    assert (ink > 0.04).all() and (ink < 0.7).all()
    assert (images[:, 0, :] < 64).mean() > 0.7  # mostly dark top rows


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_standin_is_deterministic_and_prefix_stable(name):
    a, ya, _ = standin_images(name, 100, seed=3)
    b, yb, _ = standin_images(name, 100, seed=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ya, yb)
    c, yc, _ = standin_images(name, 37, seed=3)  # like limit: the first rows do not change
    np.testing.assert_array_equal(c, a[:37])
    np.testing.assert_array_equal(yc, ya[:37])
    assert not np.array_equal(standin_images(name, 100, seed=4)[0], a)
    assert not np.array_equal(standin_images(name, 100, seed=3, split="test")[0], a)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_standin_classes_differ_more_than_examples_within_a_class(name):
    x, y, _ = standin_images(name, 400)
    means = np.stack([x[y == k].reshape(-1, 784).mean(0) for k in range(10)])
    nearest = ((x.reshape(-1, 1, 784) - means[None]) ** 2).sum(-1).argmin(1)
    assert (nearest == y).mean() > 0.8  # class structure even a nearest-mean classifier finds


def test_standin_is_cheap():
    for name in STANDIN_DATASETS:
        best = min(_timed(lambda: standin_images(name, 256)) for _ in range(3))
        assert best < 0.5, f"{name}: {best:.2f} s for 256 stand-in images"


def _timed(f):
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def test_standin_errors():
    with pytest.raises(ValueError, match="no stand-in for data set 'ring8'.*mnist, fashion-mnist"):
        standin_images("ring8", 4)
    with pytest.raises(ValueError, match="n must be a positive int"):
        standin_images("mnist", 0)
    with pytest.raises(ValueError, match="split"):
        standin_images("mnist", 4, split="valid")


def test_load_or_standin(isolated):
    nowhere = isolated / "nowhere"
    x, y, note = load_or_standin("mnist", (-1.0, 1.0), data_dir=nowhere, limit=40,
                                 download=False, standin=True)
    assert x.shape == (40, 1, 28, 28) and x.min() == -1.0 and y.dtype == np.int64
    np.testing.assert_array_equal(x, standin_images("mnist", 40, data_range=(-1.0, 1.0))[0])
    assert "stand-in" in note and str(nowhere / "mnist") in note and "not the real mnist" in note
    assert "--data-dir" in note and "(no download)" in note
    # the default size when there is no limit: a dry run's 256
    assert len(load_or_standin("fashion-mnist", data_dir=nowhere, download=False,
                               standin=True)[0]) == 256
    # without standin, and for toy data, nothing changes
    with pytest.raises(DataNotFoundError, match="mnist data not found"):
        load_or_standin("mnist", data_dir=nowhere, download=False)
    xt, _, note = load_or_standin("ring8", limit=5, standin=True)
    assert note is None and xt.shape == (5, 2)
    # a corrupted file is an error, not a reason to use stand-in data
    make_fake_mnist(isolated / "bad", n=3)
    with pytest.raises(IDXError, match="md5 mismatch"):
        load_or_standin("mnist", data_dir=isolated / "bad", download=False, standin=True)
    assert not (isolated / "xdg").exists()


# --------------------------------------------------------------------------------- toy
@pytest.mark.parametrize("name", ["ring8", "grid25", "mixture10"])
def test_toy_mixtures_modes(name):
    rng = np.random.default_rng(0)
    x, k = sample_toy(name, 20000, rng, return_labels=True)
    modes = toy_modes(name)
    K = len(modes)
    assert x.shape == (20000, 2) and x.dtype == np.float32
    assert np.bincount(k, minlength=K).min() > 20000 / K * 0.8  # every mode is used
    for j in range(K):
        pts = x[k == j].astype(np.float64)
        np.testing.assert_allclose(pts.mean(0), modes[j], atol=5 * toy_std(name) / np.sqrt(len(pts)))
    # each point is nearest to its own mode (well-separated mixtures)
    d = ((x[:, None, :] - modes[None]) ** 2).sum(-1)
    assert (d.argmin(1) == k).mean() > (0.999 if name != "mixture10" else 0.9)


def test_toy_settings():
    np.testing.assert_allclose(np.linalg.norm(toy_modes("ring8"), axis=1), 2.0)
    assert toy_std("ring8") == 0.02 and toy_std("grid25") == 0.05
    assert sorted(set(toy_modes("grid25").ravel())) == [-4, -2, 0, 2, 4]
    np.testing.assert_allclose(np.linalg.norm(toy_modes("mixture10"), axis=1), 1.4)
    # mixture10: std 0.5 along the radius, 0.05 across it (component 0 lies on the x-axis)
    x = sample_toy("mixture10", 4000, np.random.default_rng(1), labels=np.zeros(4000, int))
    np.testing.assert_allclose(x.std(0), [0.5, 0.05], rtol=0.05)
    np.testing.assert_allclose(x.mean(0), [1.4, 0.0], atol=0.03)
    x = sample_toy("gaussian1d", 20000, np.random.default_rng(2))
    assert x.shape == (20000, 1)
    np.testing.assert_allclose([x.mean(), x.std()], [4.0, 0.5], atol=0.02)
    with pytest.raises(ValueError, match="swissroll"):
        toy_modes("swissroll")
    with pytest.raises(ValueError, match="valid choices"):
        sample_toy("moons", 3, np.random.default_rng(0))


def test_swissroll():
    x, k = sample_toy("swissroll", 5000, np.random.default_rng(0), return_labels=True)
    r = np.linalg.norm(x, axis=1)
    # u = (U + k)/10 and r = 3 sqrt(u): label k covers radii 3 sqrt(k/10) .. 3 sqrt((k+1)/10)
    assert (r >= 3 * np.sqrt(k / 10) - 1e-5).all() and (r <= 3 * np.sqrt((k + 1) / 10) + 1e-5).all()
    ang = np.arctan2(x[:, 1], x[:, 0]) % (2 * np.pi)
    expect = (4 * np.pi * r / 3) % (2 * np.pi)  # angle = 4 pi sqrt(u) = 4 pi r / 3
    dd = np.abs(ang - expect)
    assert np.minimum(dd, 2 * np.pi - dd).max() < 1e-3


def test_toy_label_conditioned_and_determinism():
    lab = np.array([0, 3, 3, 7])
    x, k = sample_toy("ring8", 4, np.random.default_rng(0), labels=lab, return_labels=True)
    np.testing.assert_array_equal(k, lab)
    np.testing.assert_allclose(x, toy_modes("ring8")[lab], atol=0.15)
    a = load_dataset("grid25", limit=100)[0]
    b = load_dataset("grid25", limit=100)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, load_dataset("grid25", split="test", limit=100)[0])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 8\)"):
        sample_toy("ring8", 1, labels=[8])


# ----------------------------------------------------------------------------- batches
def test_batch_iterator_epochs_and_determinism():
    x = np.arange(10)[:, None].astype(np.float32)
    y = np.arange(10)
    it = BatchIterator(x, y, batch_size=3, rng=5)
    assert len(it) == 3
    epoch = list(it)
    assert len(epoch) == 3 and all(len(b[0]) == 3 for b in epoch)
    seen = np.concatenate([b[1] for b in epoch])
    assert len(set(seen)) == 9
    for xb, yb in epoch:
        np.testing.assert_array_equal(xb[:, 0], yb)  # rows stay paired
    second = list(it)
    assert it.epoch == 1 and not np.array_equal(seen, np.concatenate([b[1] for b in second]))
    again = [b[1] for b in BatchIterator(x, y, batch_size=3, rng=5)]
    np.testing.assert_array_equal(np.concatenate(again), seen)
    it2 = BatchIterator(x, y, batch_size=3, rng=5, drop_last=False)
    assert len(it2) == 4 and sorted(np.concatenate([b[1] for b in it2])) == list(range(10))
    flat = BatchIterator(x, None, batch_size=4, shuffle=False, drop_last=False)
    assert [list(b[0][:, 0]) for b in flat] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_batch_iterator_resume():
    x = np.arange(50)
    a = BatchIterator(x, batch_size=7, rng=1)
    for _ in range(11):  # into the second epoch
        a.next_batch()
    sd = a.state_dict()
    rest = [a.next_batch()[0] for _ in range(20)]
    b = BatchIterator(x, batch_size=7, rng=99)
    b.load_state_dict(sd)
    np.testing.assert_array_equal(np.concatenate([b.next_batch()[0] for _ in range(20)]),
                                  np.concatenate(rest))


def test_batch_iterator_errors():
    with pytest.raises(ValueError, match="batch_size"):
        BatchIterator(np.zeros(4), batch_size=0)
    with pytest.raises(ValueError, match="larger than the data set"):
        BatchIterator(np.zeros(4), batch_size=5)
    with pytest.raises(ValueError, match="y has 3"):
        BatchIterator(np.zeros(4), np.zeros(3), batch_size=2)


def test_generated_registry(monkeypatch):
    """A generated set registered by dotted path is listed, described and loaded through the
    one entry point, with split/limit/seed passed on."""
    import sys
    import types
    from scratchgan.data import datasets as ds

    class Spec:
        @staticmethod
        def info():
            return {"shape": (3, 4, 4), "num_classes": 2, "kind": "image"}

        @staticmethod
        def load(split, data_range, data_dir, limit, seed, download):
            n = limit or 5
            return np.full((n, 3, 4, 4), data_range[1], np.float32), np.arange(n) % 2

    mod = types.ModuleType("_sg_fake_generated")
    mod.SPEC = Spec
    monkeypatch.setitem(sys.modules, "_sg_fake_generated", mod)
    monkeypatch.setitem(ds.GENERATED, "fake", "_sg_fake_generated:SPEC")
    monkeypatch.setattr(ds, "DATASETS", ds.DATASETS + ("fake",))
    assert ds.dataset_info("fake")["shape"] == (3, 4, 4)
    x, y = ds.load_dataset("fake", data_range=(-1.0, 1.0), limit=3)
    assert x.shape == (3, 3, 4, 4) and float(x.max()) == 1.0 and list(y) == [0, 1, 0]
