"""``scratchgan reproduce``: run a paper study, list the studies, regenerate the tables.

    python -m scratchgan.reproduce STUDY [--seeds 0,1,2] [--device cuda] [--resume]
        [--time-limit SECONDS] [--schedule full|short] [--dry-run] [--out DIR]
        [--data-dir DIR] [--ledger PATH]
    python -m scratchgan.reproduce --list
    python -m scratchgan.reproduce --report

A run trains the study's model with the library's Trainer in pieces of ``eval_every``
updates, scores it with the study's evaluators after every piece, and appends one ledger
row per recorded metric and seed when a seed finishes (never in a dry run). Exit status:
0 done, 3 stopped by ``--time-limit`` (the resume command is printed), 1 a failed run,
2 a usage error.
"""
from __future__ import annotations

import argparse
import datetime
import pathlib
import shlex
import subprocess
import sys
import tempfile
import time
from typing import List, Optional

from ..metrics.standard import METRIC_INFO
from .ledger import LedgerError, append_rows, read_ledger
from .report import DEFAULT_LEDGER, DEFAULT_RESULTS, write_report
from .runner import RunnerError, RunOptions, run_seed
from .study import StudyError, list_studies, load_study

__all__ = ["EXIT_FAILED", "EXIT_STOPPED", "EXIT_USER_ERROR", "DESCRIPTION", "EPILOG", "add_arguments",
           "build_parser", "ledger_rows", "main", "run"]

EXIT_STOPPED = 3
#: a study, option, run folder or ledger that cannot be used (before anything is written)
EXIT_USER_ERROR = 2
#: a run that failed once started (an error while training or writing)
EXIT_FAILED = 1
PROG = "scratchgan reproduce"


EPILOG = ("exit status: 0 done; 2 a user error (an unknown study, a bad key in a study file, "
          "a run folder that needs --resume or has no run to resume, a checkpoint over the "
          "size limit), reported before anything is written; 1 a run that failed once "
          "started; 3 stopped by --time-limit with a checkpoint (the resume command is "
          "printed)")
