"""scratchgan.reproduce: study files, dry runs of every study, exact resume, --time-limit,
the checkpoint size limit and the ledger rows a finished run appends."""
import json
import shlex

import numpy as np
import pytest

from scratchgan.checkpoint import load_checkpoint
from scratchgan.metrics.evaluators import EvalContext, evaluator
from scratchgan.metrics.standard import generate_samples
from scratchgan.reproduce import (EXIT_STOPPED, RunOptions, StudyError, list_studies, load_study,
                                  main, read_ledger, run_seed)


@evaluator("test-sample-moments")
def _sample_moments(ctx: EvalContext, n=64):
    s = generate_samples(ctx.model, n, ctx.rng(9))
    return {"sample_mean": float(s.mean()), "sample_mean_std": float(s.std() / np.sqrt(s.size)),
            "sample_spread": float(s.std())}


TOY_STUDY = """
name = "{name}"
title = "toy GAN for the runner's tests"
citation = "none: a test study"
model = "gan"
dataset = "ring8"
seeds = [0]

[set]
toy_hidden = 8
toy_units = 8

[schedule]
batch = 50
full = 12
full_source = "a test schedule"
short = 6
eval_every = 4

[[evaluations]]
name = "test-sample-moments"
options = {{ n = 64 }}

[[paper]]
metric = "sample_spread"
value = 100.0
direction = "higher"
source = "a test figure"
protocol = "std of 64 samples"
"""


def toy_study(tmp_path, name="toy", text=TOY_STUDY):
    d = tmp_path / "studies"
    d.mkdir(exist_ok=True)
    (d / f"{name}.toml").write_text(text.format(name=name))
    return d


# -- the study files ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", list_studies(), ids=lambda p: p.stem)
def test_every_study_file_is_valid(path):
    s = load_study(path)
    assert s.name == path.stem and s.schedule["short"] <= s.schedule["full"]
    assert s.schedule["full_source"].strip()


