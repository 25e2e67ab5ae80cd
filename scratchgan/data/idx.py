"""MNIST and Fashion-MNIST from their original IDX gzip files.

IDX layout (after gunzip): a big-endian uint32 magic ``0x0000TTDD`` where ``TT``
is the element type (0x08 = uint8) and ``DD`` the number of dimensions, then one
big-endian uint32 per dimension, then the values in C order.

Where the files are looked for, in this order (the first folder holding the file wins):

1. ``data_dir`` (the CLI's ``--data-dir``),
2. ``$SCRATCHGAN_DATA``,
3. the per-user cache: ``$XDG_CACHE_HOME/scratchgan`` or ``~/.cache/scratchgan``.

Each holds ``mnist/`` and ``fashion-mnist/`` with the four files of the original
release. When a file is in none of them and ``download=True``, it is fetched from
the official mirrors (each within a time limit, 120 s by default or
``$SCRATCHGAN_DOWNLOAD_TIMEOUT``; a progress bar on stderr when it is a terminal)
into the system temporary folder, checked against the published md5, and only
then copied into the cache, whose folders are created at that moment, and renamed
into place (atomically): a failed download leaves nothing behind. When the files
cannot be found, :class:`DataNotFoundError` lists every folder searched and every
URL tried. Nothing is downloaded at import time.
"""
from __future__ import annotations

import gzip
import hashlib
import math
import os
import pathlib
import shutil
import struct
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib

import numpy as np

__all__ = ["DATASET_NAMES", "SPLITS", "FILES", "MIRRORS", "IDXError", "DataNotFoundError",
           "cache_dir", "search_dirs", "find_file", "md5sum", "parse_idx", "read_idx",
           "write_idx", "DOWNLOAD_TIMEOUT", "STALL_TIMEOUT", "TIMEOUT_ENV", "DownloadTimeout",
           "download_timeout", "download_file", "load_mnist"]

DATASET_NAMES = ("mnist", "fashion-mnist")
SPLITS = ("train", "test")

# file name -> published md5 (see shared/data/README.md)
FILES = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}

MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}

_IDX_DTYPES = {
    0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
_DTYPE_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_DTYPES.items()}


class IDXError(ValueError):
    """A data file that is truncated, corrupted or not the expected IDX file."""


class DataNotFoundError(FileNotFoundError):
    """The data files are not on disk and could not be downloaded."""


def _split_files(split: str):
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid choices are {SPLITS}")
    prefix = "train" if split == "train" else "t10k"
    return f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"


def cache_dir() -> pathlib.Path:
    """The per-user download cache: ``$XDG_CACHE_HOME/scratchgan`` or ``~/.cache/scratchgan``."""
    base = os.environ.get("XDG_CACHE_HOME")
    base = pathlib.Path(base) if base else pathlib.Path.home() / ".cache"
    return base / "scratchgan"


def search_dirs(data_dir=None):
    """The folders searched, in order, as ``(how it was given, path)`` pairs."""
    out = []
    if data_dir is not None:
        out.append(("data_dir / --data-dir", pathlib.Path(data_dir).expanduser()))
    env = os.environ.get("SCRATCHGAN_DATA")
    if env:
        out.append(("$SCRATCHGAN_DATA", pathlib.Path(env).expanduser()))
    out.append(("user cache", cache_dir()))
    return out


def find_file(dataset: str, filename: str, data_dir=None):
    """Path of ``<dir>/<dataset>/<filename>`` in the first search folder that has it, or None."""
    for _, d in search_dirs(data_dir):
        p = d / dataset / filename
        if p.is_file():
            return p
    return None


