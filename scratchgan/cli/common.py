"""What the subcommands share: argument types, the models' names, ``--set`` value parsing,
the help formatter, and the checks of arguments made before anything is written (devices,
checkpoints, data and output folders, picture files). Every such error is an argument error:
``parser.error``, exit status 2 (``USER_ERROR``)."""
from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import math
import os
import pathlib
import sys
import warnings

import numpy as np

from ..backend import check_device as _backend_check_device, cupy_available
from ..checkpoint import CheckpointError, NotACheckpointError
from ..data.toy import TOY_DATASETS, toy_modes
from ..runs import load_model, resolve_checkpoint

__all__ = ["MODEL_NAMES", "LOOP_KEYS", "NONE_DEFAULT_TYPES", "USER_ERROR", "RUN_FAILED",
           "INTERRUPTED", "EPILOG", "PICTURE_SUFFIXES", "HelpFormatter", "positive_int", "nonneg_int",
           "positive_float", "key_value", "parse_hyper", "plain", "check_device",
           "source_checkout", "gpu_install_hint", "check_data_dir", "check_writable_dir", "check_output_file",
           "plain_notes", "FloatErrors", "load_checkpoint_model", "checkpoint_file",
           "toy_data_modes"]

#: the models' CLI names, one a line, as in ``scratchgan.models.REGISTRY`` (the parser's
#: choices; a test checks the two agree)
MODEL_NAMES = (
    "gan",
    "dcgan",
    "cgan",
    "infogan",
    "wgan",
    "wgan-gp",
    "vae",
    "aae",
    "cvae",
    "m2",
    "betavae",
    "bigan",
    "ali",
    "vaegan",
    "pix2pix",
    "cyclegan",
    "pggan",
)
LOOP_KEYS = ("batch_size", "epochs", "steps", "dataset")
#: exit status of a command whose arguments cannot be carried out (argparse's, for every
#: argument error: bad values, unusable run folders, checkpoints, data or output folders)
USER_ERROR = 2
#: exit status of a run that failed once started (data that cannot be found or downloaded,
#: a non-finite loss)
RUN_FAILED = 1
#: exit status after Ctrl-C (a checkpoint is written; the message gives the resume command)
INTERRUPTED = 130
#: what ``--help`` says about the exit status, for every command
EPILOG = (f"exit status: 0 done; {USER_ERROR} a user error (an argument that cannot be carried "
          f"out: a bad value, an unusable run folder, checkpoint, data or output folder; "
          f"reported before anything is written); {RUN_FAILED} a run that failed once started "
          f"(data that cannot be found or downloaded, a non-finite loss); {INTERRUPTED} "
          f"interrupted by Ctrl-C (the checkpoint is written and the resume command printed)")
#: the picture files the tools and ``train`` write (Matplotlib's formats, raster and vector)
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".svg")
#: the type a hyperparameter whose default is None takes (besides none), where the
#: model class has no ``hyper_types`` entry for it
NONE_DEFAULT_TYPES = {"z_dim": int, "lr": float, "optimizer": str}


# ------------------------------------------------------------------------------ help
class HelpFormatter(argparse.HelpFormatter):
    """Help that shows each option's default: an option whose help text does not already say
    its default gets ``(default: VALUE)`` (flags and options without a default are left as
    written; their help says what happens without them)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text or any(action.default is v for v in (None, False))
                or action.default == argparse.SUPPRESS
                or not action.option_strings or action.nargs == 0):
            return text
        value = " ".join(map(str, action.default)) if isinstance(action.default, (list, tuple)) \
            else "%(default)s"
        return f"{text} (default: {value})"


# ----------------------------------------------------------------------- argument types
def positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer (> 0), got {v}")
    return v


def nonneg_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
    return v


def positive_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return v


def key_value(text):
    """KEY=VALUE -> (KEY, VALUE text); the value is parsed later against the model's
    defaults (:func:`parse_hyper`)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    return k.strip(), v


_KIND_WORDS = {bool: "true or false (or 1 / 0)", int: "an integer", float: "a finite number",
               str: "a string"}


def _parse_as(kind, text):
    t = text.strip()
    if kind is bool:
        if t.lower() in ("true", "1"):
            return True
        if t.lower() in ("false", "0"):
            return False
        raise ValueError
    if kind is int:
        return int(t)
    if kind is float:
        v = float(t)
        if not math.isfinite(v):
            raise ValueError
        return v
    return text


