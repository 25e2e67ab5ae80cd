"""The conditional members of the VAE family against their papers: Sohn et al.'s CVAE on MNIST
quadrant completion and Kingma et al.'s semi-supervised M2 (and M1+M2) with 100 labels.

``cvae``  for each number of revealed quadrants (1, 2, 3): the baseline network alone
          (``cvae`` model, mode "baseline"), then the CVAE on top of the trained baseline
          (frozen, ``train_baseline=False``: the public reproduction's two stages); on the
          10,000 test images the negative conditional log-likelihood per image (nats, grey
          pixels scored with the Bernoulli cross-entropy, only the hidden pixels): the
          baseline's masked cross-entropy, and for the CVAE the importance-sampled
          -log p(y|x) with S = ``--samples`` draws of q(z|x,y) and the negative ELBO (10 draws,
          what the reproduction reports). Reference: the public reproduction (Pyro tutorial)
          baseline 100.4 / 61.9 / 25.4, CVAE 71.8 / 51.0 / 24.2. Picture: inputs, truth,
          baseline, CVAE samples.
``m2``    M2 (``--variant m2``) or M1+M2 (``--variant m1m2``) with 100 labels, 10 per class,
          for each label draw (``--seeds``, the model's ``label_seed``): test error of
          q(y|x) after ``--epochs`` epochs over the 60,000 training images (the authors ran
          3000); ``--eval-every E`` scores it every E epochs too (the run is trained in
          chunks that resume each other exactly), ``--alpha A`` replaces the paper's 0.1 on
          the labelled cross-entropy (a variant). Mean +- std beside the paper's 11.97% (M2)
          and 3.33% (M1+M2). Pictures: conditional generation (one row per class) and
          analogies (the style of a test image, every class).
``m2-supervised``  the reference M2 must beat: its classifier q(y|x) trained on the same 100
          labelled images alone (full batch, Adam 3e-4, ``--steps``), test error per draw.

Every training run goes through ``scratchgan.train.Trainer`` in its own folder under
``--work-dir`` (checkpoints every ``--checkpoint-every`` steps): ``--resume`` continues
unfinished runs and skips finished ones (their results are kept in the JSON); ``--resume`` with
more ``--epochs`` than a finished run had continues it from its checkpoint to the new total
(so a long run can be made of several short calls; seconds add up in the JSON). JSON + PNG go
to ``--out-dir`` (benchmarks/results/vae_family). ``--quick`` is a tiny CPU run (a few hundred
images, small networks, one epoch) for the tests.

    python benchmarks/vae_family_experiments.py cvae --device cuda
    python benchmarks/vae_family_experiments.py m2 --device cuda
    python benchmarks/vae_family_experiments.py m2 --variant m1m2 --device cuda
    python benchmarks/vae_family_experiments.py m2-supervised --data-dir DATA   # CPU, seconds
    python benchmarks/vae_family_experiments.py cvae --quick      # CPU smoke run
"""
from __future__ import annotations

import argparse
import json
import pathlib
import platform
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "benchmarks"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from bench_common import write_json  # noqa: E402

from scratchgan.backend import to_numpy  # noqa: E402
from scratchgan.data.quadrants import quadrant_task  # noqa: E402
from scratchgan.data.standin import load_or_standin  # noqa: E402
from scratchgan.models import get_model  # noqa: E402
from scratchgan.models.m2 import select_labelled  # noqa: E402
from scratchgan.runs import CHECKPOINT_NAME, clear_run  # noqa: E402
from scratchgan.train import Trainer  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "vae_family"
DEFAULT_WORK = ROOT / "runs" / "vae_family"
CVAE_REFERENCE = {"source": "public reproduction (Pyro CVAE tutorial), NCLL per image",
                  "baseline": {1: 100.4, 2: 61.9, 3: 25.4}, "cvae": {1: 71.8, 2: 51.0, 3: 24.2}}
