"""``scratchgan train MODEL``: its options, and the command (model defaults, ``--set`` values,
the run-folder policy of :mod:`scratchgan.runs`, data-parallel launch, the Trainer)."""
from __future__ import annotations

import logging
import os
import pathlib
import shlex
import sys

import numpy as np

from ..data.datasets import DATASETS, dataset_info
from ..data.idx import DataNotFoundError, IDXError
from ..data.standin import load_or_standin
from ..distributed import convert_sync_batchnorm, env_info, init_from_env
from ..distributed.launch import launch
from ..rng import manual_seed
from ..runs import (DRY_RUN, RunFolderError, check_new_run, clear_run, default_run_folder,
                    has_checkpoint, open_resume)
from ..checkpoint import CheckpointWriteError
from ..train import NonFiniteLossError, Trainer, TrainingInterrupted
from .common import (EPILOG, INTERRUPTED, LOOP_KEYS, MODEL_NAMES, RUN_FAILED, FloatErrors,
                     HelpFormatter, check_data_dir, check_device, check_writable_dir, key_value,
                     nonneg_int, parse_hyper, plain, plain_notes, positive_float, positive_int,
                     toy_data_modes)
from .compat import dataset_problem, usable_datasets

__all__ = ["RESUME_CHANGEABLE", "TRAIN_DEFAULTS", "register", "run"]

#: options that ``train --resume`` may change (the rest come from the run)
RESUME_CHANGEABLE = ("steps", "epochs", "device", "no_progress", "sample_every",
                     "checkpoint_every", "log_every", "step_mode", "data_dir")
#: defaults of options that --resume takes from the run when not given
TRAIN_DEFAULTS = {"device": "cpu", "dtype": "float32", "seed": 0, "step_mode": "auto",
                  "log_every": 10}


def _model_class(parser, name, registry):
    reg = registry()
    if reg is None:
        parser.error("scratchgan.models is not available in this installation; cannot build "
                     f"model {name!r}")
    if name not in reg:
        parser.error(f"unknown model {name!r}; valid choices are {', '.join(sorted(reg))}")
    return reg[name]


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
        both = [option_of[k] for k in lr_keys if k in option_of]
        if both:
            parser.error(f"--lr {args.lr:g} and {' and '.join(both)} both set the learning rate; "
                         f"give it once")
        for k in lr_keys:
            hyper[k] = args.lr
            option_of[k] = f"--lr {args.lr:g}"
    return hyper, option_of


def _check_pair(parser, name, cls, dataset, hyper):
    """Refuse a model and data set that cannot work together (:mod:`.compat`), naming the
    data sets that work for the model; a model that cannot be built with these
    hyperparameters for any data set is refused for them."""
    problem = dataset_problem(cls, dataset, hyper)
    if problem is None:
        return
    usable = usable_datasets(cls, hyper)
    if not usable:
        parser.error(f"cannot build {name} for {dataset}: {problem}")
    hint = ""
    a = dataset_info(dataset).get("a_channels")        # an image-to-image set's A channels
    if a is not None and "a_channels" in (getattr(cls, "defaults", None) or {}) and \
            "a_channels" not in hyper and \
            dataset_problem(cls, dataset, {**hyper, "a_channels": a}) is None:
        hint = f" (or train on {dataset} with --set a_channels={a})"
    parser.error(f"{name} cannot train on {dataset}: {problem}; data sets that work for {name}"
                 f"{' with these --set values' if hyper else ''}: {', '.join(usable)}{hint}")


def _resume_settings(parser, args, defaults, hyper, option_of, saved, out):
    """Check the options given with --resume against the run's saved config; a conflict is
    an error naming both values."""
    conflicts = []

    def check(option, given, have, shown=None, have_text=None):
        if given is not None and plain(given) != plain(have):
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