def _kind_of(value):
    for kind in (bool, int, float):
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return kind
    if isinstance(value, (np.floating,)):
        return float
    if isinstance(value, (np.integer,)):
        return int
    return str


def parse_hyper(cls, key, text):
    """Parse the ``--set KEY=VALUE`` text against the type of ``cls.defaults[KEY]``; a
    ValueError says what was typed and what was expected."""
    default = cls.defaults[key]

    def fail(expected):
        raise ValueError(f"--set {key}={text}: expected {expected} for {key} (default "
                         f"{default!r}), got {text!r}")

    if default is None:
        if text.strip().lower() in ("none", "null"):
            return None
        kind = cls.hyper_types.get(key) or NONE_DEFAULT_TYPES.get(key)
        if kind is None:       # undocumented: a number if it reads as one, else the text
            for k in (int, float):
                try:
                    return _parse_as(k, text)
                except ValueError:
                    pass
            if text.strip().lower() in ("nan", "inf", "-inf", "+inf", "infinity"):
                fail("a finite number, a string or none")
            return text
        try:
            return _parse_as(kind, text)
        except ValueError:
            fail(f"{_KIND_WORDS.get(kind, kind.__name__)} or none")
    if isinstance(default, (tuple, list)):
        t = text.strip()
        if len(t) >= 2 and t[0] + t[-1] in ("()", "[]"):
            t = t[1:-1]
        parts = [v for v in t.split(",")] if t.strip() else []
        if parts and not parts[-1].strip():    # a trailing comma: (0.5,)
            parts = parts[:-1]
        example = ",".join(str(v) for v in default)
        if default and len(parts) != len(default):
            fail(f"{len(default)} comma-separated values like {example}")
        kinds = [_kind_of(v) for v in default] or [float] * len(parts)
        try:
            vals = [_parse_as(k, v) for k, v in zip(kinds, parts)]
        except ValueError:
            fail(f"{len(default)} comma-separated "
                 f"{'numbers' if all(k in (int, float) for k in kinds) else 'values'} like "
                 f"{example}")
        return type(default)(vals)
    kind = _kind_of(default)
    try:
        return _parse_as(kind, text)
    except ValueError:
        fail(_KIND_WORDS[kind])


def plain(v):
    """A value as it reads back from JSON (tuples -> lists), for comparisons."""
    if isinstance(v, (tuple, list)):
        return [plain(u) for u in v]
    if isinstance(v, dict):
        return {k: plain(u) for k, u in v.items()}
    return v


# ------------------------------------------------------------------ argument errors
def source_checkout():
    """The source checkout this package runs from (an editable install), or None (a wheel)."""
    checkout = pathlib.Path(__file__).resolve().parents[2]
    if (checkout / "setup.cfg").is_file() and (checkout / "kernels").is_dir():
        return checkout
    return None


def gpu_install_hint():
    """How to add CuPy to this installation: ``pip install -e '.[gpu]'`` in a source checkout
    (an editable install), else the CuPy package the ``gpu`` extra names (a wheel install)."""
    checkout = source_checkout()
    if checkout is not None:
        return f"pip install -e '.[gpu]' in {checkout}"
    try:
        reqs = importlib.metadata.requires("scratchgan") or []
    except importlib.metadata.PackageNotFoundError:
        reqs = []
    cupy = next((r.split(";")[0].strip() for r in reqs if "extra" in r and "gpu" in r), None)
    return (f"pip install {cupy or 'cupy-cuda13x'} (or the CuPy build that matches your CUDA "
            "version)")


def check_device(parser, device):
    """``device`` checked by :func:`scratchgan.backend.check_device`; a bad one is an argument
    error naming the option (for 'cuda' without a usable GPU: how to install CuPy here)."""
    if device == "cuda" and not cupy_available():
        parser.error("--device: device 'cuda' was asked for but no CUDA GPU is usable (CuPy is "
                     f"not installed or sees no device); use --device cpu, or {gpu_install_hint()}")
    try:
        return _backend_check_device(device)
    except ValueError as e:
        parser.error(f"--device: {e}")