def md5sum(path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- IDX I/O
def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode uncompressed IDX bytes into an array (native byte order, read-only)."""
    if len(raw) < 4:
        raise IDXError(f"{name}: too short to be an IDX file ({len(raw)} bytes after gunzip)")
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or code not in _IDX_DTYPES or ndim == 0:
        raise IDXError(f"{name}: bad IDX magic 0x{raw[:4].hex()} (expected 0x000008DD with DD the "
                       "number of dimensions, e.g. 0x00000803 for images, 0x00000801 for labels); "
                       "the file is corrupted or is not an IDX file")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXError(f"{name}: truncated IDX header ({len(raw)} bytes, need {header})")
    dims = struct.unpack(">" + "I" * ndim, raw[4:header])
    dtype = _IDX_DTYPES[code]
    expected = math.prod(dims) * dtype.itemsize      # exact: an int64 product can wrap to 0
    got = len(raw) - header
    if got != expected:
        raise IDXError(f"{name}: size mismatch: the header says shape {dims} of {dtype.name} "
                       f"({expected} data bytes) but the file holds {got} data bytes; "
                       "the file is truncated or corrupted")
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    if dtype.byteorder == ">" and dtype.itemsize > 1:
        arr = arr.astype(dtype.newbyteorder("="))
        arr.flags.writeable = False
    return arr


def read_idx(path, expected_magic=None) -> np.ndarray:
    """Read a (gzipped) IDX file. ``expected_magic`` (e.g. 2051 images, 2049 labels) is checked."""
    path = pathlib.Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        raise IDXError(f"{path}: cannot be decompressed ({type(e).__name__}: {e}); the file is "
                       "truncated or corrupted: delete it and download it again") from e
    if expected_magic is not None and len(raw) >= 4:
        magic = struct.unpack(">I", raw[:4])[0]
        if magic != expected_magic:
            raise IDXError(f"{path}: wrong IDX magic {magic} (0x{magic:08x}), expected "
                           f"{expected_magic} (0x{expected_magic:08x}); the file is corrupted or "
                           "is not the expected images/labels file")
    return parse_idx(raw, str(path))


def write_idx(path, array) -> None:
    """Write ``array`` as an IDX file (gzip-compressed when ``path`` ends in .gz)."""
    a = np.asarray(array)
    code = _DTYPE_CODES.get(a.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"write_idx: dtype {a.dtype} has no IDX type code")
    raw = struct.pack(">HBB", 0, code, a.ndim) + struct.pack(">" + "I" * a.ndim, *a.shape)
    raw += np.ascontiguousarray(a).astype(_IDX_DTYPES[code]).tobytes()
    path = pathlib.Path(path)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)


# --------------------------------------------------------------------------- download
DOWNLOAD_TIMEOUT = 120.0  # seconds, overall, for one file from one mirror
STALL_TIMEOUT = 30.0      # seconds without a byte that abort an attempt (never above the limit)
TIMEOUT_ENV = "SCRATCHGAN_DOWNLOAD_TIMEOUT"


class DownloadTimeout(TimeoutError):
    """One download attempt ran past its time limit."""


def download_timeout(timeout=None) -> float:
    """The time limit in seconds for one file from one mirror.

    ``timeout`` if given, else ``$SCRATCHGAN_DOWNLOAD_TIMEOUT``, else
    :data:`DOWNLOAD_TIMEOUT` (120 s).
    """
    source = "timeout"
    if timeout is None:
        env = os.environ.get(TIMEOUT_ENV, "").strip()
        timeout, source = (env, f"${TIMEOUT_ENV}") if env else (DOWNLOAD_TIMEOUT, "timeout")
    try:
        t = float(timeout)
    except (TypeError, ValueError):
        raise ValueError(f"{source} must be a number of seconds, got {timeout!r}") from None
    if not (t > 0 and math.isfinite(t)):
        raise ValueError(f"{source} must be a positive finite number of seconds, got {timeout!r}")
    return t


def _response_socket(r):
    """The socket under an ``http.client`` response, or None (used only to shorten waits)."""
    return getattr(getattr(getattr(r, "fp", None), "raw", None), "_sock", None)


def _fetch(url: str, dest: pathlib.Path, timeout: float = DOWNLOAD_TIMEOUT) -> None:
    """Stream ``url`` into ``dest`` within ``timeout`` seconds overall (no verification here).

    No single wait on the network lasts longer than ``min(STALL_TIMEOUT, time left)``;
    past the limit the attempt stops with :class:`DownloadTimeout`. The progress bar
    (tqdm) goes to stderr and is shown only when stderr is a terminal.
    """
    from tqdm import tqdm
    start = time.monotonic()
    deadline = start + timeout
    done, total = 0, None

    def expired(waited=None):
        now = time.monotonic()
        if now >= deadline - 1e-3:
            size = f"{done} of {total} bytes" if total else f"{done} bytes"
            return DownloadTimeout(f"time limit of {timeout:g} s reached after "
                                   f"{now - start:.1f} s ({size})")
        if waited is not None:
            return DownloadTimeout(f"no {'data' if done else 'answer'} within {waited:g} s "
                                   f"(time limit {timeout:g} s)")
        return None

    def wait():
        e = expired()
        if e is not None:
            raise e
        return min(STALL_TIMEOUT, deadline - time.monotonic())

    req = urllib.request.Request(url, headers={"User-Agent": "scratchgan"})
    w = wait()
    try:
        r = urllib.request.urlopen(req, timeout=w)
    except (TimeoutError, urllib.error.URLError) as e:
        if isinstance(e, TimeoutError) or isinstance(getattr(e, "reason", None), TimeoutError):
            raise expired(w) from e
        raise
    with r, open(dest, "wb") as f:
        total = int(r.headers.get("Content-Length") or 0) or None
        sock = _response_socket(r)
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                  desc=url.rsplit("/", 1)[-1], leave=False, disable=None) as bar:
            while True:
                w = wait()
                if sock is not None:
                    try:
                        sock.settimeout(w)
                    except OSError:
                        pass
                try:
                    block = r.read1(1 << 16) if hasattr(r, "read1") else r.read(1 << 16)
                except TimeoutError as e:
                    raise expired(w) from e
                if not block:
                    break
                f.write(block)
                done += len(block)
                bar.update(len(block))
        if total is not None and done != total:
            raise OSError(f"incomplete download: {done} of {total} bytes")
        f.flush()
        os.fsync(f.fileno())


def _describe(e: BaseException) -> str:
    """One line for a failed attempt; time-outs say so plainly."""
    if isinstance(e, DownloadTimeout):
        return f"timed out: {e}"
    return f"{type(e).__name__}: {e}"


def _install(src: pathlib.Path, dest: pathlib.Path) -> None:
    """Copy a verified download to ``dest`` atomically, creating its folders only now.

    Folders created here are removed again if the copy fails, so a failure leaves
    nothing behind.
    """
    missing, d = [], dest.parent
    while not d.exists():
        missing.append(d)
        d = d.parent
    created = []
    part = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        for m in reversed(missing):
            m.mkdir()
            created.append(m)
        try:
            shutil.copyfile(src, part)
            with open(part, "rb") as f:
                os.fsync(f.fileno())
            os.replace(part, dest)
        finally:
            if part.exists():
                part.unlink()
    except BaseException:
        for m in reversed(created):
            try:
                m.rmdir()
            except OSError:
                pass
        raise


def _download(dataset: str, filename: str, root=None, timeout=None):
    """``(path, errors)``: the installed file and ``[]``, or ``None`` and one line per URL tried.

    Each mirror is tried in turn, within the time limit (:func:`download_timeout`).
    The file is fetched into the system temporary folder, checked against its md5,
    and only then copied into ``<root or cache>/<dataset>/`` (folders created at
    that moment, the file renamed into place atomically).
    """
    limit = download_timeout(timeout)
    md5 = FILES[dataset][filename]
    dest = (pathlib.Path(root) if root is not None else cache_dir()) / dataset / filename
    errors = []
    for base in MIRRORS[dataset]:
        url = base + filename
        print(f"scratchgan: downloading {url} (time limit {limit:g} s)", file=sys.stderr,
              flush=True)
        try:
            fd, tmp = tempfile.mkstemp(prefix=f"scratchgan-{filename}.", suffix=".part")
        except OSError as e:
            errors.append(f"{url}: not tried: cannot create a temporary file in "
                          f"{tempfile.gettempdir()}: {type(e).__name__}: {e}")
            break
        os.close(fd)
        tmp = pathlib.Path(tmp)
        try:
            try:
                _fetch(url, tmp, timeout=limit)
                got = md5sum(tmp)
                if got != md5:
                    raise IDXError(f"md5 mismatch: got {got}, expected {md5}")
            except Exception as e:  # try the next mirror
                errors.append(f"{url}: {_describe(e)}")
                continue
            try:
                _install(tmp, dest)
            except OSError as e:  # not the mirror's fault: stop here
                errors.append(f"{url}: downloaded and verified, but cannot write {dest}: "
                              f"{type(e).__name__}: {e}")
                break
            return dest, errors
        finally:
            tmp.unlink(missing_ok=True)
    return None, errors


def download_file(dataset: str, filename: str, root=None, timeout=None,
                  data_dir=None) -> pathlib.Path:
    """Download one file into ``<root or cache>/<dataset>/``, md5-checked, written atomically.

    Tries each mirror in turn, each within ``timeout`` seconds (default
    ``$SCRATCHGAN_DOWNLOAD_TIMEOUT`` or 120); raises :class:`DataNotFoundError`
    listing the folders searched (``data_dir`` included) and every URL tried when
    none works. Nothing is created on disk unless a download succeeds.
    """
    path, errors = _download(dataset, filename, root, timeout)
    if path is None:
        raise DataNotFoundError(_missing_message(dataset, [filename], data_dir, errors,
                                                 timeout=download_timeout(timeout), root=root))
    return path


def _folder_note(d: pathlib.Path, dataset: str) -> str:
    if (d / dataset).is_dir():
        return ""
    if d.is_dir() and any((d / n).is_file() for n in FILES[dataset]):
        return (f" (does not exist; the files are directly in {d}: give its parent folder, "
                f"{d.parent}, which must hold {dataset}/)")
    return " (does not exist)"


def _missing_message(dataset, filenames, data_dir, errors=(), timeout=None, root=None):
    """Why the files are missing: every folder searched, every URL tried, how to fix it."""
    target = (pathlib.Path(root) if root is not None else cache_dir()) / dataset
    lines = [f"{dataset} data not found: {', '.join(filenames)}.",
             f"Folders searched, in this order (each for {dataset}/<file>):"]
    lines += [f"  - {how}: {d / dataset}{_folder_note(d, dataset)}"
              for how, d in search_dirs(data_dir)]
    if errors:
        lines.append(f"Download into {'the user cache ' if root is None else ''}({target}) "
                     "failed; URLs tried:")
        lines += [f"  - {e}" for e in errors]
    else:
        lines.append("No download was tried (dry runs and download=False never download).")
    lines.append(f"To fix: put the original IDX gzip files ({', '.join(FILES[dataset])}) into "
                 f"DIR/{dataset}/ and pass --data-dir DIR or set SCRATCHGAN_DATA=DIR; they are at")
    lines += [f"  - {base}<file>" for base in MIRRORS[dataset]]
    if errors:
        limit = timeout or DOWNLOAD_TIMEOUT
        lines.append(f"or try again with network access (time limit {limit:g} s per file and "
                     f"URL; set ${TIMEOUT_ENV} to change it).")
    else:
        lines.append("or run 'scratchgan train' without --dry-run, with network access, to "
                     "download them into the user cache.")
    return "\n".join(lines)


# --------------------------------------------------------------------------- public loader
_CACHE: dict = {}


def _load_checked(path: pathlib.Path, dataset: str, filename: str, magic: int, check_md5: bool):
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, check_md5)
    if key in _CACHE:
        return _CACHE[key]
    if check_md5:
        got, want = md5sum(path), FILES[dataset][filename]
        if got != want:
            raise IDXError(f"{path}: md5 mismatch (got {got}, expected {want} for the original "
                           f"{dataset} {filename}); the file is corrupted or not the official "
                           "release: delete it and download it again")
    arr = read_idx(path, expected_magic=magic)
    arr.flags.writeable = False
    _CACHE.clear()  # keep at most one data set's pair in memory
    _CACHE[key] = arr
    return arr


def load_mnist(split: str = "train", dataset: str = "mnist", data_dir=None, download: bool = True,
               check_md5: bool = True, timeout=None):
    """``(images uint8 (N, 28, 28), labels uint8 (N,))`` of MNIST or Fashion-MNIST.

    The arrays are read-only (they may be shared with an in-memory cache); copy
    them to modify. ``check_md5`` compares each file with the published md5.
    ``timeout``: the download time limit per file and mirror in seconds (default
    ``$SCRATCHGAN_DOWNLOAD_TIMEOUT`` or 120). A failure raises
    :class:`DataNotFoundError` naming every folder searched and every URL tried.
    """
    if dataset not in DATASET_NAMES:
        raise ValueError(f"unknown IDX data set {dataset!r}; valid choices are {DATASET_NAMES}")
    img_name, lab_name = _split_files(split)
    paths = {n: find_file(dataset, n, data_dir) for n in (img_name, lab_name)}
    missing = [n for n, p in paths.items() if p is None]
    if missing:
        if not download:
            raise DataNotFoundError(_missing_message(dataset, missing, data_dir))
        limit = download_timeout(timeout)
        for i, n in enumerate(missing):
            paths[n], errors = _download(dataset, n, timeout=limit)
            if paths[n] is None:  # the other files would fail the same way: stop here
                raise DataNotFoundError(_missing_message(dataset, missing[i:], data_dir, errors,
                                                         timeout=limit))
    images = _load_checked(paths[img_name], dataset, img_name, 2051, check_md5)
    # _CACHE holds one entry; keep the images while loading the labels
    labels = read_idx(paths[lab_name], expected_magic=2049)
    if check_md5:
        got, want = md5sum(paths[lab_name]), FILES[dataset][lab_name]
        if got != want:
            raise IDXError(f"{paths[lab_name]}: md5 mismatch (got {got}, expected {want} for the "
                           f"original {dataset} {lab_name}); the file is corrupted or not the "
                           "official release: delete it and download it again")
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise IDXError(f"{paths[img_name]}: expected uint8 images of shape (N, 28, 28), got "
                       f"{images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise IDXError(f"{paths[lab_name]}: expected {images.shape[0]} labels (one per image in "
                       f"{paths[img_name].name}), got shape {labels.shape}")
    return images, labels