DESCRIPTION = ("Reproduce a paper's table row group (a study in scratchgan/studies/) and "
               "record the results in the ledger.")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``scratchgan reproduce`` (shared by ``python -m scratchgan.reproduce``)."""
    p.add_argument("study", nargs="?", help="a study name (see --list) or a .toml file")
    p.add_argument("--list", action="store_true",
                   help="every study: paper, metrics, schedules and status from the ledger")
    p.add_argument("--report", action="store_true",
                   help="regenerate reproduction.md and the study pages from the ledger")
    p.add_argument("--seeds", default=None,
                   help="comma-separated seeds, e.g. 0,1,2 (default: the study's seeds)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--schedule", default="full", choices=["full", "short"],
                   help="full: the authors' updates; short: the study's short schedule")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="stop cleanly after the step that passes this many seconds, with a "
                        "checkpoint, and print the command that resumes")
    p.add_argument("--dry-run", action="store_true",
                   help="a few updates on stand-in data (when the files are missing) with "
                        "small evaluations; writes only under --out (a temporary folder by "
                        "default) and never to the ledger")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="run folder (one seed-S folder per seed); default runs/reproduce/STUDY")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="folder holding mnist/ (and the other data sets)")
    p.add_argument("--ledger", default=None, metavar="PATH",
                   help=f"the ledger (default: the checkout's {DEFAULT_LEDGER.relative_to(DEFAULT_LEDGER.parents[2])})")
    p.add_argument("--results-dir", default=None, metavar="DIR",
                   help="where --report writes reproduction.md and studies/ (default: the "
                        "ledger's folder)")
    p.add_argument("--studies-dir", default=None, metavar="DIR", help=argparse.SUPPRESS)
    p.add_argument("--checkpoint-limit-mib", type=float, default=16.0, metavar="MIB",
                   help="the largest checkpoint or runner state allowed (default 16)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _seeds(parser, text):
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds expects comma-separated integers such as 0,1,2, got {text!r}")
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        parser.error(f"--seeds expects distinct integers >= 0, got {text!r}")
    return seeds


def _commit() -> str:
    root = pathlib.Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def ledger_rows(study, seed, state, device, command, commit, date):
    """The ledger rows of a finished seed: one per metric its last evaluation records."""
    last = state["evaluations"][-1]
    variant, variant_note = study.variant_for(state["schedule"])
    rows = []
    for metric in last["recorded"]:
        p = study.paper_entry(metric) or {}
        label, unit, direction = METRIC_INFO.get(metric, (metric, "", "higher"))
        value = last["metrics"][metric]
        spread = last["metrics"].get(f"{metric}_std")
        rows.append({
            "study": study.name, "title": study.title, "paper": study.citation,
            "model": study.model, "variant": variant, "variant_note": variant_note,
            "metric": metric, "metric_label": label, "unit": unit, "seed": int(seed),
            "value": value, "spread": spread,
            "paper_value": p.get("value"), "paper_spread": p.get("spread"),
            "paper_source": p.get("source"), "protocol": p.get("protocol"),
            "protocol_matches": bool(p.get("protocol_matches", True)),
            "protocol_note": p.get("protocol_note", "") if p else study.paper_note,
            "target": p.get("target"), "target_by": p.get("target_by"),
            "direction": p.get("direction", direction),
            "updates": int(state["updates"]), "authors_updates": study.authors_updates,
            "authors_updates_source": study.schedule["full_source"], "status": "",
            "historical": False, "device": device, "date": date, "commit": commit,
            "command": command, "note": ""})
    return rows


def _status_of(rows, study):
    """The status of each metric's latest row per seed in the study's own setting (its
    variant); rows of other variants are only counted."""
    mine = [r for r in rows if r["study"] == study.name]
    own = [r for r in mine if r["variant"] == study.variant]
    if not own:
        return "not run" + (f" (only {len(mine)} rows of other variants)" if mine else "")
    latest = {}
    for r in own:
        latest[(r["metric"], r["seed"])] = r
    text = "; ".join(f"{m} seed {sd}: {r['status']}" for (m, sd), r in latest.items())
    others = len(mine) - len(own)
    return text + (f" (and {others} rows of other variants)" if others else "")


def _list(args) -> int:
    ledger = pathlib.Path(args.ledger) if args.ledger else DEFAULT_LEDGER
    rows = read_ledger(ledger)
    for path in list_studies(args.studies_dir):
        s = load_study(path)
        metrics = ", ".join(p["metric"] for p in s.paper) or f"none ({s.paper_note})"
        evaluators = ", ".join(e["name"] for e in s.evaluations)
        print(f"{s.name}: {s.title}")
        print(f"    paper: {s.citation}; model {s.model}"
              + (f", variant {s.variant}" if s.variant else ""))
        print(f"    paper metrics: {metrics}; evaluators: {evaluators}")
        print(f"    schedule: full {s.schedule['full']:,} updates ({s.schedule['full_source']}); "
              f"short {s.schedule['short']:,}; evaluation every {s.schedule['eval_every']:,}")
        print(f"    status: {_status_of(rows, s)}")
    return 0


def _resume_command(argv: List[str]) -> str:
    argv = list(argv)
    if "--resume" not in argv:
        argv.append("--resume")
    return "python -m scratchgan.reproduce " + shlex.join(argv)


def _spawn_seeds(argv, seeds, args) -> int:
    """On cuda: one process per seed, side by side; the exit status is the worst."""
    procs = []
    base = [a for a in argv]
    i = 0
    cleaned = []
    while i < len(base):                       # drop --seeds X / --seeds=X
        if base[i] == "--seeds":
            i += 2
            continue
        if base[i].startswith("--seeds="):
            i += 1
            continue
        cleaned.append(base[i])
        i += 1
    for s in seeds:
        cmd = [sys.executable, "-m", "scratchgan.reproduce", *cleaned, "--seeds", str(s)]
        print(f"seed {s}: {shlex.join(cmd)}", flush=True)
        procs.append(subprocess.Popen(cmd))
    codes = [p.wait() for p in procs]
    for bad in (EXIT_USER_ERROR, EXIT_FAILED):
        if bad in codes:
            return bad
    return EXIT_STOPPED if EXIT_STOPPED in codes else max(codes)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    return run(parser.parse_args(argv), parser, argv)


def run(args, parser, argv: List[str]) -> int:
    """Carry out parsed ``reproduce`` arguments; ``argv`` is what the resume command repeats."""
    modes = sum(bool(x) for x in (args.list, args.report, args.study))
    if modes != 1:
        parser.error("give one of STUDY, --list or --report")
    try:
        if args.list:
            return _list(args)
        if args.report:
            ledger = pathlib.Path(args.ledger) if args.ledger else DEFAULT_LEDGER
            results = pathlib.Path(args.results_dir) if args.results_dir else \
                (ledger.parent if args.ledger else DEFAULT_RESULTS)
            for path in write_report(ledger, results):
                print(path)
            return 0
        study = load_study(args.study, args.studies_dir)
    except (StudyError, LedgerError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    seeds = _seeds(parser, args.seeds) if args.seeds else list(study.seeds)
    if args.dry_run and not args.seeds:
        seeds = seeds[:1]                    # a dry run checks the path: one seed unless asked
    if args.time_limit is not None and args.time_limit <= 0:
        parser.error(f"--time-limit must be a positive number of seconds, got {args.time_limit}")
    if args.checkpoint_limit_mib <= 0:
        parser.error(f"--checkpoint-limit-mib must be positive, got {args.checkpoint_limit_mib}")
    ledger = pathlib.Path(args.ledger) if args.ledger else DEFAULT_LEDGER
    if not args.dry_run and not ledger.parent.is_dir():
        parser.error(f"the ledger's folder {ledger.parent} does not exist; pass --ledger PATH")
    if args.device == "cuda" and len(seeds) > 1:
        return _spawn_seeds(argv, seeds, args)
    tmp = None
    if args.out is not None:
        out = pathlib.Path(args.out)
    elif args.dry_run:
        tmp = tempfile.TemporaryDirectory(prefix=f"reproduce-{study.name}-")
        out = pathlib.Path(tmp.name)
    else:
        out = pathlib.Path("runs") / "reproduce" / study.name
    deadline = time.time() + args.time_limit if args.time_limit else None
    opts = RunOptions(schedule=args.schedule, device=args.device, out_dir=out,
                      data_dir=args.data_dir, dry_run=args.dry_run, resume=args.resume,
                      deadline=deadline, progress=not args.no_progress,
                      checkpoint_limit_mib=args.checkpoint_limit_mib,
                      log=lambda m: print(m, flush=True))
    command = "python -m scratchgan.reproduce " + shlex.join(argv)
    try:
        for seed in seeds:
            state = run_seed(study, seed, opts)
            if state["stopped"]:
                print(f"{study.name} seed {seed}: stopped by --time-limit at update "
                      f"{state['updates']} of {state['total_updates']}, checkpoint in "
                      f"{out / f'seed-{seed}'}. Resume with:\n  {_resume_command(argv)}",
                      flush=True)
                return EXIT_STOPPED
            if args.dry_run:
                print(f"dry run: {study.name} seed {seed}: {state['updates']} updates, "
                      f"{len(state['evaluations'])} evaluations; nothing written to the ledger")
                continue
            if not state["new_evaluations"]:
                print(f"{study.name} seed {seed}: the run in {out / f'seed-{seed}'} is complete "
                      f"at {state['updates']} updates already; nothing new for the ledger")
                continue
            date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
            n = append_rows(ledger, ledger_rows(study, seed, state, args.device, command,
                                                _commit(), date))
            print(f"{study.name} seed {seed}: {n} rows appended to {ledger}")
    except (StudyError, RunnerError, LedgerError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
