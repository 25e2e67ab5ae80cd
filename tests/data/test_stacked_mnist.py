"""The stacked-mnist, mnist32 and fashion-mnist32 data sets (scratchgan.data.stacked_mnist)."""
import numpy as np
import pytest

from scratchgan.data import stacked_mnist as SM
from scratchgan.data.datasets import DATASETS, dataset_info, load_dataset
from scratchgan.data.idx import load_mnist


def test_registered_with_shapes():
    for name in ("stacked-mnist", "mnist32", "fashion-mnist32"):
        assert name in DATASETS
    assert dataset_info("stacked-mnist")["shape"] == (3, 32, 32)
    assert dataset_info("stacked-mnist")["num_classes"] == 1000
    assert dataset_info("mnist32")["shape"] == (1, 32, 32)


def test_stack_digits_known_case():
    imgs = np.zeros((3, 28, 28), np.uint8)
    for i in range(3):
        imgs[i, i, i] = 255
    x, y = SM.stack_digits(imgs, np.array([4, 5, 6]), np.array([[2, 0, 1], [1, 1, 1]]))
    assert x.shape == (2, 3, 32, 32)
    assert list(y) == [645, 555]
    assert x[0, 0, 2 + 2, 2 + 2] == 255 and x[0, 1, 2, 2] == 255 and x[0, 2, 3, 3] == 255
    assert x[:, :, :2].max() == 0 and x[:, :, :, 30:].max() == 0      # padding is background


def test_stacked_mnist_is_deterministic_and_matches_sources(data_dir):
    a, ya = load_dataset("stacked-mnist", (0.0, 1.0), data_dir=data_dir, limit=50)
    b, yb = load_dataset("stacked-mnist", (0.0, 1.0), data_dir=data_dir, limit=50)
    assert np.array_equal(a, b) and np.array_equal(ya, yb)
    assert a.shape == (50, 3, 32, 32) and a.dtype == np.float32 and ya.dtype == np.int64
    imgs, labs = load_mnist("train", data_dir=data_dir)
    labs = labs.astype(np.int64)
    idx = SM.stacked_indices(len(imgs), 50, 0)
    for c in range(3):
        np.testing.assert_array_equal(a[:, c, 2:30, 2:30], imgs[idx[:, c]] / np.float32(255))
    assert np.array_equal(ya, 100 * labs[idx[:, 0]] + 10 * labs[idx[:, 1]] + labs[idx[:, 2]])
    c, _ = load_dataset("stacked-mnist", (0.0, 1.0), data_dir=data_dir, limit=50, seed=7)
    assert not np.array_equal(a, c)
    t, _ = load_dataset("stacked-mnist", (-1.0, 1.0), data_dir=data_dir, split="test", limit=5)
    assert t.min() == -1.0 and t.max() <= 1.0


@pytest.mark.parametrize("name,src", [("mnist32", "mnist"), ("fashion-mnist32", "fashion-mnist")])
def test_padded_sets(data_dir, name, src):
    if src == "fashion-mnist":
        import pathlib
        if not (pathlib.Path(data_dir) / "fashion-mnist").exists():
            pytest.skip("no Fashion-MNIST files")
    x, y = load_dataset(name, (-1.0, 1.0), data_dir=data_dir, limit=20)
    imgs, labs = load_mnist("train", dataset=src, data_dir=data_dir)
    assert x.shape == (20, 1, 32, 32)
    np.testing.assert_array_equal(x[:, 0, 2:30, 2:30], imgs[:20] / np.float32(127.5) - np.float32(1))
    assert np.all(x[:, :, :2] == -1.0) and np.array_equal(y, labs[:20])
    with pytest.raises(ValueError, match="split"):
        load_dataset(name, data_dir=data_dir, split="valid")


def test_padded_sets_have_stand_ins_for_dry_runs(tmp_path, monkeypatch):
    """Without files (a dry run), mnist32 and fashion-mnist32 are the stand-in images padded
    to 32x32, as the real sets are the IDX images padded."""
    monkeypatch.delenv("SCRATCHGAN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    from scratchgan.data.standin import load_or_standin, standin_images
    for name, base in (("mnist32", "mnist"), ("fashion-mnist32", "fashion-mnist")):
        x, y, note = load_or_standin(name, (-1.0, 1.0), data_dir=str(tmp_path), limit=32,
                                     download=False, standin=True)
        assert x.shape == (32, 1, 32, 32) and x.dtype == np.float32 and y.shape == (32,)
        assert note is not None and f"{base} files not found" in note
        x28, y28, _ = standin_images(base, 32, data_range=(-1.0, 1.0))
        np.testing.assert_array_equal(x[:, :, 2:30, 2:30], x28)
        np.testing.assert_array_equal(y, y28)
        assert (x[:, :, :2] == -1.0).all() and (x[:, :, :, 30:] == -1.0).all()
