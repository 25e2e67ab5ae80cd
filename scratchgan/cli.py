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
Bad arguments exit with status 2 and a message listing the valid choices;
a run that fails (missing data, a non-finite loss) exits with status 1.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import shlex
import sys

import numpy as np

from .data.datasets import DATASETS

#: the models' CLI names, one a line, as in ``scratchgan.models.REGISTRY`` (kept here so that
#: ``--help`` does not import the models; a test checks the two agree)
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
DRY_RUN = {"steps": 3, "limit": 256, "max_batch": 16}
#: the type a hyperparameter whose default is None takes (besides none), where the
#: model class has no ``hyper_types`` entry for it
NONE_DEFAULT_TYPES = {"z_dim": int, "lr": float, "optimizer": str}
#: options that ``train --resume`` may change (the rest come from the run)
RESUME_CHANGEABLE = ("steps", "epochs", "device", "no_progress", "sample_every",
                     "checkpoint_every", "log_every", "step_mode", "data_dir")
#: defaults of options that --resume takes from the run when not given
TRAIN_DEFAULTS = {"device": "cpu", "dtype": "float32", "seed": 0, "step_mode": "auto",
                  "log_every": 10}


# ------------------------------------------------------------------------------ helpers
def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer (> 0), got {v}")
    return v


def _nonneg_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
    return v


def _positive_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return v


def _key_value(text):
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
    default = (getattr(cls, "defaults", {}) or {})[key]

    def fail(expected):
        raise ValueError(f"--set {key}={text}: expected {expected} for {key} (default "
                         f"{default!r}), got {text!r}")

    if default is None:
        if text.strip().lower() in ("none", "null"):
            return None
        kind = (getattr(cls, "hyper_types", None) or {}).get(key) or NONE_DEFAULT_TYPES.get(key)
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


def _plain(v):
    """A value as it reads back from JSON (tuples -> lists), for comparisons."""
    if isinstance(v, (tuple, list)):
        return [_plain(u) for u in v]
    if isinstance(v, dict):
        return {k: _plain(u) for k, u in v.items()}
    return v


def registry():
    """``scratchgan.models.REGISTRY``, or None while the models package is unavailable."""
    try:
        from .models import REGISTRY
    except ImportError:
        return None
    return REGISTRY


def _model_class(parser, name):
    reg = registry()
    if reg is None:
        parser.error("scratchgan.models is not available in this installation; cannot build "
                     f"model {name!r}")
    if name not in reg:
        parser.error(f"unknown model {name!r}; valid choices are {', '.join(sorted(reg))}")
    return reg[name]


def _check_device(parser, device):
    from .backend import check_device
    try:
        return check_device(device)
    except ValueError as e:
        parser.error(f"--device: {e}")


def _load_model(parser, ckpt, device):
    """``load_model`` for the checkpoint tools: a file that is no checkpoint, or none usable,
    is an argument error (exit 2) saying what a checkpoint is."""
    from .checkpoint import CheckpointError, NotACheckpointError
    try:
        return load_model(ckpt, device)
    except NotACheckpointError as e:
        parser.error(f"{e}; a checkpoint is a run folder written by 'scratchgan train' or "
                     "the last.ckpt.npz in it")
    except (FileNotFoundError, CheckpointError) as e:
        parser.error(f"{e} (give a run folder written by 'scratchgan train' or its "
                     "last.ckpt.npz)")


def _resolve_checkpoint(parser, path):
    from .train import CHECKPOINT_NAME
    p = pathlib.Path(path)
    if p.is_dir():
        p = p / CHECKPOINT_NAME
    if not p.exists():
        from .checkpoint import previous_path
        if previous_path(p).exists():
            return p
        parser.error(f"checkpoint not found: {path} (give a last.ckpt.npz file or a run folder "
                     "written by 'scratchgan train')")
    return p


def load_model(path, device="cpu"):
    """Rebuild a trained model from a checkpoint written by ``scratchgan train``.

    Returns ``(model, config)``.
    """
    from .checkpoint import load_latest
    state, _ = load_latest(path)
    config = state.get("config") or {}
    if "model" not in config:
        raise ValueError(f"{path}: the checkpoint has no model config (was it written by "
                         "'scratchgan train'?)")
    reg = registry()
    if reg is None or config["model"] not in reg:
        raise ValueError(f"{path}: model {config['model']!r} is not available")
    cls = reg[config["model"]]
    model = cls(tuple(config["data_shape"]), num_classes=int(config.get("num_classes", 10)),
                device=device, dtype=np.dtype(config.get("dtype", "float32")),
                **config.get("hyper", {}))
    model.load_state_dict(state["model"])
    return model, config


def _modes(dataset):
    from .data.toy import TOY_DATASETS, toy_modes
    if dataset in TOY_DATASETS and dataset != "swissroll":
        return toy_modes(dataset)
    return None


# ---------------------------------------------------------------------------- train
def _given_hyper(parser, args, cls, defaults):
    """The hyperparameters given by --set and --lr, parsed and checked; returns
    ``(hyper, option_of)`` (option_of: key -> the option text that set it)."""
    hyper, option_of = {}, {}
    for k, v in args.set or []:
        if k in LOOP_KEYS:
            parser.error(f"--set {k}=...: use the --{k.replace('_', '-')} option instead")
        if k not in defaults:
            valid = sorted(x for x in defaults if x not in LOOP_KEYS)
            parser.error(f"--set: model {args.model!r} has no hyperparameter {k!r}; valid names "
                         f"are {', '.join(valid)}")
        try:
            hyper[k] = parse_hyper(cls, k, v)
        except ValueError as e:
            parser.error(str(e))
        option_of[k] = f"--set {k}={v}"
    if args.lr is not None:
        lr_keys = [k for k in defaults if k == "lr"] or \
            [k for k in defaults if k.startswith("lr_") or k.endswith("_lr")]
        if not lr_keys:
            parser.error(f"--lr: model {args.model!r} has no learning-rate hyperparameter")
        for k in lr_keys:
            hyper[k] = args.lr
            option_of[k] = f"--lr {args.lr:g}"
    return hyper, option_of