@pytest.mark.parametrize("path", list_studies(), ids=lambda p: p.stem)
def test_dry_run_of_every_study_writes_only_under_out(path, tmp_path, monkeypatch):
    """A dry run: stand-in data (no files), two updates, every evaluator, nothing in the
    ledger, nothing outside --out (the current folder and the data cache stay empty)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SCRATCHGAN_DATA", raising=False)
    ledger = tmp_path / "results" / "ledger.jsonl"
    ledger.parent.mkdir()
    out = tmp_path / "out"
    rc = main([path.stem, "--dry-run", "--no-progress", "--out", str(out), "--ledger",
               str(ledger), "--data-dir", str(tmp_path / "no-data")])
    assert rc == 0
    assert not ledger.exists() and list(cwd.iterdir()) == []
    assert not (tmp_path / "cache").exists() and not (tmp_path / "home").exists()
    state = json.loads((out / "seed-0" / "study-state.json").read_text())
    assert [e["updates"] for e in state["evaluations"]] == [1, 2]
    assert all(np.isfinite(v) for e in state["evaluations"] for k, v in e["metrics"].items()
               if isinstance(v, float) and k in e["recorded"])


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('model = "gan"', 'model = "nope"'), "model = 'nope' is not a registered"),
    (lambda t: t.replace("full = 12", "full = \"12\""), "schedule.full must be an integer"),
    (lambda t: t.replace("eval_every = 4\n", ""), "missing required key schedule.eval_every"),
    (lambda t: t.replace('name = "test-sample-moments"', 'name = "nope"'),
     "evaluations[0]: name = 'nope' is not a registered evaluator"),
    (lambda t: t + "\ncolour = 1\n", "unknown key 'colour'"),
    (lambda t: t.replace('direction = "higher"', 'direction = "up"'), "direction must be"),
    (lambda t: t.replace('title = "toy', 'name2 = 1\ntitle = "toy'), "unknown key 'name2'"),
    (lambda t: t.replace("short = 6", "short = 60"), "schedule.short (60) is longer"),
    (lambda t: t.replace("n = 64", "n_sample = 64"),
     "test-sample-moments takes no option 'n_sample'; its options: n"),
    (lambda t: t.replace('title = "toy', 'variant = "x"\ntitle = "toy'), "needs variant_note"),
])
def test_study_errors_name_the_file_and_key(tmp_path, edit, message):
    d = toy_study(tmp_path, text=edit(TOY_STUDY))
    with pytest.raises(StudyError) as e:
        load_study("toy", d)
    assert message in str(e.value) and str(d / "toy.toml") in str(e.value)


def test_unknown_study_and_bad_set_key(tmp_path, capsys):
    d = toy_study(tmp_path)
    assert main(["missing", "--studies-dir", str(d), "--dry-run"]) == 2
    assert "unknown study 'missing'" in capsys.readouterr().err
    d = toy_study(tmp_path, text=TOY_STUDY.replace("toy_units = 8", "toy_unitz = 8"))
    out = tmp_path / "out"
    assert main(["toy", "--studies-dir", str(d), "--out", str(out), "--ledger",
                 str(tmp_path / "l.jsonl"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "[set] toy_unitz is not a hyperparameter of gan" in err and "toy.toml" in err
    assert not (tmp_path / "l.jsonl").exists()


# -- runs, resume, time limit ---------------------------------------------------------------------------------
def _final(out):
    st = load_checkpoint(out / "seed-0" / "last.ckpt.npz")
    state = json.loads((out / "seed-0" / "study-state.json").read_text())
    evals = [(e["updates"], e["metrics"]) for e in state["evaluations"]]
    return st["model"], evals


def _flat(d, prefix=""):
    out = {}
    items = d.items() if isinstance(d, dict) else enumerate(d)
    for k, v in items:
        if isinstance(v, (dict, list, tuple)):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_stopped_at_every_step_and_resumed_is_bit_identical(tmp_path):
    """A run stopped after every single update (a deadline in the past) and resumed each
    time ends with the same parameters, bit for bit, and the same evaluation record as an
    uninterrupted run."""
    d = toy_study(tmp_path)
    study = load_study("toy", d)
    quiet = dict(progress=False, log=lambda m: None)
    ref = run_seed(study, 0, RunOptions(out_dir=tmp_path / "a", **quiet))
    assert not ref["stopped"] and [e["updates"] for e in ref["evaluations"]] == [4, 8, 12]
    stops, resume = [], False
    while True:
        st = run_seed(study, 0, RunOptions(out_dir=tmp_path / "b", resume=resume, deadline=0.0,
                                           **quiet))
        resume = True
        if not st["stopped"]:
            break
        stops.append(st["updates"])
    # each call trains one update; one that ends a piece goes on to evaluate and stops one later
    assert stops == [1, 2, 3, 5, 6, 7, 9, 10, 11]
    a_model, a_evals = _final(tmp_path / "a")
    b_model, b_evals = _final(tmp_path / "b")
    fa, fb = _flat(a_model), _flat(b_model)
    assert fa.keys() == fb.keys()
    for k in fa:
        if isinstance(fa[k], np.ndarray):
            assert fa[k].dtype == fb[k].dtype and np.array_equal(fa[k], fb[k]), k
        else:
            assert fa[k] == fb[k], k
    assert a_evals == b_evals
    losses = json.loads((tmp_path / "a" / "seed-0" / "study-state.json").read_text())
    assert all(set(e["losses"]) >= {"loss_d", "loss_g"} for e in losses["evaluations"])


def test_time_limit_prints_the_resume_command_and_the_ledger_gets_rows(tmp_path, capsys):
    d = toy_study(tmp_path)
    ledger = tmp_path / "ledger.jsonl"
    argv = ["toy", "--studies-dir", str(d), "--out", str(tmp_path / "o"), "--ledger",
            str(ledger), "--no-progress", "--time-limit", "1e-9"]
    assert main(argv) == EXIT_STOPPED
    text = capsys.readouterr().out
    assert "stopped by --time-limit at update 1 of 12" in text and not ledger.exists()
    cmd = text.split("Resume with:\n")[1].strip().splitlines()[0]
    args = shlex.split(cmd)
    assert args[:3] == ["python", "-m", "scratchgan.reproduce"] and "--resume" in args
    args = [a for a in args[3:]]
    i = args.index("--time-limit")
    del args[i:i + 2]
    assert main(args) == 0
    rows = read_ledger(ledger)
    assert [(r["study"], r["metric"], r["seed"], r["updates"], r["authors_updates"])
            for r in rows] == [("toy", "sample_mean", 0, 12, 12), ("toy", "sample_spread", 0, 12, 12)]
    spread = rows[1]
    assert spread["paper_value"] == 100.0 and spread["status"].startswith("short by")
    assert rows[0]["status"].startswith("not comparable:") and rows[0]["spread"] is not None
    assert "--resume" in rows[0]["command"] and rows[0]["device"] == "cpu"


def test_existing_run_needs_resume_and_resume_needs_a_run(tmp_path, capsys):
    d = toy_study(tmp_path)
    common = ["toy", "--studies-dir", str(d), "--out", str(tmp_path / "o"), "--ledger",
              str(tmp_path / "l.jsonl"), "--no-progress", "--schedule", "short"]
    assert main(common + ["--resume"]) == 2
    assert "--resume: no run in" in capsys.readouterr().err
    assert main(common) == 0
    assert main(common) == 2
    assert "already holds a run; continue it with --resume" in capsys.readouterr().err
    rows = read_ledger(tmp_path / "l.jsonl")
    assert {r["updates"] for r in rows} == {6} and {r["authors_updates"] for r in rows} == {12}
    assert main(common[:-2] + ["--resume"]) == 0          # the full schedule continues it
    assert {r["updates"] for r in read_ledger(tmp_path / "l.jsonl")} == {6, 12}
    assert main(common[:-2] + ["--resume"]) == 0          # complete: no duplicate rows
    assert "complete at 12 updates already" in capsys.readouterr().out
    assert len(read_ledger(tmp_path / "l.jsonl")) == 4


def test_checkpoint_over_the_limit_is_refused_before_anything_is_written(tmp_path, capsys):
    d = toy_study(tmp_path)
    out = tmp_path / "o"
    assert main(["toy", "--studies-dir", str(d), "--out", str(out), "--ledger",
                 str(tmp_path / "l.jsonl"), "--no-progress", "--checkpoint-limit-mib",
                 "0.0001"]) == 2
    err = capsys.readouterr().err
    assert "MiB, over the 0.0001 MiB limit; pass --checkpoint-limit-mib" in err
    assert not out.exists()


def test_list_shows_every_study_with_its_status(tmp_path, capsys):
    d = toy_study(tmp_path)
    assert main(["--list", "--studies-dir", str(d), "--ledger", str(tmp_path / "l.jsonl")]) == 0
    text = capsys.readouterr().out
    assert "toy: toy GAN for the runner's tests" in text and "status: not run" in text
    assert "full 12 updates (a test schedule); short 6" in text
    assert main(["--list"]) == 0                      # the package's studies, committed ledger
    text = capsys.readouterr().out
    for p in list_studies():
        assert f"{p.stem}: " in text


def test_usage_errors(capsys):
    with pytest.raises(SystemExit):
        main([])
    with pytest.raises(SystemExit):
        main(["gan-official", "--seeds", "a,b"])
    assert "--seeds expects" in capsys.readouterr().err


def test_short_set_makes_a_short_run_a_variant(tmp_path):
    text = TOY_STUDY.replace("short = 6\n", 'short = 6\nshort_set = {{ toy_hidden = 4 }}\n'
                             'short_note = "narrower G for the short run"\n')
    d = toy_study(tmp_path, text=text)
    ledger = tmp_path / "l.jsonl"
    assert main(["toy", "--studies-dir", str(d), "--out", str(tmp_path / "o"), "--ledger",
                 str(ledger), "--no-progress", "--schedule", "short"]) == 0
    rows = read_ledger(ledger)
    assert {r["variant"] for r in rows} == {"short-set"} and {r["status"] for r in rows} == {"variant"}
    assert rows[0]["variant_note"] == "narrower G for the short run"
    d = toy_study(tmp_path, text=text.replace('short_note = "narrower G for the short run"\n', ""))
    with pytest.raises(StudyError, match="short_set needs schedule.short_note"):
        load_study("toy", d)


def test_seeds_on_cuda_run_side_by_side(monkeypatch, tmp_path):
    """On cuda each seed is its own process, started together; the worst exit status wins."""
    import scratchgan.reproduce.command as command
    started, codes = [], {"0": 0, "1": EXIT_STOPPED}

    class Proc:
        def __init__(self, cmd):
            started.append(cmd)
            self.seed = cmd[-1]

        def wait(self):
            assert len(started) == 2                       # both started before any wait
            return codes[self.seed]

    monkeypatch.setattr(command.subprocess, "Popen", Proc)
    d = toy_study(tmp_path)
    rc = main(["toy", "--studies-dir", str(d), "--device", "cuda", "--seeds", "0,1", "--out",
               str(tmp_path / "o"), "--ledger", str(tmp_path / "l.jsonl")])
    assert rc == EXIT_STOPPED
    assert [c[-2:] for c in started] == [["--seeds", "0"], ["--seeds", "1"]]
    assert all("--seeds" not in c[:-2] and c[1:3] == ["-m", "scratchgan.reproduce"]
               for c in started)


def test_dry_run_of_a_set_made_from_missing_idx_files_uses_shaped_standins(tmp_path, monkeypatch):
    """stacked-mnist is made from the MNIST files; without them a dry run trains on stand-in
    digits shaped like it (3 x 32 x 32, 1,000 classes)."""
    monkeypatch.delenv("SCRATCHGAN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    text = TOY_STUDY.replace(
        'dataset = "ring8"', 'dataset = "stacked-mnist"').replace(
        "toy_hidden = 8\ntoy_units = 8", "g_hidden = 16\nd_units = 8")
    d = toy_study(tmp_path, text=text)
    out = tmp_path / "out"
    assert main(["toy", "--studies-dir", str(d), "--dry-run", "--no-progress", "--out", str(out),
                 "--data-dir", str(tmp_path / "none")]) == 0
    cfg = json.loads((out / "seed-0" / "config.json").read_text())
    assert cfg["data_shape"] == [3, 32, 32] and cfg["standin"] is True
