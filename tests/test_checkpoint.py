"""Checkpoints: round trip of nested state, no pickle, atomic replacement."""
import os
import zipfile

import numpy as np
import pytest

from scratchgan import checkpoint as ck
from scratchgan.checkpoint import (CheckpointError, load_checkpoint, load_latest, previous_path,
                                   save_checkpoint)


def nested_state():
    g = np.random.default_rng(3)
    return {
        "model": {"networks": {"G": {"0.weight": g.standard_normal((3, 4)).astype(np.float32),
                                     "0.bias": np.zeros(3, np.float64)},
                               "D": {"bn.running_var": np.ones(5, np.float32)}},
                  "optimizers": {"G": {"lr": 2e-4, "betas": [0.5, 0.999], "t": 7,
                                       "m": [g.standard_normal(4), g.standard_normal((2, 2))]}},
                  "step": 12},
        "rng": g.bit_generator.state,                  # big ints
        "flags": [True, None, "text", 1.5, float("inf")],
        "int_keys": {0: "a", 3: np.int64(9)},
        "shape": (1, 28, 28),
        "scalar32": np.float32(0.1),
        "labels": np.arange(5, dtype=np.uint8),
        "empty": np.zeros((0, 3)),
        "__dunder": 1,
    }


def assert_same(a, b, where="state"):
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), where
        assert a.dtype == b.dtype and a.shape == b.shape, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), (where, set(a), set(b))
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b)):
            assert_same(u, v, f"{where}[{i}]")
    else:
        assert a == b and type(b) in (type(a), float, int, bool), (where, a, b)


def test_round_trip(tmp_path):
    s = nested_state()
    p = save_checkpoint(tmp_path / "c.npz", s)
    out = load_checkpoint(p)
    assert_same(s, out)
    assert isinstance(out["scalar32"], float) and out["scalar32"] == float(np.float32(0.1))
    # a restored bit-generator state reproduces the stream
    g, g2 = np.random.default_rng(0), np.random.default_rng(1)
    g.bit_generator.state = out["rng"]
    g2.bit_generator.state = s["rng"]
    np.testing.assert_array_equal(g.random(3), g2.random(3))


def test_no_pickle_inside(tmp_path):
    p = save_checkpoint(tmp_path / "c.npz", nested_state())
    with np.load(p, allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
    assert zipfile.is_zipfile(p)
    with pytest.raises(TypeError, match="object array"):
        save_checkpoint(tmp_path / "o.npz", {"x": np.array([{}], dtype=object)})
    with pytest.raises(TypeError, match=r"state.f has unsupported type"):
        save_checkpoint(tmp_path / "o.npz", {"f": lambda: 0})


def test_crash_mid_write_keeps_old_checkpoint(tmp_path, monkeypatch):
    p = tmp_path / "last.ckpt.npz"
    save_checkpoint(p, {"step": 1, "w": np.ones(3)})

    def crash(src, dst):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(ck.os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        save_checkpoint(p, {"step": 2, "w": np.zeros(3)}, keep_previous=True)
    monkeypatch.undo()
    out = load_checkpoint(p)
    assert out["step"] == 1 and (out["w"] == 1).all()
    assert sorted(os.listdir(tmp_path)) == ["last.ckpt.npz"]  # no temporary files left behind


def test_torn_file_is_detected_and_previous_is_kept(tmp_path):
    p = tmp_path / "last.ckpt.npz"
    save_checkpoint(p, {"step": 1}, keep_previous=True)
    save_checkpoint(p, {"step": 2}, keep_previous=True)
    assert load_checkpoint(previous_path(p))["step"] == 1
    save_checkpoint(p, {"step": 3}, keep_previous=True)
    assert load_checkpoint(previous_path(p))["step"] == 2 and load_checkpoint(p)["step"] == 3
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])  # a torn write by some other tool
    with pytest.raises(CheckpointError, match="last.ckpt.npz"):
        load_checkpoint(p)
    state, used = load_latest(p)
    assert state["step"] == 2 and used == previous_path(p)


def test_not_a_checkpoint(tmp_path):
    q = tmp_path / "plain.npz"
    np.savez(q, a=np.ones(2))
    with pytest.raises(CheckpointError, match="not a scratchgan checkpoint"):
        load_checkpoint(q)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.npz")


def test_stale_temporaries_are_removed_by_the_next_save(tmp_path):
    p = tmp_path / "last.ckpt.npz"
    stale = [tmp_path / "last.ckpt.npz.ab_cd123.tmp", tmp_path / "last.ckpt.prev.npz.zz99yy88.tmp"]
    keep = [tmp_path / "other.npz.abcd1234.tmp", tmp_path / "notes.tmp",
            tmp_path / "last.ckpt.npz.tmp"]
    for f in stale + keep:
        f.write_bytes(b"half a checkpoint")
    save_checkpoint(p, {"step": 1}, keep_previous=True)
    assert sorted(os.listdir(tmp_path)) == sorted(["last.ckpt.npz"] + [f.name for f in keep])
    assert ck.remove_stale_temporaries(p) == []


def test_gitignore_matches_checkpoint_temporaries():
    import pathlib
    import shutil
    import subprocess
    repo = pathlib.Path(__file__).resolve().parents[1]
    if shutil.which("git") is None or not (repo / ".git").exists():
        pytest.skip("no git checkout")
    for name in ("runs/x/last.ckpt.npz.ab_cd123.tmp", "runs2/last.ckpt.prev.npz.zz99yy88.tmp"):
        r = subprocess.run(["git", "check-ignore", "-q", "--no-index", name], cwd=repo)
        assert r.returncode == 0, f".gitignore does not match {name}"


def test_a_file_that_is_no_checkpoint_has_no_fallback(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# not a checkpoint\n")
    with pytest.raises(ck.NotACheckpointError, match="README.md: not a scratchgan checkpoint"):
        load_latest(readme)
    q = tmp_path / "plain.npz"
    np.savez(q, a=np.ones(2))
    with pytest.raises(ck.NotACheckpointError, match="not a scratchgan checkpoint"):
        load_latest(q)


def test_load_latest_info_says_why_the_previous_was_used(tmp_path):
    p = tmp_path / "last.ckpt.npz"
    save_checkpoint(p, {"step": 1}, keep_previous=True)
    save_checkpoint(p, {"step": 2}, keep_previous=True)
    state, used, why = ck.load_latest_info(p)
    assert state["step"] == 2 and used == p and why is None
    p.write_bytes(p.read_bytes()[:100])
    state, used, why = ck.load_latest_info(p)
    assert state["step"] == 1 and used == previous_path(p)
    assert "last.ckpt.npz" in why and "truncated or corrupted" in why
    p.unlink()
    state, used, why = ck.load_latest_info(p)
    assert state["step"] == 1 and "not found" in why