def _resume_settings(parser, args, defaults, hyper, option_of, saved, out):
    """Check the options given with --resume against the run's saved config; a conflict is
    an error naming both values."""
    conflicts = []

    def check(option, given, have, shown=None, have_text=None):
        if given is not None and _plain(given) != _plain(have):
            conflicts.append(f"{shown or f'{option} {given}'} (the run has "
                             f"{have_text or ('none' if have is None else have)})")

    check("model", args.model, saved.get("model"), f"model {args.model}")
    check("--dataset", args.dataset, saved.get("dataset"))
    check("--limit", args.limit, saved.get("limit"), have_text=None if saved.get("limit")
          else "no limit: all examples")
    check("--batch-size", args.batch_size, saved.get("batch_size"))
    check("--seed", args.seed, saved.get("seed"))
    check("--dtype", args.dtype, saved.get("dtype"))
    if args.dry_run and not saved.get("dry_run"):
        conflicts.append("--dry-run (the run is not a dry run)")
    saved_hyper = saved.get("hyper") or {}
    for k, v in hyper.items():
        have = saved_hyper.get(k, defaults.get(k))
        check(k, v, have, option_of[k], None if k in saved_hyper else
              f"the model's default, {k}={'none' if have is None else have}")
    if conflicts:
        parser.error(f"--resume continues the run in {out} with its own settings; these "
                     f"options differ from it: {'; '.join(conflicts)}. Leave them out, or start "
                     f"a new run (another --out, or --overwrite)")


