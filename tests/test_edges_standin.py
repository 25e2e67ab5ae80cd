"""Every data set built from MNIST or Fashion-MNIST has a stand-in, so a dry run never needs
the files: with ``SCRATCHGAN_DATA`` at an empty folder, ``HOME`` in a temporary folder (no
user cache) and the network blocked, ``scratchgan train MODEL --dry-run`` trains on stand-ins."""
from __future__ import annotations

import socket
import urllib.request

import numpy as np
import pytest

from scratchgan import cli
from scratchgan.data.datasets import GENERATED, dataset_info
from scratchgan.data.idx import DataNotFoundError
from scratchgan.data.standin import load_or_standin, standin_generated, standin_source

FROM_IDX = ["stacked-mnist", "mnist32", "fashion-mnist32", "mnist-quadrants"]


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No data files anywhere, and any network use fails the test."""
    empty = tmp_path / "data"
    empty.mkdir()
    monkeypatch.setenv("SCRATCHGAN_DATA", str(empty))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_network(*args, **kwargs):
        raise AssertionError("a dry run touched the network")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    return tmp_path


def test_every_idx_based_generated_set_has_a_standin():
    have = {k for k in GENERATED if standin_source(k) in ("mnist", "fashion-mnist")}
    assert set(FROM_IDX) <= have


@pytest.mark.parametrize("name", FROM_IDX)
def test_load_or_standin_builds_generated_sets_from_standins(offline, name):
    with pytest.raises(DataNotFoundError):
        load_or_standin(name, download=False)
    x, y, note = load_or_standin(name, (-1.0, 1.0) if name != "mnist-quadrants" else (0, 1),
                                 limit=40, download=False, standin=True)
    assert x.shape == (40,) + tuple(dataset_info(name)["shape"]) and x.dtype == np.float32
    assert y.dtype == np.int64 and 0 <= y.min() and y.max() < dataset_info(name)["num_classes"]
    assert "stand-in" in note and "not the real" in note and "(no download)" in note
    again, _, _ = standin_generated(name, 40, data_range=(-1.0, 1.0)
                                    if name != "mnist-quadrants" else (0, 1))
    np.testing.assert_array_equal(again, x)


def test_standin_generated_refuses_other_sets():
    with pytest.raises(ValueError, match="no stand-in for the generated set 'dsprites'"):
        standin_generated("dsprites")


@pytest.mark.parametrize("argv", [["pggan"], ["cvae", "--dataset", "mnist-quadrants"],
                                  ["m2", "--dataset", "mnist"]],
                         ids=["pggan-mnist32", "cvae-mnist-quadrants", "m2-mnist"])
def test_dry_run_needs_no_files(offline, argv, capsys):
    out = offline / "run"
    rc = cli.main(["train", *argv, "--dry-run", "--no-progress", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "stand-in" in err and (out / "last.ckpt.npz").is_file()
    assert not any((offline / "data").iterdir())