M2_REFERENCE = {"source": "Kingma et al. 2014, Table 1, MNIST 100 labels (test error %)",
                "m2": 11.97, "m1m2": 3.33, "authors_epochs": 3000}


def log(*a):
    print(*a, flush=True)


def load(split, args):
    x, y, note = load_or_standin("mnist", (0.0, 1.0), data_dir=args.data_dir, split=split,
                                 limit=args.limit if split == "train" else args.test_limit,
                                 download=not args.quick, standin=args.quick)
    if note:
        log(f"note: {note}")
    return x, y, note is not None


def read_json(path):
    try:
        return json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError):
        return {}


def host():
    return {"python": platform.python_version(), "machine": platform.machine(),
            "node": platform.node()}


def train_run(model, x, y, folder, epochs, args, seed, resume=None):
    """Train ``model`` through the Trainer in ``folder`` up to ``epochs`` in all (resuming when
    ``resume`` -- by default ``--resume`` -- and a checkpoint is there; else starting over).
    Returns (seconds, steps)."""
    folder = pathlib.Path(folder)
    resume = args.resume if resume is None else resume
    resume = bool(resume and (folder / CHECKPOINT_NAME).exists())
    if not resume and folder.exists():
        clear_run(folder)
    t = Trainer(model, x, y, batch_size=args.batch or model.defaults["batch_size"],
                epochs=epochs, out_dir=folder, seed=seed, progress=not args.no_progress,
                checkpoint_every=args.checkpoint_every, log_every=100, resume=resume,
                config={"model": model.name, "hyper": model.hp, "epochs": epochs},
                epoch_outputs=False, n_samples=16)
    t0 = time.time()
    summary = t.fit()
    return time.time() - t0, int(summary.get("step", t.step))


def restore(model, folder):
    from scratchgan.checkpoint import load_checkpoint
    model.load_state_dict(load_checkpoint(pathlib.Path(folder) / CHECKPOINT_NAME)["model"])


# -- CVAE ------------------------------------------------------------------------------------
def cvae_sizes(args):
    if args.quick:
        return dict(hidden=32, latent_dim=8)
    return {}


def cvae_eval(baseline, cvae, x_test, args):
    """Per-image NCLL (means over the test set): baseline, CVAE importance-sampled, CVAE -ELBO."""
    g = np.random.default_rng(123)
    base, isll, nelbo = [], [], []
    chunk = 500
    for i in range(0, len(x_test), chunk):
        b = x_test[i:i + chunk]
        base.append(to_numpy(baseline.baseline_nll(b)))
        isll.append(to_numpy(cvae.conditional_nll(b, args.samples, rng=g)))
        nelbo.append(np.mean([to_numpy(cvae.negative_elbo(b, rng=g)) for _ in range(10)], 0))
    base, isll, nelbo = (np.concatenate(a) for a in (base, isll, nelbo))
    return {"baseline_ncll": float(base.mean()), "cvae_ncll_is": float(isll.mean()),
            "cvae_neg_elbo": float(nelbo.mean()), "baseline_ncll_sem":
                float(base.std() / np.sqrt(len(base))),
            "cvae_ncll_is_sem": float(isll.std() / np.sqrt(len(isll)))}