def run(args, parser, registry):
    """``scratchgan train``: build the model, apply the run-folder policy
    (:mod:`scratchgan.runs`), load the data and train; returns the exit status."""
    cls = _model_class(parser, args.model, registry)
    comm = None
    if args.gpus > 1 or args.sync_bn:
        info = env_info()
        if info is None:
            if args.sync_bn and args.gpus == 1:
                parser.error("--sync-bn needs --gpus N with N > 1")
            if (args.device or TRAIN_DEFAULTS["device"]) != "cuda":
                parser.error(f"--gpus {args.gpus} needs --device cuda (NCCL)")
            # this process becomes the launcher: one rank per GPU runs this same command
            # (the ranks see RANK/WORLD_SIZE and train instead of launching again)
            return launch([sys.executable, "-m", "scratchgan"] + args._argv, args.gpus)
        if info["world_size"] != args.gpus:
            parser.error(f"--gpus {args.gpus} but the launcher started {info['world_size']} ranks")
        comm = init_from_env(args.device or TRAIN_DEFAULTS["device"])
    defaults = dict(cls.defaults)
    dataset = args.dataset or cls.default_dataset or defaults.get("dataset")
    if dataset not in DATASETS:
        parser.error(f"unknown dataset {dataset!r}; valid choices are {', '.join(DATASETS)}")
    # every argument is checked before the run folder is looked at, and before anything is
    # read or written
    hyper, option_of = _given_hyper(parser, args, cls, defaults)
    if args.device is not None:
        check_device(parser, args.device)
    data_dir = check_data_dir(parser, args.data_dir)
    if not args.resume:
        _check_pair(parser, args.model, cls, dataset, hyper)
    out = pathlib.Path(args.out) if args.out else default_run_folder(args.model, dataset,
                                                                     args.dry_run)
    check_writable_dir(parser, out, "--out" if args.out else "the run folder")
    saved, resume_state, changed, clear = None, None, {}, False
    if args.resume:
        try:
            resume_state = open_resume(out)
        except RunFolderError as e:
            parser.error(str(e))
        saved = dict(resume_state[0]["config"])
        _resume_settings(parser, args, defaults, hyper, option_of, saved, out)
        # the run's data folder, unless another is given
        data_dir = data_dir or saved.get("data_dir")
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
        if args.data_dir and data_dir != saved.get("data_dir"):
            changed["data_dir"] = [saved.get("data_dir"), data_dir]
        device = check_device(parser, opts["device"] or "cpu")
        sample_every, checkpoint_every = opts["sample_every"], opts["checkpoint_every"]
        log_every = int(opts["log_every"] or TRAIN_DEFAULTS["log_every"])
        step_mode = opts["step_mode"] or TRAIN_DEFAULTS["step_mode"]
    else:
        if comm is None or comm.rank == 0:   # rank 0 checks (and clears) the run folder
            try:
                clear = check_new_run(out, overwrite=args.overwrite, dry_run=args.dry_run)
            except RunFolderError as e:
                parser.error(str(e))
        device = check_device(parser, args.device or TRAIN_DEFAULTS["device"])
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
    data_range = cls.data_range or (0.0, 1.0)
    try:
        # a dry run never downloads: without the files it trains on stand-in images
        with plain_notes("scratchgan train"):
            x, y, standin_note = load_or_standin(dataset, data_range, data_dir=data_dir,
                                                 split="train", limit=limit,
                                                 download=not dry_run, standin=dry_run)
    except (DataNotFoundError, IDXError) as e:
        print(f"scratchgan train: error: {e}", file=sys.stderr)
        return RUN_FAILED
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
        k = int(model.batches_per_step())
        model.set_preview(x)               # translation models: preview pairs of the data
    except (ValueError, TypeError) as e:
        parser.error(f"cannot build {args.model} for {dataset}: {e}")
    if k * batch_size > len(x):
        parser.error(f"one {args.model} step needs {k} batches of {batch_size}, more than the "
                     f"{len(x)} examples")
    run = {"device": device, "steps": steps, "epochs": epochs, "sample_every": sample_every,
           "checkpoint_every": checkpoint_every, "log_every": log_every, "step_mode": step_mode}
    if saved is not None:
        config = dict(saved, **run, data_dir=data_dir)
    else:
        config = {"model": args.model, "dataset": dataset, "data_shape": list(x.shape[1:]),
                  "num_classes": info["num_classes"], "hyper": hyper, "dtype": dtype,
                  "seed": seed, "batch_size": batch_size, "limit": limit,
                  "data_range": list(data_range), "dry_run": dry_run,
                  "standin": standin_note is not None, "data_dir": data_dir, **run}
    if comm is not None:
        config["gpus"] = int(comm.world_size)
        config["sync_bn"] = bool(args.sync_bn)
        if args.sync_bn:
            for net in model.networks().values():
                convert_sync_batchnorm(net, comm)
    if comm is not None and comm.rank > 0:
        clear = False
        sys.stdout = open(os.devnull, "w")            # rank 0 reports
    trainer = Trainer(model, x, y, batch_size=batch_size, epochs=epochs, steps=steps,
                      out_dir=out, seed=seed, sample_every=sample_every,
                      checkpoint_every=checkpoint_every, progress=not args.no_progress,
                      config=config, modes=toy_data_modes(dataset), step_mode=step_mode,
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
        logging.basicConfig(level=logging.WARNING, format="scratchgan: %(message)s")
    cmd = f"scratchgan train {args.model} --resume --out {shlex.quote(str(out))}"
    float_errors = FloatErrors()
    try:
        with float_errors:
            summary = trainer.fit()
    except KeyboardInterrupt as e:
        # the first Ctrl-C ends the run with a checkpoint (TrainingInterrupted); a second one
        # (during the last step, the checkpoint or the final pictures) aborts what is left
        first = e if isinstance(e, TrainingInterrupted) else \
            e.__context__ if isinstance(e.__context__, TrainingInterrupted) else None
        if first is not None:
            print(f"\n{first}", file=sys.stderr)
        else:
            print("\ninterrupted", file=sys.stderr)
        if has_checkpoint(out):
            print(f"resume with: {cmd}", file=sys.stderr)
        else:
            print(f"no checkpoint was written; start over with: scratchgan train {args.model} "
                  f"--overwrite --out {shlex.quote(str(out))}", file=sys.stderr)
        return INTERRUPTED
    except NonFiniteLossError as e:
        extra = float_errors.summary()
        print(f"scratchgan train: error: {e}" + (f" (NumPy floating-point errors before it: "
                                                 f"{extra})" if extra else ""), file=sys.stderr)
        return RUN_FAILED
    except CheckpointWriteError as e:                  # says what is kept and how to resume
        print(f"scratchgan train: error: {e}", file=sys.stderr)
        return RUN_FAILED
    except (FileNotFoundError, ValueError) as e:
        if isinstance(e, ValueError) and not str(e).startswith("resume"):
            raise
        print(f"scratchgan train: error: {e}", file=sys.stderr)
        return RUN_FAILED
    if float_errors.counts:
        print(f"scratchgan train: note: NumPy reported floating-point errors during training: "
              f"{float_errors.summary()}; the losses stayed finite", file=sys.stderr)
    losses = " ".join(f"{k}={v:.4g}" for k, v in summary["losses"].items()
                      if isinstance(v, float))
    print(f"done: {summary['step']} steps in {summary['time']:.1f}s; {losses}")
    print(f"samples: {summary['samples']}")
    print(f"checkpoint: {summary['checkpoint']}")
    return 0


def register(sub):
    """Add the ``train`` subcommand to the subparsers ``sub``."""
    t = sub.add_parser("train", help="train a model (defaults: the paper's settings)",
                       description="Train MODEL. Defaults come from the model class (paper "
                                   "hyperparameters and default data set).",
                       formatter_class=HelpFormatter, epilog=EPILOG)
    t.add_argument("model", choices=MODEL_NAMES, help="which model: %(choices)s")
    t.add_argument("--dataset", choices=DATASETS, metavar="NAME",
                   help="data set: %(choices)s (default: the model's; a data set the model "
                        "cannot train on is refused, naming those it can)")
    g = t.add_mutually_exclusive_group()
    g.add_argument("--epochs", type=positive_int,
                   help="passes over the training data (default: the model's, unless --steps)")
    g.add_argument("--steps", type=positive_int,
                   help=f"total train_step calls (default: the model's epochs; "
                        f"{DRY_RUN['steps']} with --dry-run)")
    t.add_argument("--batch-size", type=positive_int,
                   help="examples per minibatch (default: the model's)")
    t.add_argument("--lr", type=positive_float,
                   help="learning rate, all of the model's (default: the model's; not together "
                        "with --set lr=...)")
    t.add_argument("--device", help="cpu or cuda (default cpu; with --resume the run's)")
    t.add_argument("--dtype", choices=("float32", "float64"),
                   help="default float32; with --resume the run's")
    t.add_argument("--seed", type=nonneg_int, help="random seed (default 0)")
    t.add_argument("--out", help="output folder (default runs/MODEL-DATASET, "
                                 "runs/MODEL-DATASET-dry-run with --dry-run)")
    t.add_argument("--data-dir", help="an existing folder holding mnist/ and fashion-mnist/ IDX "
                                      "files (default: $SCRATCHGAN_DATA, then "
                                      "~/.cache/scratchgan; with --resume the run's)")
    t.add_argument("--limit", type=positive_int,
                   help=f"use only the first N training examples (default: all; "
                        f"{DRY_RUN['limit']} with --dry-run)")
    r = t.add_mutually_exclusive_group()
    r.add_argument("--resume", action="store_true",
                   help="continue the run in OUT from OUT/last.ckpt.npz with the run's own "
                        "settings (more --steps/--epochs, --device, --log-every ... may change)")
    r.add_argument("--overwrite", action="store_true",
                   help="train into OUT even though it holds a run: that run's files are "
                        "deleted first")
    t.add_argument("--dry-run", action="store_true",
                   help=f"{DRY_RUN['steps']} steps on {DRY_RUN['limit']} examples (for CI)")
    t.add_argument("--sample-every", type=positive_int,
                   help="also save samples every S steps (default: at epoch ends only)")
    t.add_argument("--checkpoint-every", type=positive_int,
                   help="also checkpoint every S steps (default: at epoch ends and the end "
                        "only)")
    t.add_argument("--set", action="append", type=key_value, metavar="KEY=VALUE",
                   help="override a model hyperparameter (repeatable), e.g. --set k=2 "
                        "(default: the model's defaults)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--step-mode", choices=("auto", "eager", "graph"),
                   help="GPU steps: auto = replay each step from a captured CUDA graph where the "
                        "model allows it, else eager with the reason printed (default); eager = "
                        "plain train_step; graph = fail if a step cannot be captured")
    t.add_argument("--log-every", type=positive_int,
                   help="read the losses back, log them and check them for NaN every N steps "
                        "(default 10; on the GPU each read waits for the device)")
    t.add_argument("--gpus", type=positive_int, default=1,
                   help="data-parallel over N GPUs: one process per GPU through "
                        "scratchgan.distributed.launch, NCCL gradient averaging; --batch-size "
                        "is per GPU (default 1)")
    t.add_argument("--sync-bn", action="store_true",
                   help="with --gpus N: BatchNorm statistics over all GPUs' examples (default: "
                        "per GPU, as ChainerMN and DDP)")
    t.set_defaults(func=run)
    return t
