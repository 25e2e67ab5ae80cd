"""Checkpoint writes: a write that fails part-way keeps the previous checkpoint, removes its
temporary file and says how to resume; checkpoints get the same mode as the run's other
files (0o666 less the umask)."""
from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from scratchgan import checkpoint as ck
from scratchgan.cli import main


def _state(v):
    return {"w": np.full(3, v, np.float32), "step": int(v)}


def _fail_midway(monkeypatch, err):
    real = np.savez

    def savez(f, **arrays):
        f.write(b"PK\x03\x04 half a checkpoint")    # some bytes reach the file, then...
        raise OSError(err, os.strerror(err))
    monkeypatch.setattr(np, "savez", savez)
    return real


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EACCES])
def test_failed_write_keeps_previous_and_says_how_to_resume(tmp_path, monkeypatch, err):
    path = tmp_path / "run" / "last.ckpt.npz"
    ck.save_checkpoint(path, _state(1), keep_previous=True)
    ck.save_checkpoint(path, _state(2), keep_previous=True)
    _fail_midway(monkeypatch, err)
    with pytest.raises(ck.CheckpointWriteError) as info:
        ck.save_checkpoint(path, _state(3), keep_previous=True)
    msg = str(info.value)
    assert os.strerror(err) in msg and str(path) in msg
    assert "left as it was" in msg and "--resume --out" in msg and str(path.parent) in msg
    assert info.value.errno == err and isinstance(info.value, OSError)
    monkeypatch.undo()
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt.npz",
                                                              "last.ckpt.prev.npz"]
    assert ck.load_checkpoint(path)["step"] == 2
    assert ck.load_checkpoint(ck.previous_path(path))["step"] == 1


def test_failed_first_write_says_there_is_nothing_to_resume(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt.npz"
    _fail_midway(monkeypatch, errno.ENOSPC)
    with pytest.raises(ck.CheckpointWriteError, match="no previous checkpoint"):
        ck.save_checkpoint(path, _state(1))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_checkpoint_mode_follows_umask_like_other_run_files(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = ck.save_checkpoint(tmp_path / "last.ckpt.npz", _state(1), keep_previous=True)
        ck.save_checkpoint(path, _state(2), keep_previous=True)
        other = tmp_path / "config.json"
        other.write_text("{}")
    finally:
        os.umask(old)
    want = 0o666 & ~umask
    assert other.stat().st_mode & 0o777 == want
    assert path.stat().st_mode & 0o777 == want
    assert ck.previous_path(path).stat().st_mode & 0o777 == want


def test_failed_copy_of_the_previous_checkpoint_leaves_no_temporary(tmp_path, monkeypatch):
    """Without hard links the replaced checkpoint is copied to .prev.npz; a copy that fails
    part-way is cleaned up too."""
    import shutil
    path = tmp_path / "last.ckpt.npz"
    ck.save_checkpoint(path, _state(1), keep_previous=True)

    def no_link(src, dst):
        raise OSError(errno.EPERM, "no hard links here")

    def copy_half(src, dst):
        with open(dst, "wb") as f:
            f.write(b"PK\x03\x04")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "link", no_link)
    monkeypatch.setattr(shutil, "copyfile", copy_half)
    with pytest.raises(ck.CheckpointWriteError, match="left as it was"):
        ck.save_checkpoint(path, _state(2), keep_previous=True)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt.npz"]
    assert ck.load_checkpoint(path)["step"] == 1


def test_cli_reports_a_failed_checkpoint_write_in_one_message(tmp_path, monkeypatch, capsys):
    """``scratchgan train`` turns a failed checkpoint write into its message (exit 1), not a
    traceback."""
    _fail_midway(monkeypatch, errno.ENOSPC)
    rc = main(["train", "gan", "--dry-run", "--no-progress", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 1
    assert "scratchgan train: error:" in err and os.strerror(errno.ENOSPC) in err
    assert "Traceback" not in err