def cmd_cvae(args):
    out = pathlib.Path(args.out_dir)
    res_path = out / ("cvae-quick.json" if args.quick else "cvae.json")
    res = read_json(res_path) if args.resume else {}
    res.update({"experiment": "cvae quadrant completion", "quick": args.quick,
                "reference": CVAE_REFERENCE, "samples": args.samples, "host": host(),
                "device": args.device})
    res.setdefault("runs", {})
    x_tr, _, standin = load("train", args)
    x_te, _, _ = load("test", args)
    res["standin_data"] = standin
    pictures = {}
    for n in args.n_revealed:
        key = str(n)
        done = res["runs"].setdefault(key, {})
        sizes = cvae_sizes(args)
        folder = pathlib.Path(args.work_dir) / f"cvae-q{n}"
        finished = (args.resume and "cvae_ncll_is" in done and done.get("epochs") == args.epochs)
        if finished and not all((folder / part / CHECKPOINT_NAME).exists()
                                for part in ("baseline", "cvae")):
            # the numbers are in the JSON; the models stayed on another machine
            log(f"cvae n_revealed={n}: finished earlier, its checkpoints are not here: its "
                f"numbers are kept and its completion picture is left out")
            continue
        base = get_model("cvae")((1, 28, 28), device=args.device, rng=args.seed, mode="baseline",
                                 n_revealed=n, **sizes)
        if args.resume and "baseline_seconds" in done and done.get("epochs") == args.epochs:
            restore(base, folder / "baseline")
            log(f"cvae n_revealed={n}: baseline trained already")
        else:
            log(f"cvae n_revealed={n}: baseline, {args.epochs} epochs")
            sec, steps = train_run(base, x_tr, None, folder / "baseline", args.epochs, args,
                                   args.seed)
            done.pop("cvae_ncll_is", None)
            done.update(baseline_seconds=done.get("baseline_seconds", 0) + sec,
                        baseline_steps=steps, epochs=args.epochs)
            write_json(res_path, res)
        cvae = get_model("cvae")((1, 28, 28), device=args.device, rng=args.seed + 1,
                                 train_baseline=False, n_revealed=n, **sizes)
        cvae.baseline.load_state_dict(base.baseline.state_dict())
        if args.resume and "cvae_ncll_is" in done and done.get("epochs") == args.epochs:
            restore(cvae, folder / "cvae")
            log(f"cvae n_revealed={n}: CVAE trained and evaluated already")
        else:
            log(f"cvae n_revealed={n}: CVAE on the trained baseline (frozen), {args.epochs} "
                f"epochs")
            sec, steps = train_run(cvae, x_tr, None, folder / "cvae", args.epochs, args,
                                   args.seed + 1)
            done.update(cvae_seconds=done.get("cvae_seconds", 0) + sec, cvae_steps=steps,
                        epochs=args.epochs)
            done.update(cvae_eval(base, cvae, x_te, args))
            write_json(res_path, res)
        r = res["runs"][key]
        log(f"  n={n}: baseline NCLL {r['baseline_ncll']:.2f} (ref "
            f"{CVAE_REFERENCE['baseline'][n]}), CVAE NCLL {r['cvae_ncll_is']:.2f} (IS, S="
            f"{args.samples}), -ELBO {r['cvae_neg_elbo']:.2f} (ref {CVAE_REFERENCE['cvae'][n]})")
        pictures[n] = completion_rows(base, cvae, x_te[:10])
    res["table"] = cvae_table(res)
    write_json(res_path, res)
    if pictures:
        plot_completions(pictures, out / ("cvae-quick.png" if args.quick else "cvae.png"))
    log(res["table"])
    return res


def completion_rows(base, cvae, x):
    xin, y, m = quadrant_task(x, base.hp["n_revealed"])
    shown_in = np.where(m > 0, 0.5, xin)       # hidden pixels grey
    b = to_numpy(base.complete(x, 1))[0]
    c = to_numpy(cvae.complete(x, 3, rng=np.random.default_rng(0)))
    return [shown_in, x, b] + [c[i] for i in range(3)]