def check_data_dir(parser, data_dir):
    """A ``--data-dir`` that is given must be an existing folder (an argument error
    otherwise); returns it as an absolute path, or None."""
    if data_dir is None:
        return None
    p = pathlib.Path(data_dir).expanduser()
    if not p.is_dir():
        parser.error(f"--data-dir {data_dir}: {'not a folder' if p.exists() else 'no such folder'}"
                     "; give the folder that holds mnist/ and fashion-mnist/ (or leave "
                     "--data-dir out: $SCRATCHGAN_DATA, then ~/.cache/scratchgan are searched)")
    return str(p.resolve())


def _blocked(path):
    """Why ``path`` (a folder to be created or written into) cannot be written, or None."""
    p = pathlib.Path(path).expanduser().absolute()
    q = p
    while not q.exists():          # the nearest existing folder above it is where we create
        if q.parent == q:
            break
        q = q.parent
    if not q.is_dir():
        return f"{q} is a file, not a folder"
    if not os.access(q, os.W_OK | os.X_OK):
        return f"{q} is not writable" if q == p else f"cannot create it in {q} (not writable)"
    return None


def check_writable_dir(parser, path, option):
    """An argument error (one line, nothing written) when the folder ``path`` can neither be
    written into nor created."""
    why = _blocked(path)
    if why:
        parser.error(f"{option} {path}: {why}; give a folder you can write to")


def check_output_file(parser, path, option="--out", suffixes=PICTURE_SUFFIXES):
    """A picture file to be written: its suffix must be one of ``suffixes`` and its folder
    writable; an argument error otherwise."""
    p = pathlib.Path(path)
    if p.suffix.lower() not in suffixes:
        parser.error(f"{option} {path}: unsupported file type {p.suffix or '(none)'!r}; give a "
                     f"file ending in {', '.join(suffixes)}")
    if p.is_dir():
        parser.error(f"{option} {path}: is a folder; give a file name such as {p / 'out.png'}")
    why = _blocked(p.parent)
    if why:
        parser.error(f"{option} {path}: {why}; give a file in a folder you can write to")
    return p


@contextlib.contextmanager
def plain_notes(prog):
    """Notices the library gives as ``UserWarning`` (e.g. that stand-in images replace missing
    files) printed as one plain line each on stderr, ``PROG: note: ...``, without a source
    line; other warnings are shown as usual."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            yield
        finally:
            for w in caught:
                if issubclass(w.category, UserWarning) and not issubclass(
                        w.category, (DeprecationWarning, PendingDeprecationWarning)):
                    print(f"{prog}: note: {w.message}", file=sys.stderr)
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


class FloatErrors:
    """NumPy floating-point errors (overflow, invalid value, division by zero, underflow is
    ignored) counted instead of printed as ``RuntimeWarning`` lines, within ``with``; the
    run reports them in its own words (:meth:`summary`)."""

    def __init__(self):
        self.counts = {}
        self._state = None

    def _record(self, kind, flag):
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def __enter__(self):
        self._state = np.errstate(over="call", invalid="call", divide="call", under="ignore",
                                  call=self._record)
        self._state.__enter__()
        return self

    def __exit__(self, *exc):
        self._state.__exit__(*exc)
        return False

    def summary(self):
        """``"overflow (3 times), invalid value (1 time)"``, or "" when there were none."""
        return ", ".join(f"{k} ({n} time{'s' if n != 1 else ''})"
                         for k, n in sorted(self.counts.items()))


def load_checkpoint_model(parser, ckpt, device, registry):
    """:func:`scratchgan.runs.load_model` for the checkpoint tools, with the models of
    ``registry()``: a file that is no checkpoint, or none usable, is an argument error (exit 2)
    saying what a checkpoint is."""
    try:
        return load_model(ckpt, device, registry=registry())
    except NotACheckpointError as e:
        parser.error(f"{e}; a checkpoint is a run folder written by 'scratchgan train' or "
                     "the last.ckpt.npz in it")
    except (FileNotFoundError, CheckpointError) as e:
        parser.error(f"{e} (give a run folder written by 'scratchgan train' or its "
                     "last.ckpt.npz)")


def checkpoint_file(parser, path):
    """The checkpoint file of a CHECKPOINT argument (a file or a run folder); a missing one is
    an argument error."""
    try:
        return resolve_checkpoint(path)
    except FileNotFoundError as e:
        parser.error(f"{e} (give a last.ckpt.npz file or a run folder written by "
                     "'scratchgan train')")


def toy_data_modes(dataset):
    """The mode centres of a toy data set (drawn under its samples), or None."""
    if dataset in TOY_DATASETS and dataset != "swissroll":
        return toy_modes(dataset)
    return None