def cmd_train(args, parser):
    from . import manual_seed
    from .checkpoint import CheckpointError, load_latest_info, previous_path
    from .data.datasets import dataset_info
    from .data.idx import DataNotFoundError, IDXError
    from .train import (CHECKPOINT_NAME, NonFiniteLossError, Trainer, TrainingInterrupted,
                        clear_run, is_run_folder, run_files)

    cls = _model_class(parser, args.model)
    comm = None
    if args.gpus > 1 or args.sync_bn:
        from .distributed import env_info, init_from_env
        info = env_info()
        if info is None:
            if args.sync_bn and args.gpus == 1:
                parser.error("--sync-bn needs --gpus N with N > 1")
            if (args.device or TRAIN_DEFAULTS["device"]) != "cuda":
                parser.error(f"--gpus {args.gpus} needs --device cuda (NCCL)")
            # this process becomes the launcher: one rank per GPU runs this same command
            # (the ranks see RANK/WORLD_SIZE and train instead of launching again)
            from .distributed.launch import launch
            return launch([sys.executable, "-m", "scratchgan"] + args._argv, args.gpus)
        if info["world_size"] != args.gpus:
            parser.error(f"--gpus {args.gpus} but the launcher started {info['world_size']} ranks")
        comm = init_from_env(args.device or TRAIN_DEFAULTS["device"])
    defaults = dict(getattr(cls, "defaults", {}) or {})
    dataset = args.dataset or getattr(cls, "default_dataset", None) or defaults.get("dataset")
    if dataset not in DATASETS:
        parser.error(f"unknown dataset {dataset!r}; valid choices are {', '.join(DATASETS)}")
    hyper, option_of = _given_hyper(parser, args, cls, defaults)
    out = pathlib.Path(args.out or (f"runs/{args.model}-{dataset}" +
                                    ("-dry-run" if args.dry_run else "")))
    saved, resume_state, changed, clear = None, None, {}, False
    if args.resume:
        ckpt = out / CHECKPOINT_NAME
        if not ckpt.exists() and not previous_path(ckpt).exists():
            print(f"scratchgan train: error: resume: no checkpoint in {out} (expected {ckpt}; "
                  "give the run folder with --out)", file=sys.stderr)
            return 1
        try:
            resume_state = load_latest_info(ckpt)
        except (FileNotFoundError, CheckpointError) as e:
            print(f"scratchgan train: error: resume: {e}", file=sys.stderr)
            return 1
        saved = dict(resume_state[0].get("config") or {})
        if "model" not in saved:
            print(f"scratchgan train: error: resume: {resume_state[1]} has no run configuration "
                  "(was it written by 'scratchgan train'?)", file=sys.stderr)
            return 1
        _resume_settings(parser, args, defaults, hyper, option_of, saved, out)
        dataset, limit = saved["dataset"], saved.get("limit")
        batch_size, seed, dtype = int(saved["batch_size"]), int(saved["seed"]), saved["dtype"]
        hyper = dict(saved.get("hyper") or {})
        dry_run = bool(saved.get("dry_run"))
        if args.steps is None and args.epochs is None:
            steps, epochs = saved.get("steps"), saved.get("epochs")
        else:
            steps, epochs = args.steps, args.epochs
        opts = {"steps": steps, "epochs": epochs}
        for k in ("device", "sample_every", "checkpoint_every", "log_every", "step_mode"):
            given = getattr(args, k)
            opts[k] = given if given is not None else saved.get(k, TRAIN_DEFAULTS.get(k))
        changed = {k: [saved.get(k, TRAIN_DEFAULTS.get(k)), v] for k, v in opts.items()
                   if saved.get(k, TRAIN_DEFAULTS.get(k)) != v}
        if args.data_dir:
            changed["data_dir"] = [None, args.data_dir]
        device = _check_device(parser, opts["device"] or "cpu")
        sample_every, checkpoint_every = opts["sample_every"], opts["checkpoint_every"]
        log_every = int(opts["log_every"] or TRAIN_DEFAULTS["log_every"])
        step_mode = opts["step_mode"] or TRAIN_DEFAULTS["step_mode"]
    else:
        if comm is not None and comm.rank > 0:
            pass                          # rank 0 checks (and clears) the run folder
        elif is_run_folder(out):
            prev = {}
            try:
                prev = json.loads((out / "config.json").read_text())
            except (OSError, ValueError):
                pass
            if args.overwrite or (args.dry_run and isinstance(prev, dict) and
                                  prev.get("dry_run")):
                clear = True
            else:
                names = ", ".join(f.name for f in run_files(out)[:4])
                parser.error(f"{out} already holds a run ({names}); continue it with --resume, "
                             f"or start it over with --overwrite (deletes that run's files "
                             f"first), or give another --out")
        device = _check_device(parser, args.device or TRAIN_DEFAULTS["device"])
        seed = TRAIN_DEFAULTS["seed"] if args.seed is None else args.seed
        dtype = args.dtype or TRAIN_DEFAULTS["dtype"]
        sample_every, checkpoint_every = args.sample_every, args.checkpoint_every
        log_every = args.log_every or TRAIN_DEFAULTS["log_every"]
        step_mode = args.step_mode or TRAIN_DEFAULTS["step_mode"]
        dry_run = bool(args.dry_run)
        batch_size = args.batch_size or int(defaults.get("batch_size", 64))
        steps, epochs = args.steps, args.epochs
        if steps is None and epochs is None:
            if defaults.get("steps"):
                steps = int(defaults["steps"])
            else:
                epochs = int(defaults.get("epochs", 1))
        limit = args.limit
        if args.dry_run:
            limit = limit or DRY_RUN["limit"]
            batch_size = min(batch_size, DRY_RUN["max_batch"])
            if args.epochs is None:
                steps, epochs = args.steps or DRY_RUN["steps"], None
    data_range = getattr(cls, "data_range", None) or (0.0, 1.0)
    from .data.standin import load_or_standin
    try:
        # a dry run never downloads: without the files it trains on stand-in images
        x, y, standin_note = load_or_standin(dataset, data_range, data_dir=args.data_dir,
                                             split="train", limit=limit,
                                             download=not dry_run, standin=dry_run)
    except (DataNotFoundError, IDXError) as e:
        print(f"scratchgan train: error: {e}", file=sys.stderr)
        return 1
    if standin_note:
        print(f"dry run: {standin_note}", file=sys.stderr)
    info = dataset_info(dataset)
    k = 1
    if batch_size > len(x):
        parser.error(f"--batch-size {batch_size} is larger than the data set ({len(x)} examples)")
    if saved is not None and list(saved.get("data_shape") or x.shape[1:]) != list(x.shape[1:]):
        parser.error(f"--resume: the run was trained on examples of shape "
                     f"{tuple(saved['data_shape'])}, {dataset} now has {tuple(x.shape[1:])}")
    manual_seed(seed)
    try:
        model = cls(x.shape[1:], num_classes=info["num_classes"], device=device,
                    dtype=np.dtype(dtype), **hyper)
        k = int(getattr(model, "batches_per_step", lambda: 1)())
        if hasattr(model, "set_preview"):   # translation models: preview pairs of the data
            model.set_preview(x)
    except (ValueError, TypeError) as e:
        parser.error(f"cannot build {args.model} for {dataset}: {e}")
    if k * batch_size > len(x):
        parser.error(f"one {args.model} step needs {k} batches of {batch_size}, more than the "
                     f"{len(x)} examples")
    run = {"device": device, "steps": steps, "epochs": epochs, "sample_every": sample_every,
           "checkpoint_every": checkpoint_every, "log_every": log_every, "step_mode": step_mode}
    if saved is not None:
        config = dict(saved, **run)
    else:
        config = {"model": args.model, "dataset": dataset, "data_shape": list(x.shape[1:]),
                  "num_classes": info["num_classes"], "hyper": hyper, "dtype": dtype,
                  "seed": seed, "batch_size": batch_size, "limit": limit,
                  "data_range": list(data_range), "dry_run": dry_run,
                  "standin": standin_note is not None, **run}
    if comm is not None:
        config["gpus"] = int(comm.world_size)
        config["sync_bn"] = bool(args.sync_bn)
        if args.sync_bn:
            from .distributed import convert_sync_batchnorm
            for net in model.networks().values():
                convert_sync_batchnorm(net, comm)
    if comm is not None and comm.rank > 0:
        clear = False
        sys.stdout = open(os.devnull, "w")            # rank 0 reports
    trainer = Trainer(model, x, y, batch_size=batch_size, epochs=epochs, steps=steps,
                      out_dir=out, seed=seed, sample_every=sample_every,
                      checkpoint_every=checkpoint_every, progress=not args.no_progress,
                      config=config, modes=_modes(dataset), step_mode=step_mode,
                      log_every=log_every, resume_state=resume_state, resume_changes=changed,
                      comm=comm)
    if resume_state is not None:
        at = int(resume_state[0].get("trainer", {}).get("step", 0))
        if trainer.steps <= at:
            parser.error(f"--resume: the run in {out} is at step {at} already and would train "
                         f"to step {trainer.steps}; give more --steps (> {at}) or --epochs")
    if clear:
        gone = clear_run(out)
        print(f"removed {len(gone)} files of the previous run in {out}")
    desc = f"{args.model} on {dataset} ({len(x)} examples, batch {batch_size}, " \
           f"{trainer.steps} steps, device {device}) -> {out}"
    print(("dry run: " if dry_run else "training ") + desc)
    if resume_state is not None:
        print(f"resumed from step {at} ({resume_state[1]})")
        if resume_state[2]:
            print(f"scratchgan train: warning: {resume_state[2]}; so the previous checkpoint "
                  f"{resume_state[1]} was used", file=sys.stderr)
    sys.stdout.flush()
    if device == "cuda" and step_mode != "eager":
        import logging
        logging.basicConfig(level=logging.WARNING, format="scratchgan: %(message)s")
    try:
        summary = trainer.fit()
    except TrainingInterrupted as e:
        cmd = f"scratchgan train {args.model} --resume --out {shlex.quote(str(out))}"
        print(f"\n{e}\nresume with: {cmd}", file=sys.stderr)
        return 130
    except NonFiniteLossError as e:
        print(f"scratchgan train: error: {e}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as e:
        if isinstance(e, ValueError) and not str(e).startswith("resume"):
            raise
        print(f"scratchgan train: error: {e}", file=sys.stderr)
        return 1
    losses = " ".join(f"{k}={v:.4g}" for k, v in summary["losses"].items()
                      if isinstance(v, float))
    print(f"done: {summary['step']} steps in {summary['time']:.1f}s; {losses}")
    print(f"samples: {summary['samples']}")
    print(f"checkpoint: {summary['checkpoint']}")
    return 0


# ------------------------------------------------------------------- checkpoint tools
def _noise_mix(a, b, t, slerp=False):
    """Interpolate two noise dicts: float arrays linearly (or spherically), the rest from a."""
    from .backend import get_array_module
    out = {}
    for key, va in a.items():
        vb = b[key]
        if hasattr(va, "dtype") and va.dtype.kind == "f":
            if slerp:
                xp = get_array_module(va)
                na = xp.linalg.norm(va, axis=1, keepdims=True)
                nb = xp.linalg.norm(vb, axis=1, keepdims=True)
                cos = xp.clip((va * vb).sum(1, keepdims=True) / (na * nb + 1e-12), -1, 1)
                om = xp.arccos(cos)
                so = xp.sin(om)
                safe = so > 1e-6
                wa = xp.where(safe, xp.sin((1 - t) * om) / xp.where(safe, so, 1), 1 - t)
                wb = xp.where(safe, xp.sin(t * om) / xp.where(safe, so, 1), t)
                out[key] = (wa * va + wb * vb).astype(va.dtype)
            else:
                out[key] = ((1 - t) * va + t * vb).astype(va.dtype)
        else:
            out[key] = va
    return out


def _noise_take(noise, idx):
    return {k: v[idx] for k, v in noise.items()}


def _generate(model, noise):
    from .backend import to_numpy
    return to_numpy(model.generate(noise))


def _sample_noise(model, n, rng, label=None):
    if label is not None:
        return model.sample_noise(n, rng=rng, labels=np.full(n, label, dtype=np.int64))
    return model.sample_noise(n, rng=rng)


def cmd_sample(args, parser):
    from . import viz
    from .data.datasets import load_dataset
    device = _check_device(parser, args.device)
    ckpt = _resolve_checkpoint(parser, args.checkpoint)
    model, config = _load_model(parser, ckpt, device)
    if args.label is not None and not (0 <= args.label < int(config.get("num_classes", 10))):
        parser.error(f"--label must lie in [0, {config.get('num_classes', 10)}), got {args.label}")
    noise = _sample_noise(model, args.n, np.random.default_rng(args.seed), args.label)
    s = _generate(model, noise)
    out = pathlib.Path(args.out or ckpt.parent / "sample.png")
    data = None
    ds = config.get("dataset")
    if s.ndim == 2 and ds in DATASETS:
        data = load_dataset(ds, limit=2000)[0] if s.shape[1] <= 2 else None
    viz.save_samples(s, out, data_range=config.get("data_range"), data=data, modes=_modes(ds),
                     nrow=args.nrow)
    if args.save_npz:
        np.savez(pathlib.Path(args.save_npz), samples=s)
    print(f"wrote {out}")
    return 0


def _parse_group(parser, text, n):
    try:
        idx = [int(v) for v in text.split("+")]
    except ValueError:
        parser.error(f"--arithmetic: expected indices like 3 or 3+8+11, got {text!r}")
    bad = [i for i in idx if not 0 <= i < n]
    if bad:
        parser.error(f"--arithmetic: indices must lie in [0, {n}) (the reference grid), got {bad}")
    return idx


def cmd_interpolate(args, parser):
    from . import viz
    device = _check_device(parser, args.device)
    ckpt = _resolve_checkpoint(parser, args.checkpoint)
    model, config = _load_model(parser, ckpt, device)
    rng = np.random.default_rng(args.seed)
    dr = config.get("data_range")
    out = pathlib.Path(args.out or ckpt.parent / ("arithmetic.png" if args.arithmetic
                                                   else "interpolation.png"))
    if len(model.data_shape) != 3:
        parser.error("interpolate needs an image model (samples of shape (C, H, W))")
    if args.between_real and args.arithmetic:
        parser.error("--between-real and --arithmetic are two different pictures; give one")
    if args.arithmetic:
        # DCGAN Sec. 6.3: average the z of each group, then z_A - z_B + z_C
        ref = model.sample_noise(args.n, rng=rng)
        ref_img = _generate(model, ref)
        ref_path = out.with_name(out.stem + "_reference.png")
        viz.save_grid(ref_img, ref_path, nrow=int(np.ceil(np.sqrt(args.n))), data_range=dr)
        groups = [_parse_group(parser, g, args.n) for g in args.arithmetic]
        means = []
        for g in groups:
            sub = _noise_take(ref, np.array(g))
            means.append({k: (v.mean(0, keepdims=True).astype(v.dtype)
                              if hasattr(v, "dtype") and v.dtype.kind == "f" else v[:1])
                          for k, v in sub.items()})
        a, b, c = means
        res = {k: (a[k] - b[k] + c[k] if hasattr(a[k], "dtype") and a[k].dtype.kind == "f"
                   else a[k]) for k in a}
        row_noise = {k: model_cat([a[k], b[k], c[k], res[k]]) for k in a}
        imgs = _generate(model, row_noise)
        viz.save_rows([imgs], out, data_range=dr)
        print(f"wrote {out} (A, B, C, A - B + C) and the indexed reference grid {ref_path}")
        return 0
    if args.between_real:
        return _interpolate_between_real(args, parser, model, config, ckpt, rng, out)
    n0 = model.sample_noise(args.rows, rng=rng)
    lab = n0.get("labels", n0.get("cat"))  # conditional / InfoGAN: keep the class fixed
    n1 = model.sample_noise(args.rows, rng=rng, **({} if lab is None else {"labels": lab}))
    ts = np.linspace(0.0, 1.0, args.frames)
    frames = [_generate(model, _noise_mix(n0, n1, float(t), args.slerp)) for t in ts]
    rows = [np.stack([f[r] for f in frames]) for r in range(args.rows)]
    viz.save_rows(rows, out, data_range=dr)
    print(f"wrote {out}")
    return 0


# ------------------------------------------------ encoder tools (reconstruct, interpolate)
def _need_encoder(parser, model, config, what):
    # a model may carry encode() but be built without its encoder (ALI's GAN baseline):
    # it says so with has_encoder = False
    if not callable(getattr(model, "encode", None)) or not getattr(model, "has_encoder", True):
        parser.error(f"{what} needs a model with an encoder (encode(x)); this one is "
                     f"{config.get('model')!r}")


def _real_examples(parser, model, config, args, n):
    """``n`` real examples of the run's data set (``--dataset``/``--split``), drawn with
    ``--seed``; a stand-in run (dry run without the files) gets stand-in examples again."""
    from .data.standin import load_or_standin
    from .data.idx import DataNotFoundError, IDXError
    ds = args.dataset or config.get("dataset")
    if ds not in DATASETS:
        parser.error(f"unknown dataset {ds!r}; valid choices are {', '.join(DATASETS)}")
    try:
        x, y, _ = load_or_standin(ds, tuple(config.get("data_range") or (0.0, 1.0)),
                                  data_dir=args.data_dir, split=args.split, download=False,
                                  standin=bool(config.get("standin")))
    except (DataNotFoundError, IDXError, ValueError) as e:
        return None, None, str(e)
    if tuple(x.shape[1:]) != tuple(model.data_shape):
        parser.error(f"dataset {ds} has examples of shape {x.shape[1:]}, the model expects "
                     f"{tuple(model.data_shape)}")
    if n > len(x):
        parser.error(f"asked for {n} examples, {ds} ({args.split}) has {len(x)}")
    idx = np.sort(np.random.default_rng(args.seed).choice(len(x), size=n, replace=False))
    labels = None if y is None or not getattr(model, "conditional", False) else \
        np.asarray(y)[idx].astype(np.int64)
    return x[idx].astype(model.dtype), labels, None


def encode_decode(model, x, labels=None, batch=500):
    """``(z, G(E(x)))`` for host examples ``x``: ``model.encode`` in batches, its codes put in
    the ``"z"`` entry of a ``sample_noise`` template (the other entries, e.g. labels, are
    kept) and decoded by ``model.generate``. Conditional models get the examples' ``labels``
    in both directions. Host arrays."""
    from .backend import to_device, to_numpy
    dev = getattr(model, "device", "cpu")

    def dev_(a):
        return to_device(a, dev) if dev != "cpu" else a
    zs = []
    for i in range(0, len(x), batch):
        xb = dev_(x[i:i + batch])
        if labels is not None:
            zs.append(to_numpy(model.encode(xb, dev_(labels[i:i + batch]))))
        else:
            zs.append(to_numpy(model.encode(xb)))
    z = np.concatenate(zs)
    return z, _decode(model, z, labels)


def _decode(model, z, labels=None):
    from .backend import to_device
    if labels is not None:
        noise = model.sample_noise(len(z), rng=np.random.default_rng(0), labels=labels)
    else:
        noise = model.sample_noise(len(z), rng=np.random.default_rng(0))
    zz = z.astype(model.dtype)
    noise["z"] = to_device(zz, model.device) if getattr(model, "device", "cpu") != "cpu" else zz
    return _generate(model, noise)


def cmd_reconstruct(args, parser):
    """x -> E -> G for ``--n`` real examples: originals above their reconstructions (image
    models, ``--nrow`` per row), or a scatter joining each 2-D point to its reconstruction."""
    from . import viz
    device = _check_device(parser, args.device)
    ckpt = _resolve_checkpoint(parser, args.checkpoint)
    model, config = _load_model(parser, ckpt, device)
    _need_encoder(parser, model, config, "reconstruct")
    x, labels, err = _real_examples(parser, model, config, args, args.n)
    if x is None:
        print(f"scratchgan reconstruct: error: {err}", file=sys.stderr)
        return 1
    _, xr = encode_decode(model, x, labels)
    out = pathlib.Path(args.out or ckpt.parent / "reconstructions.png")
    err_l2 = float(np.sqrt(((x.reshape(len(x), -1) - xr.reshape(len(x), -1)) ** 2).sum(1)).mean())
    if len(model.data_shape) == 3:
        k = args.nrow or min(args.n, 10)
        rows = []
        for i in range(0, args.n, k):
            a, b = x[i:i + k], xr[i:i + k]
            if len(a) < k:             # pad the last pair of rows with blank images
                fill = np.full((k - len(a),) + a.shape[1:], (config.get("data_range") or
                                                               [0.0, 1.0])[0], a.dtype)
                a, b = np.concatenate([a, fill]), np.concatenate([b, fill])
            rows += [a, b]
        viz.save_rows(rows, out, data_range=config.get("data_range"))
        layout = f"rows in pairs: originals, then their reconstructions ({k} per row)"
    elif x.ndim == 2 and x.shape[1] == 2:
        _reconstruction_scatter(x, xr, out, title=f"{config.get('model')}: x -> G(E(x))")
        layout = "points (blue) joined to their reconstructions (red)"
    else:
        parser.error(f"reconstruct draws images or 2-D points; the data have shape "
                     f"{tuple(model.data_shape)}")
    print(f"wrote {out}: {layout}; mean ||x - G(E(x))|| = {err_l2:.4g} over {args.n} examples")
    return 0


def _reconstruction_scatter(x, xr, path, title=None):
    """2-D points (blue) joined by grey segments to their reconstructions (red)."""
    from .viz import _figure, _save
    fig = _figure((5, 5))
    ax = fig.add_subplot(111)
    for a, b in zip(x, xr):
        ax.plot([a[0], b[0]], [a[1], b[1]], color="0.7", lw=0.5, zorder=1)
    ax.scatter(x[:, 0], x[:, 1], s=6, c="tab:blue", label="x", zorder=2)
    ax.scatter(xr[:, 0], xr[:, 1], s=6, c="tab:red", label="G(E(x))", zorder=3)
    ax.legend(loc="upper right", fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return _save(fig, path)


def _interpolate_between_real(args, parser, model, config, ckpt, rng, out):
    """Each strip: a real example, G of ``--frames`` codes on the line (or great circle)
    from E(x_a) to E(x_b), the other real example."""
    from . import viz
    _need_encoder(parser, model, config, "interpolate --between-real")
    x, labels, err = _real_examples(parser, model, config, args, 2 * args.rows)
    if x is None:
        print(f"scratchgan interpolate: error: {err}", file=sys.stderr)
        return 1
    z, _ = encode_decode(model, x, labels)
    za, zb = {"z": z[:args.rows]}, {"z": z[args.rows:]}
    keep = None if labels is None else labels[:args.rows]   # conditional: the first one's class
    frames = [_decode(model, _noise_mix(za, zb, float(t), args.slerp)["z"], keep)
              for t in np.linspace(0.0, 1.0, args.frames)]
    rows = [np.stack([x[r]] + [f[r] for f in frames] + [x[args.rows + r]])
            for r in range(args.rows)]
    viz.save_rows(rows, out, data_range=config.get("data_range"))
    print(f"wrote {out}: each row a real example, {args.frames} decoded codes between the two "
          f"encodings, the other real example")
    return 0


def model_cat(arrs):
    from .backend import get_array_module
    xp = get_array_module(*arrs)
    return xp.concatenate(arrs, axis=0)


def cmd_traverse(args, parser):
    """InfoGAN code sweeps (paper Fig. 2): one block per code; in each row the noise z is
    fixed and only that code changes along the row (the categorical code runs over its
    categories, each continuous code over ``--range`` in ``--frames`` steps)."""
    from . import viz
    device = _check_device(parser, args.device)
    ckpt = _resolve_checkpoint(parser, args.checkpoint)
    model, config = _load_model(parser, ckpt, device)
    if hasattr(model, "traverse_rows"):      # betavae: one row per latent, the rest at 0
        rows = model.traverse_rows(values=np.linspace(args.range[0], args.range[1], args.frames))
        out = pathlib.Path(args.out or ckpt.parent / "traverse.png")
        viz.save_rows(rows, out, data_range=config.get("data_range"))
        print(f"wrote {out}: one row per latent ({len(rows)} rows x {args.frames})")
        return 0
    if not hasattr(model, "traversal_noise"):
        parser.error(f"traverse is for infogan checkpoints; this one is {config.get('model')!r}")
    lo, hi = args.range
    values = np.linspace(lo, hi, args.frames)
    n_cont = int(getattr(model, "hp", {}).get("cont_dim", 0))
    blocks = [("categorical", None)] + [(f"continuous {j}", j) for j in range(n_cont)]
    rows, order = [], []
    for name, j in blocks:
        rng = np.random.default_rng(args.seed)  # the same z rows in every block
        noise = model.traversal_noise(cont_index=j, values=None if j is None else values,
                                      n_rows=args.rows, rng=rng)
        imgs = _generate(model, noise)
        width = len(imgs) // args.rows
        rows.extend(imgs[r * width:(r + 1) * width] for r in range(args.rows))
        order.append(f"{name} ({args.rows} rows x {width})")
    width = max(len(r) for r in rows)
    fill = (config.get("data_range") or [0.0, 1.0])[0]
    rows = [r if len(r) == width else
            np.concatenate([r, np.full((width - len(r),) + r.shape[1:], fill, dtype=r.dtype)])
            for r in rows]
    out = pathlib.Path(args.out or ckpt.parent / "traverse.png")
    viz.save_rows(rows, out, data_range=config.get("data_range"))
    print(f"wrote {out}: blocks from top: {', '.join(order)}")
    return 0


def cmd_latent(args, parser):
    from . import viz
    from .backend import to_device, to_numpy
    from .data import load_dataset
    from .data.idx import DataNotFoundError
    device = _check_device(parser, args.device)
    ckpt = _resolve_checkpoint(parser, args.checkpoint)
    model, config = _load_model(parser, ckpt, device)
    _need_encoder(parser, model, config, "latent")
    ds = args.dataset or config.get("dataset")
    if ds not in DATASETS:
        parser.error(f"unknown dataset {ds!r}; valid choices are {', '.join(DATASETS)}")
    try:
        x, y = load_dataset(ds, tuple(config.get("data_range") or (0.0, 1.0)),
                            data_dir=args.data_dir, split=args.split, limit=args.n)
    except (DataNotFoundError, ValueError) as e:
        print(f"scratchgan latent: error: {e}", file=sys.stderr)
        return 1
    if tuple(x.shape[1:]) != tuple(model.data_shape):
        parser.error(f"dataset {ds} has examples of shape {x.shape[1:]}, the model expects "
                     f"{tuple(model.data_shape)}")
    out_dir = pathlib.Path(args.out_dir or ckpt.parent)
    zs = []
    for i in range(0, len(x), 500):
        xb = x[i:i + 500].astype(model.dtype)
        zs.append(to_numpy(model.encode(to_device(xb, device) if device != "cpu" else xb)))
    z = np.concatenate(zs)
    p1 = viz.latent_scatter(z, y, out_dir / "latent_scatter.png",
                            title=f"{config.get('model')} codes of {ds} ({args.split})")
    print(f"wrote {p1}")
    if z.shape[1] == 2 and len(model.data_shape) == 3:
        template = model.sample_noise(1, rng=np.random.default_rng(0))
        if config.get("model") == "vae":
            from scipy.stats import norm
            q = norm.ppf(np.linspace(0.05, 0.95, args.grid))
            values = (q, q)
        else:
            lo, hi = np.percentile(z, [1, 99], axis=0)
            values = (np.linspace(lo[0], hi[0], args.grid), np.linspace(lo[1], hi[1], args.grid))

        def decode(zz):
            noise = {k: model_cat([v] * len(zz)) for k, v in template.items()}
            zz = zz.astype(model.dtype)
            noise["z"] = to_device(zz, device) if device != "cpu" else zz
            return _generate(model, noise)

        p2 = viz.manifold_grid(decode, out_dir / "manifold.png", values=values,
                               data_range=config.get("data_range") or (0.0, 1.0))
        print(f"wrote {p2}")
    else:
        hp = dict(getattr(model, "hp", None) or config.get("hyper") or {})
        key = next((k for k in ("code_dim", "latent_dim", "z_dim") if k in hp), None)
        if z.shape[1] != 2:
            hint = (f"; train with a 2-D code (--set {key}=2) for the manifold" if key
                    else "; a model with a 2-D code gives the manifold")
            print(f"latent dimension {z.shape[1]} != 2: no manifold plot (the scatter shows "
                  f"dims 0, 1){hint}")
        else:
            print("no manifold plot: it needs an image model (the data are not images)")
    return 0


# ------------------------------------------------------------- translate (pix2pix, cyclegan)
def cmd_translate(args, parser):
    """Translate images with a pix2pix or CycleGAN run: from a .npy file of inputs (values in
    [0, 1]) or the first ``--n`` examples of the run's data set (``--split``); writes a grid
    with rows of up to 10 inputs, their translations and, for paired sets, the targets."""
    from . import viz
    from .backend import to_numpy
    from .data.standin import load_or_standin
    from .data.idx import DataNotFoundError, IDXError
    from .viz import interleave_rows
    device = _check_device(parser, args.device)
    ckpt = _resolve_checkpoint(parser, args.checkpoint)
    model, config = _load_model(parser, ckpt, device)
    if not callable(getattr(model, "translate", None)):
        parser.error(f"translate needs an image-to-image model (pix2pix, cyclegan); the run is "
                     f"{config.get('model')!r}")
    lo, hi = model.data_range
    paired = config.get("model") == "pix2pix"
    target = None
    if args.input:
        try:
            a = np.load(args.input).astype(np.float64)
        except (OSError, ValueError) as e:
            parser.error(f"--input: cannot read {args.input} as a .npy array: {e}")
        if a.ndim == 3:
            a = a[:, None]
        want = model.a_channels if args.direction == "AB" else model.b_channels
        if a.ndim != 4 or tuple(a.shape[2:]) != tuple(model.data_shape[1:]) or \
                a.shape[1] not in (1, want):
            parser.error(f"--input: expected images (N, {want}, {model.data_shape[1]}, "
                         f"{model.data_shape[2]}) or (N, H, W) with values in [0, 1], got "
                         f"shape {a.shape}")
        if a.shape[1] != want:
            a = np.repeat(a, want, axis=1)
        a = (lo + (hi - lo) * a[:args.n]).astype(model.dtype)
    else:
        ds = args.dataset or config.get("dataset")
        try:
            x, _, _ = load_or_standin(ds, (lo, hi), data_dir=args.data_dir, split=args.split,
                                      download=False, standin=bool(config.get("standin")))
        except (DataNotFoundError, IDXError, ValueError) as e:
            print(f"scratchgan translate: error: {e}", file=sys.stderr)
            return 1
        if tuple(x.shape[1:]) != tuple(model.data_shape):
            parser.error(f"dataset {ds} has examples of shape {x.shape[1:]}, the model expects "
                         f"{tuple(model.data_shape)}")
        a, b = model.split(x[:args.n])
        if args.direction == "BA":
            if paired:
                parser.error("--direction BA needs an unpaired (cyclegan) run")
            a, b = b, a
        target = b if paired else None
    kw = {} if paired else {"direction": args.direction}
    out_imgs = to_numpy(model.translate(a, **kw))
    rows = [a, out_imgs] + ([target] if target is not None else [])
    grid = to_numpy(interleave_rows([np.asarray(r, dtype=np.float64) for r in rows]))
    out = pathlib.Path(args.out or ckpt.parent / "translate.png")
    viz.save_grid(grid, out, nrow=min(10, len(a)), data_range=(lo, hi))
    if args.save_npy:
        np.save(args.save_npy, (to_numpy(out_imgs) - lo) / (hi - lo))
    what = "inputs, outputs" + (", targets" if target is not None else "")
    print(f"wrote {out} (rows of {what}; {len(a)} images)")
    return 0


# ---------------------------------------------------------------------------- parser
def build_parser():
    p = argparse.ArgumentParser(
        prog="scratchgan",
        description="Train and inspect GANs, VAEs and AAEs written from scratch in NumPy/CuPy.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    t = sub.add_parser("train", help="train a model (defaults: the paper's settings)",
                       description="Train MODEL. Defaults come from the model class (paper "
                                   "hyperparameters and default data set).")
    t.add_argument("model", choices=MODEL_NAMES, help="which model: %(choices)s")
    t.add_argument("--dataset", choices=DATASETS, metavar="NAME",
                   help="data set: %(choices)s (default: the model's)")
    g = t.add_mutually_exclusive_group()
    g.add_argument("--epochs", type=_positive_int, help="passes over the training data")
    g.add_argument("--steps", type=_positive_int, help="total train_step calls")
    t.add_argument("--batch-size", type=_positive_int, help="examples per minibatch")
    t.add_argument("--lr", type=_positive_float, help="learning rate (all of the model's)")
    t.add_argument("--device", help="cpu or cuda (default cpu; with --resume the run's)")
    t.add_argument("--dtype", choices=("float32", "float64"), help="default float32")
    t.add_argument("--seed", type=_nonneg_int, help="random seed (default 0)")
    t.add_argument("--out", help="output folder (default runs/MODEL-DATASET)")
    t.add_argument("--data-dir", help="folder holding mnist/ and fashion-mnist/ IDX files")
    t.add_argument("--limit", type=_positive_int, help="use only the first N training examples")
    r = t.add_mutually_exclusive_group()
    r.add_argument("--resume", action="store_true",
                   help="continue the run in OUT from OUT/last.ckpt.npz with the run's own "
                        "settings (more --steps/--epochs, --device, --log-every ... may change)")
    r.add_argument("--overwrite", action="store_true",
                   help="train into OUT even though it holds a run: that run's files are "
                        "deleted first")
    t.add_argument("--dry-run", action="store_true",
                   help=f"{DRY_RUN['steps']} steps on {DRY_RUN['limit']} examples (for CI)")
    t.add_argument("--sample-every", type=_positive_int, help="also save samples every S steps")
    t.add_argument("--checkpoint-every", type=_positive_int,
                   help="also checkpoint every S steps (always at epoch ends and the end)")
    t.add_argument("--set", action="append", type=_key_value, metavar="KEY=VALUE",
                   help="override a model hyperparameter (repeatable), e.g. --set k=2")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--step-mode", choices=("auto", "eager", "graph"),
                   help="GPU steps: auto = replay each step from a captured CUDA graph where the "
                        "model allows it, else eager with the reason printed (default); eager = "
                        "plain train_step; graph = fail if a step cannot be captured")
    t.add_argument("--log-every", type=_positive_int,
                   help="read the losses back, log them and check them for NaN every N steps "
                        "(default 10; on the GPU each read waits for the device)")
    t.add_argument("--gpus", type=_positive_int, default=1,
                   help="data-parallel over N GPUs: one process per GPU through "
                        "scratchgan.distributed.launch, NCCL gradient averaging; --batch-size "
                        "is per GPU (default 1)")
    t.add_argument("--sync-bn", action="store_true",
                   help="with --gpus N: BatchNorm statistics over all GPUs' examples (default: "
                        "per GPU, as ChainerMN and DDP)")
    t.set_defaults(func=cmd_train)

    def ckpt_cmd(name, help_text):
        s = sub.add_parser(name, help=help_text, description=help_text)
        s.add_argument("checkpoint", help="a last.ckpt.npz file or a run folder")
        s.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
        s.add_argument("--seed", type=_nonneg_int, default=0)
        s.add_argument("--out", help="output PNG (default: inside the run folder)")
        return s

    s = ckpt_cmd("sample", "draw samples from a checkpoint into a grid PNG")
    s.add_argument("--n", type=_positive_int, default=100, help="number of samples")
    s.add_argument("--nrow", type=_positive_int, help="images per row")
    s.add_argument("--label", type=_nonneg_int, help="class label for conditional models")
    s.add_argument("--save-npz", metavar="PATH", help="also save the raw samples")
    s.set_defaults(func=cmd_sample)

    s = ckpt_cmd("interpolate", "latent interpolation strips; DCGAN latent vector arithmetic")
    s.add_argument("--rows", type=_positive_int, default=8, help="number of strips")
    s.add_argument("--frames", type=_positive_int, default=10, help="images per strip")
    s.add_argument("--slerp", action="store_true", help="spherical instead of linear")
    s.add_argument("--arithmetic", nargs=3, metavar=("A", "B", "C"),
                   help="z_A - z_B + z_C on a reference grid; each of A, B, C is an index or "
                        "indices joined by + (averaged), e.g. 3+8 5 12")
    s.add_argument("--n", type=_positive_int, default=64, help="reference grid size (arithmetic)")
    s.add_argument("--between-real", action="store_true",
                   help="models with an encoder: interpolate between the codes E(x) of two "
                        "real examples (drawn with --seed from --split of the run's data set), "
                        "shown at the two ends of each strip")
    s.add_argument("--dataset", help="data set of the real examples (default: the training one)")
    s.add_argument("--data-dir", help="folder holding mnist/ and fashion-mnist/")
    s.add_argument("--split", choices=("train", "test"), default="test")
    s.set_defaults(func=cmd_interpolate)

    s = ckpt_cmd("reconstruct", "models with an encoder: x -> E -> G for real examples "
                                "(originals above their reconstructions)")
    s.add_argument("--n", type=_positive_int, default=20, help="number of real examples")
    s.add_argument("--nrow", type=_positive_int, help="images per row (default min(n, 10))")
    s.add_argument("--dataset", help="data set to reconstruct (default: the training one)")
    s.add_argument("--data-dir", help="folder holding mnist/ and fashion-mnist/")
    s.add_argument("--split", choices=("train", "test"), default="test")
    s.set_defaults(func=cmd_reconstruct)

    s = ckpt_cmd("traverse", "InfoGAN: vary one latent code per row, the rest fixed")
    s.add_argument("--rows", type=_positive_int, default=5, help="rows (fixed noise) per code")
    s.add_argument("--frames", type=_positive_int, default=10,
                   help="values per continuous code")
    s.add_argument("--range", type=float, nargs=2, default=(-2.0, 2.0), metavar=("LO", "HI"),
                   help="range of continuous codes (default -2 2, as in the paper)")
    s.set_defaults(func=cmd_traverse)

    s = ckpt_cmd("latent", "VAE/AAE: latent scatter coloured by label, 2-D manifold")
    s.add_argument("--dataset", help="data set to encode (default: the training one)")
    s.add_argument("--data-dir", help="folder holding mnist/ and fashion-mnist/")
    s.add_argument("--split", choices=("train", "test"), default="test")
    s.add_argument("--n", type=_positive_int, default=5000, help="examples to encode")
    s.add_argument("--grid", type=_positive_int, default=20, help="manifold grid size")
    s.add_argument("--out-dir", help="output folder (default: the run folder)")
    s.set_defaults(func=cmd_latent)

    s = ckpt_cmd("translate", "pix2pix/CycleGAN: translate images into a grid (input, output, "
                              "target)")
    s.add_argument("--input", metavar="FILE.npy",
                   help="images to translate, (N, C, H, W) or (N, H, W) in [0, 1] (default: "
                        "the run's data set)")
    s.add_argument("--dataset", help="data set (default: the training one)")
    s.add_argument("--data-dir", help="folder holding mnist/ and fashion-mnist/")
    s.add_argument("--split", choices=("train", "test"), default="test")
    s.add_argument("--n", type=_positive_int, default=20, help="images to translate")
    s.add_argument("--direction", choices=("AB", "BA"), default="AB",
                   help="cyclegan: A -> B (default) or B -> A")
    s.add_argument("--save-npy", metavar="PATH", help="also save the outputs (in [0, 1])")
    s.set_defaults(func=cmd_translate)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args._argv = list(sys.argv[1:] if argv is None else argv)
    sub = parser._subparsers._group_actions[0].choices[args.command]
    return int(args.func(args, sub) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
