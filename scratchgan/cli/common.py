"""What the subcommands share: argument types, the models' names, ``--set`` value parsing,
and the argument errors of devices and checkpoints (exit status 2, via ``parser.error``)."""
from __future__ import annotations

import argparse
import math

import numpy as np

from ..backend import check_device as _backend_check_device
from ..checkpoint import CheckpointError, NotACheckpointError
from ..data.toy import TOY_DATASETS, toy_modes
from ..runs import load_model, resolve_checkpoint

__all__ = ["MODEL_NAMES", "LOOP_KEYS", "NONE_DEFAULT_TYPES", "positive_int", "nonneg_int",
           "positive_float", "key_value", "parse_hyper", "plain", "check_device",
           "load_checkpoint_model", "checkpoint_file", "toy_data_modes"]

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
#: the type a hyperparameter whose default is None takes (besides none), where the
#: model class has no ``hyper_types`` entry for it
NONE_DEFAULT_TYPES = {"z_dim": int, "lr": float, "optimizer": str}


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
def check_device(parser, device):
    """``device`` checked by :func:`scratchgan.backend.check_device`; a bad one is an argument
    error naming the option."""
    try:
        return _backend_check_device(device)
    except ValueError as e:
        parser.error(f"--device: {e}")


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
