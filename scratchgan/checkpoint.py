"""Checkpoints: nested dicts of arrays and scalars in one ``.npz`` file, written atomically.

Format: an uncompressed NumPy ``.npz`` whose members are the arrays (``a0``,
``a1``, ...) plus ``__structure__`` (a uint8 array holding UTF-8 JSON). The JSON
mirrors the nested state: dicts, lists, ``None``, bools, ints, floats and strings
are stored as they are; an array is ``{"__array__": "a3"}``; a dict with a non-str
key (or a key starting with ``__``) becomes ``{"__dict__": [[key, value], ...]}``;
a tuple is ``{"__tuple__": [...]}``. NumPy scalars become Python scalars (float32
and float64 values are exact in float64). Nothing is pickled; loading uses
``allow_pickle=False``.

Atomicity: the file is written to a temporary file in the same folder, flushed
and fsynced, and moved over the target with ``os.replace``. A crash at any point
leaves either the old checkpoint or the new one, never a torn file. A write that
fails (disk full, permission lost) removes its temporary file, leaves the previous
checkpoint as it was and raises :class:`CheckpointWriteError`, which says so and
how to resume. Checkpoints get the mode of any other file the run writes
(``0o666`` less the umask, usually ``0o644``). With
``keep_previous=True`` the checkpoint being replaced is kept as
``<name>.prev.npz`` (the last good one before it). A write killed mid-way leaves
a temporary ``<name>.XXXXXXXX.tmp``; :func:`remove_stale_temporaries` (called by
every save and at the start of training) deletes those of a checkpoint.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import secrets
import shutil
import string

import numpy as np

from .backend import is_gpu_array, to_numpy

__all__ = ["FORMAT", "CheckpointError", "NotACheckpointError", "previous_path",
           "remove_stale_temporaries", "save_checkpoint", "load_checkpoint", "load_latest_info",
           "load_latest"]

FORMAT = "scratchgan-checkpoint-v1"
_STRUCT_KEY = "__structure__"


class CheckpointError(ValueError):
    """An unreadable or malformed checkpoint file."""


class NotACheckpointError(CheckpointError):
    """A file that is no scratchgan checkpoint at all (not a torn or corrupted one)."""


class CheckpointWriteError(OSError):
    """A checkpoint write that failed part-way (disk full, permission lost): its temporary
    file was removed and the previous checkpoint, if any, is left as it was."""


__all__ = ["FORMAT", "CheckpointError", "NotACheckpointError", "CheckpointWriteError",
           "encode_state", "decode_state", "previous_path", "remove_stale_temporaries",
           "save_checkpoint", "load_checkpoint", "load_latest_info", "load_latest"]


_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")   # an .npz is a zip file (empty: end record)


def _encode(obj, arrays, where):
    if isinstance(obj, np.ndarray) or is_gpu_array(obj):
        a = to_numpy(obj)
        if a.dtype == object:
            raise TypeError(f"save_checkpoint: {where} is an object array; only numeric arrays "
                            "can be saved (no pickle)")
        key = f"a{len(arrays)}"
        arrays[key] = np.ascontiguousarray(a)
        return {"__array__": key}
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj)
    if isinstance(obj, dict):
        plain = all(isinstance(k, str) and not k.startswith("__") for k in obj)
        if plain:
            return {k: _encode(v, arrays, f"{where}.{k}") for k, v in obj.items()}
        pairs = []
        for k, v in obj.items():
            if not (k is None or isinstance(k, (bool, str, int, float, np.integer, np.floating))):
                raise TypeError(f"save_checkpoint: {where} has a key of type {type(k).__name__}")
            pairs.append([_encode(k, arrays, where), _encode(v, arrays, f"{where}[{k!r}]")])
        return {"__dict__": pairs}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]
    raise TypeError(f"save_checkpoint: {where} has unsupported type {type(obj).__name__}; "
                    "allowed: dict, list, tuple, arrays, int, float, bool, str, None")


def _decode(obj, arrays):
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    if isinstance(obj, dict):
        if "__array__" in obj and len(obj) == 1:
            return arrays[obj["__array__"]]
        if "__dict__" in obj and len(obj) == 1:
            return {_decode(k, arrays): _decode(v, arrays) for k, v in obj["__dict__"]}
        if "__tuple__" in obj and len(obj) == 1:
            return tuple(_decode(v, arrays) for v in obj["__tuple__"])
        return {k: _decode(v, arrays) for k, v in obj.items()}
    return obj


def encode_state(state: dict) -> tuple:
    """``(structure, arrays)``: the JSON-able structure of ``state`` (arrays replaced by
    ``{"__array__": "a<k>"}``, as in the file) and the ``{"a<k>": ndarray}`` it refers to."""
    arrays: dict = {}
    return _encode(state, arrays, "state"), arrays


def decode_state(structure, arrays: dict):
    """The inverse of :func:`encode_state`: the nested state, arrays taken from ``arrays``."""
    return _decode(structure, arrays)


_TMP_CHARS = string.ascii_letters + string.digits


def _create_temporary(path):
    """``(fd, name)`` of a new ``<name>.XXXXXXXX.tmp`` beside ``path``, created with mode
    ``0o666`` less the umask (so a checkpoint gets the mode of the run's other files)."""
    for _ in range(100):
        tmp = path.with_name(f"{path.name}.{''.join(secrets.choice(_TMP_CHARS) for _ in range(8))}"
                             ".tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                           0o666), str(tmp)
        except FileExistsError:
            continue
    raise FileExistsError(f"save_checkpoint: no free temporary name beside {path}")


def _fsync_dir(d):
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def previous_path(path) -> pathlib.Path:
    """Where ``save_checkpoint(keep_previous=True)`` keeps the replaced checkpoint."""
    p = pathlib.Path(path)
    name = p.name[:-4] if p.name.endswith(".npz") else p.name
    return p.with_name(name + ".prev.npz")


def remove_stale_temporaries(path) -> list:
    """Delete the temporaries ``<name>.XXXXXXXX.tmp`` (of ``path`` and of its ``.prev.npz``)
    that a write killed mid-way left in the folder; returns the paths removed."""
    path = pathlib.Path(path)
    if not path.parent.is_dir():
        return []
    pats = [re.compile(re.escape(n) + r"\.[A-Za-z0-9_]{8}\.tmp") for n in
            (path.name, previous_path(path).name)]
    removed = []
    for f in path.parent.iterdir():
        if any(p.fullmatch(f.name) for p in pats) and f.is_file():
            try:
                f.unlink()
                removed.append(f)
            except OSError:
                pass
    return removed


def save_checkpoint(path, state: dict, keep_previous: bool = False) -> pathlib.Path:
    """Write ``state`` (nested dict) to ``path`` atomically; returns the path."""
    if not isinstance(state, dict):
        raise TypeError(f"save_checkpoint: state must be a dict, got {type(state).__name__}")
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    arrays: dict = {}
    structure = {"format": FORMAT, "state": _encode(state, arrays, "state")}
    blob = json.dumps(structure).encode("utf-8")
    arrays[_STRUCT_KEY] = np.frombuffer(blob, dtype=np.uint8)
    tmp = None
    try:
        fd, tmp = _create_temporary(path)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        if keep_previous and path.exists():
            prev = previous_path(path)
            fd2, tmp_prev = _create_temporary(prev)
            os.close(fd2)
            os.unlink(tmp_prev)
            try:
                try:
                    os.link(path, tmp_prev)
                except OSError:  # no hard links on this file system: copy
                    shutil.copyfile(path, tmp_prev)
                os.replace(tmp_prev, prev)
            finally:
                if os.path.exists(tmp_prev):
                    os.unlink(tmp_prev)
        os.replace(tmp, path)
    except OSError as e:
        if isinstance(e, CheckpointWriteError):
            raise
        kept = (f"the previous checkpoint {path} is left as it was; once the cause is fixed, "
                f"continue the run from it with 'scratchgan train MODEL --resume --out "
                f"{path.parent}'") if path.exists() else (
                f"no previous checkpoint exists at {path}, so the run cannot be resumed yet")
        err = CheckpointWriteError(f"could not write checkpoint {path} ({type(e).__name__}: "
                                   f"{e.strerror or e}); the partial file was removed and {kept}")
        err.errno = e.errno
        raise err from e
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    _fsync_dir(path.parent)
    return path


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (arrays come back as NumPy)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    with open(path, "rb") as f:
        head = f.read(4)
    if head not in _ZIP_MAGIC:
        raise NotACheckpointError(f"{path}: not a scratchgan checkpoint (not an .npz file)")
    try:
        with np.load(path, allow_pickle=False) as z:
            if _STRUCT_KEY not in z.files:
                raise NotACheckpointError(f"{path}: not a scratchgan checkpoint (an .npz file "
                                          f"without {_STRUCT_KEY})")
            arrays = {k: z[k] for k in z.files}
        structure = json.loads(arrays.pop(_STRUCT_KEY).tobytes().decode("utf-8"))
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(e).__name__}: {e}); it is "
                              "truncated or corrupted") from e
    if not isinstance(structure, dict) or structure.get("format") != FORMAT:
        structure = structure if isinstance(structure, dict) else {}
        raise NotACheckpointError(f"{path}: unknown checkpoint format "
                                  f"{structure.get('format')!r}, expected {FORMAT!r}")
    try:        # a damaged member name leaves a reference to an array the file lacks
        return _decode(structure["state"], arrays)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: unreadable checkpoint (a reference in its structure "
                              f"does not resolve: {type(e).__name__}: {e}); it is truncated or "
                              "corrupted") from e


def load_latest_info(path) -> tuple:
    """Like :func:`load_latest`, and say why: returns ``(state, path_used, reason)`` where
    ``reason`` is None when ``path`` itself was read, else why its ``.prev.npz`` was used
    (``path`` missing, truncated or corrupted). A file that is no checkpoint at all
    (:class:`NotACheckpointError`) is raised, with no fallback."""
    path = pathlib.Path(path)
    errors = []
    for p in (path, previous_path(path)):
        try:
            state = load_checkpoint(p)
        except NotACheckpointError:
            if p == path:
                raise
            errors.append(f"{p}: not a scratchgan checkpoint")
        except (FileNotFoundError, CheckpointError) as e:
            errors.append(str(e))
        else:
            return state, p, (errors[0] if errors else None)
    raise FileNotFoundError("no usable checkpoint: " + "; ".join(errors))


def load_latest(path) -> tuple:
    """Load ``path``, falling back to its ``.prev.npz``; returns ``(state, path_used)``.
    :func:`load_latest_info` also says why the fallback was used."""
    state, used, _ = load_latest_info(path)
    return state, used