def plot_completions(pictures, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = ["input", "truth", "baseline", "CVAE 1", "CVAE 2", "CVAE 3"]
    fig, axes = plt.subplots(1, len(pictures), figsize=(4.2 * len(pictures), 3.2))
    axes = np.atleast_1d(axes)
    for ax, (n, rows) in zip(axes, sorted(pictures.items())):
        grid = np.concatenate([np.concatenate(list(r[:, 0]), axis=1) for r in rows], axis=0)
        ax.imshow(grid, cmap="gray", vmin=0, vmax=1)
        ax.set_yticks([14 + 28 * i for i in range(len(names))], names, fontsize=7)
        ax.set_xticks([])
        ax.set_title(f"{n} quadrant{'s' if n > 1 else ''} revealed", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cvae_table(res):
    lines = ["| quadrants revealed | baseline NCLL | (reproduction) | CVAE NCLL, IS | CVAE -ELBO "
             "| (reproduction) | epochs |", "|---|---|---|---|---|---|---|"]
    for key in sorted(res["runs"]):
        r, n = res["runs"][key], int(key)
        if "cvae_ncll_is" not in r:
            continue
        lines.append(f"| {n} | {r['baseline_ncll']:.1f} | {CVAE_REFERENCE['baseline'][n]} | "
                     f"{r['cvae_ncll_is']:.1f} | {r['cvae_neg_elbo']:.1f} | "
                     f"{CVAE_REFERENCE['cvae'][n]} | {r.get('epochs')} |")
    return "\n".join(lines)


# -- M2 --------------------------------------------------------------------------------------
def m2_hyper(args):
    hp = {"features": "m1" if args.variant == "m1m2" else "pixels"}
    if args.alpha is not None:               # a variant: the paper's alpha is 0.1 (of N)
        hp["alpha"] = args.alpha
    if args.variant == "m1m2":
        hp["m1_steps"] = args.m1_epochs * ((args.limit or 60000) // (args.batch or 100))
    if args.quick:
        hp.update(hidden=32, latent_dim=8, m1_hidden=32, m1_latent=8)
        if args.variant == "m1m2":
            hp["m1_steps"] = 5
    return hp


def test_error(model, x, y):
    wrong = 0
    for i in range(0, len(x), 1000):
        wrong += int((to_numpy(model.predict(x[i:i + 1000])) != y[i:i + 1000]).sum())
    return 100.0 * wrong / len(x)


def run_entry(err, seconds, steps, curve, model, reached, epochs_m2, total_epochs, partial=False):
    """One label draw's record in the M2 JSON. ``reached`` counts epochs of both phases; a
    partial entry (``partial=True``) is a run still under way at its last evaluation."""
    entry = {"test_error": err, "seconds": seconds, "steps": steps, "curve": curve,
             "alpha": model.hp["alpha"], "labelled_indices": model.labelled_indices,
             "epochs_m2": epochs_m2, "epochs_m1": total_epochs - epochs_m2}
    if partial:
        entry.update(partial=True, epochs_reached=reached)
    return entry


def cmd_m2(args):
    out = pathlib.Path(args.out_dir)
    tag = args.variant + ("-quick" if args.quick else "")
    res_path = out / f"{tag}.json"
    res = read_json(res_path) if args.resume else {}
    res.update({"experiment": f"semi-supervised MNIST, 100 labels ({args.variant})",
                "quick": args.quick, "reference": M2_REFERENCE, "host": host(),
                "device": args.device, "epochs": args.epochs, "n_labels": 100})
    res.setdefault("runs", {})
    x_tr, y_tr, standin = load("train", args)
    x_te, y_te, _ = load("test", args)
    res["standin_data"] = standin
    hp = m2_hyper(args)
    total_epochs = args.epochs + (args.m1_epochs if args.variant == "m1m2" else 0)
    model = None
    for s in args.seeds:
        key = str(s)
        model = get_model("m2")((1, 28, 28), device=args.device, rng=100 + s, label_seed=s, **hp)
        folder = pathlib.Path(args.work_dir) / f"{args.variant}-labels{s}"
        prev = res["runs"].get(key, {})
        if args.resume and "test_error" in prev and not prev.get("partial") and \
                prev.get("epochs_m2") == args.epochs and \
                prev.get("epochs_m1") == total_epochs - args.epochs:
            model.attach_data(x_tr, y_tr)
            restore(model, folder)
            log(f"{args.variant} label seed {s}: done already")
            continue
        log(f"{args.variant} label seed {s}: {total_epochs} epochs")
        # train in chunks of --eval-every epochs (each chunk resumes the last exactly), scoring
        # q(y|x) on the test set after each: the learning curve
        every = args.eval_every or total_epochs
        stops = list(range(min(every, total_epochs), total_epochs, every)) + [total_epochs]
        per_epoch = len(x_tr) // (args.batch or model.defaults["batch_size"])
        curve = list(prev.get("curve", [])) if args.resume else []
        sec = 0.0
        for i, e in enumerate(stops):
            dt, steps = train_run(model, x_tr, y_tr, folder, e, args, 1000 + s,
                                  resume=args.resume if i == 0 else True)
            sec += dt
            if steps > e * per_epoch:     # a resumed checkpoint is already past this stop
                continue
            err = test_error(model, x_te, y_te)
            curve = [c for c in curve if c["epoch"] < e] + [{"epoch": e, "test_error": err}]
            if len(stops) > 1:
                log(f"  epoch {e}: test error {err:.2f}%")
            if e < total_epochs:
                # a run stopped from outside (a time limit) keeps its curve so far: the entry
                # says it is partial, and --resume continues it rather than skipping it
                res["runs"][key] = run_entry(err, prev.get("seconds", 0) + sec, steps, curve,
                                             model, e, args.epochs, total_epochs, partial=True)
                write_json(res_path, res)
        res["runs"][key] = run_entry(err, prev.get("seconds", 0) + sec, steps, curve, model,
                                     total_epochs, args.epochs, total_epochs)
        log(f"  test error {err:.2f}% after {args.epochs} epochs ({sec:.0f} s)")
        write_json(res_path, res)
    errs = [r["test_error"] for r in res["runs"].values() if not r.get("partial")]
    res["summary"] = {"mean": float(np.mean(errs)), "std": float(np.std(errs, ddof=1))
                      if len(errs) > 1 else None, "n_draws": len(errs),
                      "paper": M2_REFERENCE[args.variant]}
    write_json(res_path, res)
    if model is not None:
        plot_m2(model, x_te, out / f"{tag}.png", res)
    log(f"{args.variant}: test error {res['summary']['mean']:.2f}% +- "
        f"{res['summary']['std']} over {len(errs)} label draws (paper "
        f"{M2_REFERENCE[args.variant]}%), {args.epochs} epochs against the authors' 3000")
    return res


def fit_classifier_alone(model, x_tr, y_tr, x_te, y_te, steps, lr):
    """M2's classifier q(y|x) of ``model`` (on its features: pixels, or M1's means for M1+M2)
    trained on the model's labelled subset of (x_tr, y_tr) alone, full batch, Adam on the mean
    cross-entropy; the test error every ``steps``/6 steps. Returns the curve."""
    from scratchgan.ops import loss as L
    from scratchgan.optim import Adam
    model.attach_data(x_tr, y_tr)
    idx = np.asarray(model.labelled_indices)
    fl = model.features(model.to_model(x_tr[idx]))
    yl = model.xp.asarray(y_tr[idx])
    clf, opt = model.classifier, Adam(model.classifier.parameters(), lr=lr)
    curve = []
    for step in range(1, steps + 1):
        opt.zero_grad()
        ce, cache = L.softmax_cross_entropy_forward(clf(fl), yl)
        clf.backward(L.softmax_cross_entropy_backward(1.0, cache), input_grad=False)
        opt.step()
        if step % max(1, steps // 6) == 0 or step == steps:
            curve.append({"step": step, "test_error": test_error(model, x_te, y_te),
                          "train_ce": float(ce)})
    return curve


def reference_inputs(args):
    """For the labels-only references (``m2-supervised``, ``m1-features``): the checked number
    of full-batch classifier steps (``--steps``), then the training and test sets."""
    steps = 20 if args.quick else args.steps
    if steps < 1:
        raise SystemExit(f"--steps: full-batch Adam steps, expected >= 1, got {steps}")
    x_tr, y_tr, standin = load("train", args)
    x_te, y_te, _ = load("test", args)
    return x_tr, y_tr, x_te, y_te, standin, steps


def cmd_m2_supervised(args):
    """The reference M2 has to beat: its classifier q(y|x) (the same MLP, initialisation and
    Adam learning rate) trained on the ``n_labels`` labelled images of each draw alone, full
    batch, on the mean cross-entropy; test error every ``--steps``/6 steps."""
    out = pathlib.Path(args.out_dir)
    x_tr, y_tr, x_te, y_te, standin, steps = reference_inputs(args)
    hp = dict(hidden=32, latent_dim=8) if args.quick else {}    # M2's classifier as m2 builds it
    res = {"experiment": "M2's classifier on the labelled images alone (reference)",
           "quick": args.quick, "host": host(), "device": args.device, "steps": steps,
           "lr": args.lr, "standin_data": standin, "runs": {}}
    for s in args.seeds:
        model = get_model("m2")((1, 28, 28), device=args.device, rng=100 + s, label_seed=s, **hp)
        curve = fit_classifier_alone(model, x_tr, y_tr, x_te, y_te, steps, args.lr)
        res["runs"][str(s)] = {"test_error": curve[-1]["test_error"], "curve": curve,
                               "labelled_indices": model.labelled_indices}
        log(f"m2-supervised label seed {s}: test error {curve[-1]['test_error']:.2f}% after "
            f"{steps} steps (curve {[c['test_error'] for c in curve]})")
    errs = [r["test_error"] for r in res["runs"].values()]
    res["summary"] = {"mean": float(np.mean(errs)), "std": float(np.std(errs, ddof=1))
                      if len(errs) > 1 else None, "n_draws": len(errs)}
    write_json(out / f"m2-supervised{'-quick' if args.quick else ''}.json", res)
    log(f"m2-supervised: {res['summary']['mean']:.2f}% +- {res['summary']['std']}")
    return res


def nearest_neighbour_error(f_lab, y_lab, f_test, y_test, xp):
    """Test error (%) of 1-nearest-neighbour (Euclidean) on the labelled features."""
    wrong = 0
    sq_lab = (f_lab * f_lab).sum(axis=1)
    for i in range(0, len(f_test), 2000):
        ft = f_test[i:i + 2000]
        d = sq_lab[None, :] - 2.0 * ft @ f_lab.T          # + |ft|^2, the same for every row
        pred = y_lab[xp.asarray(d.argmin(axis=1))]
        wrong += int((pred != y_test[i:i + 2000]).sum())
    return 100.0 * wrong / len(f_test)


def cmd_m1_features(args):
    """How good are M1's features for 100 labels, as M1 trains? M1 (the VAE of M1+M2, its
    phase of an ``m1m2`` run with ``--seed`` as label draw 0's run uses it) trained for
    ``--epochs``; every ``--eval-every`` epochs, for each label draw: 1-NN on M1's means against
    1-NN on the pixels, and M2's classifier trained on the labelled means alone."""
    from copy import deepcopy
    out = pathlib.Path(args.out_dir)
    x_tr, y_tr, x_te, y_te, standin, steps = reference_inputs(args)
    hp = dict(hidden=32, latent_dim=8, m1_hidden=32, m1_latent=8) if args.quick else {}
    per_epoch = len(x_tr) // args.batch
    s0 = args.seed
    model = get_model("m2")((1, 28, 28), device=args.device, rng=100 + s0, label_seed=s0,
                            features="m1", m1_steps=args.epochs * per_epoch, **hp)
    folder = pathlib.Path(args.work_dir) / f"m1-features-seed{s0}"
    tag = "m1-features" + ("-quick" if args.quick else "")
    res_path = out / f"{tag}.json"
    res = read_json(res_path) if args.resume else {}
    res.update({"experiment": "M1 features for 100 labels, by M1 epochs", "quick": args.quick,
                "host": host(), "device": args.device, "m1_epochs": args.epochs,
                "classifier_steps": steps, "lr": args.lr, "standin_data": standin,
                "m1_seed": s0})
    xp = model.xp
    y_te_d = xp.asarray(y_te)
    pixels = {}
    for s in args.seeds:
        idx = select_labelled(y_tr, int(model.hp["n_labels"]), s)
        pixels[str(s)] = nearest_neighbour_error(model.to_model(x_tr[idx]).reshape(len(idx), -1),
                                                 xp.asarray(y_tr[idx]),
                                                 model.to_model(x_te).reshape(len(x_te), -1),
                                                 y_te_d, xp)
    res["pixels_1nn"] = pixels
    log(f"1-NN on the pixels: {pixels}")
    curve = list(res.get("curve", [])) if args.resume else []
    every = args.eval_every or args.epochs
    stops = list(range(min(every, args.epochs), args.epochs, every)) + [args.epochs]
    for i, e in enumerate(stops):
        _, steps_done = train_run(model, x_tr, y_tr, folder, e, args, 1000 + s0,
                                  resume=args.resume if i == 0 else True)
        if any(c["epoch"] == e for c in curve) and steps_done >= e * per_epoch:
            continue
        row = {"epoch": e, "m1_steps": steps_done, "nn_error": {}, "classifier_error": {}}
        f_te = model.features(model.to_model(x_te))
        for s in args.seeds:
            idx = select_labelled(y_tr, int(model.hp["n_labels"]), s)
            f_l = model.features(model.to_model(x_tr[idx]))
            row["nn_error"][str(s)] = nearest_neighbour_error(f_l, xp.asarray(y_tr[idx]), f_te,
                                                              y_te_d, xp)
            ref = deepcopy(model)                 # M1 as trained; its classifier still at init
            ref.hp["label_seed"] = s
            c = fit_classifier_alone(ref, x_tr, y_tr, x_te, y_te, steps, args.lr)
            row["classifier_error"][str(s)] = c[-1]["test_error"]
        for k in ("nn_error", "classifier_error"):
            v = list(row[k].values())
            row[k + "_mean"] = float(np.mean(v))
        curve = [c for c in curve if c["epoch"] != e] + [row]
        res["curve"] = sorted(curve, key=lambda c: c["epoch"])
        write_json(res_path, res)
        log(f"M1 epoch {e}: 1-NN {row['nn_error']} classifier alone {row['classifier_error']}")
    return res


def plot_m2(model, x_te, path, res):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    noise = model.sample_noise(100, rng=np.random.default_rng(0))
    gen = to_numpy(model.generate(noise))[:, 0]
    gen_grid = np.concatenate([np.concatenate(list(gen[r * 10:(r + 1) * 10]), 1)
                               for r in range(10)], 0)
    an = to_numpy(model.analogies(x_te[:8]))[:, :, 0]
    an_grid = np.concatenate([np.concatenate([x_te[i, 0], np.ones((28, 4))] + list(an[i]), 1)
                              for i in range(8)], 0)
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.2), gridspec_kw={"width_ratios": [10, 8.2]})
    axes[0].imshow(gen_grid, cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("p(x|y,z): one row per class y = 0..9", fontsize=9)
    axes[1].imshow(an_grid, cmap="gray", vmin=0, vmax=1)
    axes[1].set_title("analogies: test image, then its style z with y = 0..9", fontsize=9)
    for ax in axes:
        ax.axis("off")
    s = res.get("summary", {})
    fig.suptitle(f"{res['experiment']}: test error {s.get('mean', float('nan')):.2f}% "
                 f"(paper {s.get('paper')}%), {res['epochs']} epochs", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# -- command line -----------------------------------------------------------------------------
def make_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(s, epochs, batch_default):
        s.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
        s.add_argument("--quick", action="store_true", help="tiny CPU run for the tests")
        s.add_argument("--resume", action="store_true", help="continue unfinished runs, keep "
                       "finished ones")
        s.add_argument("--out-dir", default=str(DEFAULT_OUT))
        s.add_argument("--work-dir", default=str(DEFAULT_WORK), help="run folders (checkpoints)")
        s.add_argument("--data-dir", default=None)
        s.add_argument("--epochs", type=int, default=None,
                       help=f"epochs per run (default {epochs}; 1 with --quick)")
        s.set_defaults(default_epochs=epochs)
        s.add_argument("--batch", type=int, default=batch_default)
        s.add_argument("--limit", type=int, default=None, help="first N training images")
        s.add_argument("--test-limit", type=int, default=None)
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--checkpoint-every", type=int, default=2000)
        s.add_argument("--no-progress", action="store_true")
    s = sub.add_parser("cvae", help="baseline and CVAE on 1, 2, 3 revealed quadrants")
    common(s, 40, 128)
    s.add_argument("--n-revealed", type=int, nargs="+", default=[1, 2, 3])
    s.add_argument("--samples", type=int, default=100, help="importance samples S")
    s = sub.add_parser("m2", help="M2 / M1+M2 with 100 labels over label draws")
    common(s, 60, 100)
    s.add_argument("--variant", default="m2", choices=("m2", "m1m2"))
    s.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="label draws")
    s.add_argument("--m1-epochs", type=int, default=100,
                   help="M1 pre-training epochs (m1m2; 100 = the model's 60,000 steps at batch "
                        "100; the runs before 2026-11-30's fourth session used 10)")
    s.add_argument("--eval-every", type=int, default=None, metavar="E",
                   help="score the test error every E epochs (the learning curve in the JSON)")
    s.add_argument("--alpha", type=float, default=None,
                   help="weight of the mean labelled cross-entropy (the paper's 0.1; any other "
                        "value is a variant departing from it)")
    def labels_only(s):                  # the labels-only classifier references
        s.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="label draws")
        s.add_argument("--steps", type=int, default=3000, help="full-batch Adam steps")
        s.add_argument("--lr", type=float, default=3e-4)
    s = sub.add_parser("m2-supervised", help="reference: M2's classifier q(y|x) trained on the "
                                             "100 labelled images alone")
    common(s, 0, 100)
    labels_only(s)
    s = sub.add_parser("m1-features", help="diagnostic: M1's features for 100 labels (1-NN, "
                                           "M2's classifier alone) as M1 trains")
    common(s, 100, 100)
    labels_only(s)
    s.add_argument("--eval-every", type=int, default=10, metavar="E")
    return p


def main(argv=None):
    args = make_parser().parse_args(argv)
    if args.quick:
        args.limit = args.limit or 600
        args.test_limit = args.test_limit or 300
        args.epochs = 1 if args.epochs is None else args.epochs
        args.no_progress = True
        if args.cmd == "cvae":
            args.samples = 5
        else:
            args.seeds = args.seeds[:2]
            args.m1_epochs = 0
        if args.work_dir == str(DEFAULT_WORK):
            args.work_dir = str(DEFAULT_WORK / "quick")
    if args.epochs is None:
        args.epochs = args.default_epochs
    if args.cmd != "m2-supervised" and args.epochs < 1:
        raise SystemExit(f"--epochs: training epochs, expected >= 1, got {args.epochs}")
    if args.batch < 1:
        raise SystemExit(f"--batch: examples per step, expected >= 1, got {args.batch}")
    if getattr(args, "eval_every", None) is not None and args.eval_every < 1:
        raise SystemExit(f"--eval-every: epochs between test scores, expected >= 1, got "
                         f"{args.eval_every}")
    if getattr(args, "m1_epochs", 0) < 0:
        raise SystemExit(f"--m1-epochs: M1 pre-training epochs, expected >= 0, got "
                         f"{args.m1_epochs}")
    return {"cvae": cmd_cvae, "m2": cmd_m2, "m2-supervised": cmd_m2_supervised,
            "m1-features": cmd_m1_features}[args.cmd](args)


if __name__ == "__main__":
    main()
