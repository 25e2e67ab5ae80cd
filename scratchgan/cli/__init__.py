"""The ``scratchgan`` command (also ``python -m scratchgan``).

Subcommands::

    scratchgan train MODEL [--dataset D] [--epochs E | --steps S] [--batch-size B] [--lr LR]
                           [--device cpu|cuda] [--seed N] [--out DIR] [--data-dir DIR]
                           [--resume | --overwrite] [--dry-run] [--sample-every S]
                           [--set KEY=VALUE ...]
    scratchgan sample CHECKPOINT [--n N] [--label K] [--seed N] [--out PNG]
    scratchgan interpolate CHECKPOINT [--rows R] [--frames T] [--slerp]
                                      [--arithmetic A B C] [--out PNG]
                                      [--between-real [--split test] [--dataset D]]
    scratchgan reconstruct CHECKPOINT [--n N] [--nrow K] [--split test] [--out PNG]
    scratchgan traverse CHECKPOINT [--rows R] [--frames T] [--range LO HI] [--out PNG]
    scratchgan latent CHECKPOINT [--dataset D] [--n N] [--grid G] [--out-dir DIR]
    scratchgan translate CHECKPOINT [--input FILE.npy | --split test] [--n N] [--direction AB]
    scratchgan export CHECKPOINT [--format safetensors|torch] [--out FILE]
    scratchgan reproduce STUDY [--seeds 0,1,2] [--device cuda] [--resume] [--time-limit S]
                               [--schedule full|short] [--dry-run]
    scratchgan reproduce --list | --report

``train`` takes its defaults from the model class (``defaults``: the paper's
batch size, learning rate, epochs ...; ``default_dataset``). With no options,
``scratchgan train gan`` trains the GAN on the embedded ring8 toy data (no
download) and writes ``runs/gan-ring8/samples.png``.

``--set KEY=VALUE`` values are parsed against the type of the default in the
model's ``defaults`` (bool: true/false/1/0; int; finite float; a tuple as
comma-separated values, e.g. ``betas=0.5,0.999``; a None default takes ``none``
or the type in ``NONE_DEFAULT_TYPES``/the model's ``hyper_types``) before
anything is written.

A run folder that holds a run is not trained into again unless ``--resume``
(continue it with its own saved settings: model, data set, limit,
hyperparameters, seed, dtype and batch size; ``RESUME_CHANGEABLE`` options may
change, each resume is recorded in ``resumes.jsonl``) or ``--overwrite``
(delete the previous run's files first). A dry run replaces a previous dry
run's folder. Ctrl-C finishes the step, writes a checkpoint, prints the
command that resumes and exits with status 130 (a second Ctrl-C aborts at once).

CHECKPOINT is a ``last.ckpt.npz`` file or a run folder holding one.
A user error exits with status 2 (``common.USER_ERROR``) and a one-line message naming what
was wrong and what was expected, before anything is written: a bad argument value, a model
and data set that cannot work together (``compat``), a run folder that cannot be used, a
file that is no checkpoint, a missing ``--data-dir``, an output folder that cannot be
written, a CUDA device that is not there. A run that fails once started (data that cannot
be found or downloaded, a non-finite loss) exits with status 1; Ctrl-C with 130.
``scratchgan --version`` prints the version; every ``--help`` shows the defaults.
"""
from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..models import REGISTRY
from ..runs import DRY_RUN
from . import export, reproduce, tools, train
from .common import EPILOG, MODEL_NAMES, HelpFormatter, parse_hyper

__all__ = ["COMMANDS", "MODEL_NAMES", "DRY_RUN", "parse_hyper", "registry", "build_parser",
           "main"]

#: the subcommands, in the order ``--help`` lists them: each entry adds its subparser to the
#: subparsers it is given and sets ``func``, called as ``func(args, parser, registry)`` and
#: returning the exit status. A new command is one line here.
COMMANDS = (
    train.register,
    tools.register_sample,
    tools.register_interpolate,
    tools.register_reconstruct,
    tools.register_traverse,
    tools.register_latent,
    tools.register_translate,
    export.register,
    reproduce.register,
)


def registry():
    """The models by CLI name (``scratchgan.models.REGISTRY``): what ``train`` builds and the
    checkpoint tools rebuild. The commands look it up through this function when they run."""
    return REGISTRY


def build_parser():
    p = argparse.ArgumentParser(
        prog="scratchgan",
        description="Train and inspect GANs, VAEs and AAEs written from scratch in NumPy/CuPy.",
        formatter_class=HelpFormatter, epilog=EPILOG)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for register in COMMANDS:
        register(sub)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args._argv = list(sys.argv[1:] if argv is None else argv)
    sub = parser._subparsers._group_actions[0].choices[args.command]
    # ``registry`` is looked up here, at call time, so that a replacement of
    # ``scratchgan.cli.registry`` (a test's stand-in model) reaches every command
    return int(args.func(args, sub, registry) or 0)
