"""Train every model on MNIST with its paper's hyperparameters and score it like its paper.

    python benchmarks/reproduce.py                      # all models, GPU, full epochs (hours)
    python benchmarks/reproduce.py --models gan,aae --epochs-scale 0.5
    python benchmarks/reproduce.py --quick --device cpu # a few steps per model: a smoke test
    python benchmarks/reproduce.py --models gan --epochs gan=200 --resume   # extend a run
    python benchmarks/reproduce.py --from-json run1.json run2.json          # merge runs

Writes ``<out-dir>/reproduction.md`` (Model | Metric | Ours | Paper | training time |
samples) and ``<out-dir>/reproduction.json`` with every number behind it, plus
sample grids in ``<out-dir>/grids/``. Runs (checkpoints, logs) go to ``--runs-dir``.

Protocols (docs/metrics.md):
* GAN, AAE: Parzen LL of 10,000 samples (sigma on train[50000:51000], score on the
  10k test set); CGAN: 1,000 samples per class (10,000 in all);
* InfoGAN: categorical-code error on the test set (codes inferred by Q), best
  one-to-one code/digit matching;
* VAE: test ELBO and importance-weighted log-likelihood (k = 50), nats;
* every image model also gets the LeNet Inception Score and Fréchet distance
  (10k samples vs the 10k test images) when the classifier weights exist.
"""
from __future__ import annotations

import argparse
import ast
import datetime
import json
import math
import pathlib
import sys
import time
import traceback

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from scratchgan.backend import to_device, to_numpy                  # noqa: E402
from scratchgan.metrics import (categorical_code_accuracy, evaluate_parzen,   # noqa: E402
                                evaluate_vae)
from scratchgan.nn.module import no_grad                           # noqa: E402

ALL_MODELS = ("gan", "cgan", "aae", "infogan", "vae", "dcgan", "wgan")

PAPER = {
    "gan": [("Parzen LL (nats)", "225 ± 2")],
    "cgan": [("Parzen LL (nats)", "132 ± 1.8")],
    "aae": [("Parzen LL (nats)", "340 ± 2")],
    "infogan": [("categorical-code error", "5%")],
    "vae": [("test ELBO (nats)", "≈ −100 to −105 (binarized, 20 latents; commonly cited range)"), ("IW log-likelihood, k=50 (nats)", "—")],
    "dcgan": [],
    "wgan": [],
}


# The papers' headline numbers as thresholds: Parzen and ELBO higher is better, code error lower.
# VAE: the commonly cited MLP range for 20 latents on binarized MNIST is -100 to -105 nats.
PAPER_TARGET = {"gan": 225.0, "cgan": 132.0, "aae": 340.0, "infogan": 0.05, "vae": -105.0}


def _fmt_pm(mean, se, digits=1):
    return f"{mean:.{digits}f} ± {se:.{digits}f}"


class Evaluator:
    """Holds the evaluation data (test set, Parzen validation set, classifier) once."""

    def __init__(self, data_dir, n_eval, n_valid, device, seed=0):
        from scratchgan.data.datasets import load_dataset
        self.device, self.n_eval, self.rng = device, n_eval, np.random.default_rng(seed)
        self.test01, self.test_labels = load_dataset("mnist", (0.0, 1.0), data_dir, split="test",
                                                     limit=n_eval)
        train01, _ = load_dataset("mnist", (0.0, 1.0), data_dir, split="train")
        self.valid01 = train01[50000:50000 + n_valid]
        self.data_dir = data_dir
        self.classifier = None
        try:
            from scratchgan.metrics.classifier import load_classifier, weights_available
            if weights_available():
                self.classifier = load_classifier()
        except Exception as e:  # pragma: no cover - reported in the table
            print(f"classifier unavailable: {e}", file=sys.stderr)
        self._test_feats = None

    def _dev(self, a):
        return to_device(a, self.device) if self.device != "cpu" else a

    def to01(self, x, data_range):
        lo, hi = data_range
        return np.clip((to_numpy(x).astype(np.float64) - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)

    def parzen(self, samples01):
        r = evaluate_parzen(self._dev(samples01.reshape(len(samples01), -1)),
                            self._dev(self.valid01.reshape(len(self.valid01), -1)),
                            self._dev(self.test01.reshape(len(self.test01), -1)))
        return r

    def classifier_scores(self, samples01):
        if self.classifier is None:
            return {}
        from scratchgan.metrics import frechet_distance_from_features, inception_score_from_log_probs
        if self._test_feats is None:
            self._test_feats = self.classifier.features_and_log_probs(self.test01)[0]
        f, lp = self.classifier.features_and_log_probs(samples01)
        splits = min(10, len(samples01))
        is_m, is_s = inception_score_from_log_probs(lp, splits)
        return {"is": [is_m, is_s], "fd": frechet_distance_from_features(f, self._test_feats)}


def binarize_images(x01, seed):
    """Stochastic binarization (pixel ~ Bernoulli(intensity)) with a fixed seed: the binarized
    MNIST on which the VAE literature reports its bounds."""
    rng = np.random.default_rng(seed)
    return (rng.random(x01.shape) < x01).astype(x01.dtype)


def generate(model, n, batch=500, labels=None):
    """n samples from the model (host arrays), in batches, in its data_range."""
    out = []
    rng = np.random.default_rng(12345)
    for i in range(0, n, batch):
        m = min(batch, n - i)
        if labels is not None:
            noise = model.sample_noise(m, rng=rng, labels=labels[i:i + m])
        else:
            noise = model.sample_noise(m, rng=rng)
        with no_grad():
            out.append(to_numpy(model.generate(noise)))
    return np.concatenate(out)


def infogan_codes(model, x, batch=1000):
    """Categorical code predicted by Q for real images (argmax); None when the model exposes none."""
    for name in ("predict_codes", "infer_codes", "encode"):
        fn = getattr(model, name, None)
        if fn is not None:
            break
    else:
        return None
    codes = []
    for i in range(0, x.shape[0], batch):
        with no_grad():
            out = fn(x[i:i + batch])
        if isinstance(out, dict):
            out = out.get("categorical", out.get("c1", out.get("cat")))
        if isinstance(out, (tuple, list)):
            out = out[0]                       # (categorical logits, continuous means)
        out = to_numpy(out)
        codes.append(out.argmax(1) if out.ndim == 2 else out.astype(np.int64))
    return np.concatenate(codes)


def vae_callables(model):
    """(encode -> (mu, logvar), decode -> Bernoulli logits) for a VAE model, or None.

    Uses ``encode_stats``/``decode_logits`` when the model has them, otherwise its
    ``encoder`` (x -> [mu, logvar]) and ``decoder`` (z -> logits) networks in eval mode.
    """
    enc = getattr(model, "encode_stats", None)
    dec = getattr(model, "decode_logits", None)
    if enc is None and hasattr(model, "encoder"):
        k = model.hp["latent_dim"]
        def enc(x):
            h = model._eval_forward(model.encoder, x)
            return h[:, :k], h[:, k:]
    if dec is None and hasattr(model, "decoder"):
        def dec(z):
            return model._eval_forward(model.decoder, z)
    if enc is None or dec is None:
        return None

    def encode(x):
        out = enc(x)
        if isinstance(out, dict):
            return out["mu"], out["logvar"]
        return out[0], out[1]
    return encode, dec


def run_model(name, args, ev, out_dir):
    from scratchgan.data.datasets import load_dataset
    from scratchgan.models import get_model
    from scratchgan.train import Trainer
    from scratchgan.viz import save_grid

    cls = get_model(name)
    defaults = dict(cls.defaults)
    data_range = cls.data_range or (0.0, 1.0)
    x, y = load_dataset("mnist", data_range, args.data_dir, split="train",
                        limit=args.train_limit)
    binarize = name == "vae" and args.binarize_vae
    if binarize:
        x = binarize_images(x, seed=args.seed)
    hyper = {k: v for k, v in defaults.items() if k not in ("batch_size", "epochs", "dataset")}
    overrides = args.hyper_overrides.get(name, {})
    unknown = [k for k in overrides if k not in hyper]
    if unknown:
        raise ValueError(f"--set {name}.{unknown[0]}: not a hyperparameter of {name}; "
                         f"valid keys are {', '.join(sorted(hyper))}")
    hyper.update(overrides)
    model = cls((1, 28, 28), device=args.device, rng=np.random.default_rng(args.seed), **hyper)
    data_range = model.data_range or data_range
    batch = int(defaults.get("batch_size", 100))
    run_dir = pathlib.Path(args.runs_dir) / name
    kw = dict(batch_size=batch, out_dir=str(run_dir), seed=args.seed, progress=not args.no_progress,
              config={"model": name, "dataset": "mnist", "hyper": hyper, "batch_size": batch})
    if args.quick:
        kw["steps"] = args.quick_steps
        kw["n_samples"] = 16
    else:
        kw["epochs"] = args.epoch_overrides.get(
            name, max(1, int(round(defaults.get("epochs", 25) * args.epochs_scale))))
    if args.resume:
        # --resume: continue the run in --runs-dir (to extend its --epochs); the time
        # reported is this run's part, and the step it started from is recorded.
        from scratchgan.checkpoint import previous_path
        ckpt = run_dir / "last.ckpt.npz"
        if ckpt.exists() or previous_path(ckpt).exists():
            kw["resume"] = True
        else:
            print(f"{name}: --resume, but no checkpoint in {run_dir}: training from step 0",
                  file=sys.stderr)
    t0 = time.time()
    summary = Trainer(model, x, y, **kw).fit()
    resumed_from = summary["start_step"] if kw.get("resume") else None
    train_s = time.time() - t0

    res = {"model": name, "train_seconds": round(train_s, 1), "steps": int(model.step),
           **({"resumed_from_step": resumed_from} if resumed_from is not None else {}),
           "hyper": {k: str(v) for k, v in hyper.items()},
           "overrides": {**{k: str(v) for k, v in overrides.items()},
                         **({"data": "binarized"} if binarize else {})},
           "epochs": kw.get("epochs"), "paper_epochs": defaults.get("epochs"), "batch_size": batch, "data_range": list(data_range),
           "metrics": {}}
    n = args.n_eval
    labels = None
    if getattr(model, "conditional", False):
        # CGAN protocol: n/10 samples per class, interleaved so that every Inception-Score
        # split and every row of the sample grid holds all ten classes.
        labels = np.tile(np.arange(10), n // 10)
        n = labels.size
    t1 = time.time()
    samples = generate(model, n, labels=labels)
    s01 = ev.to01(samples, data_range)
    grid = pathlib.Path(out_dir) / "grids" / f"{name}.png"
    save_grid(s01[:100], grid, nrow=10, data_range=(0.0, 1.0))
    res["grid"] = str(grid.relative_to(out_dir))
    m = res["metrics"]
    if name in ("gan", "cgan", "aae"):
        p = ev.parzen(s01)
        m["parzen"] = {k: p[k] for k in ("mean", "se", "sigma", "n_samples", "n_test")}
    if name == "infogan":
        xt = ev._dev(ev.test01 if data_range == (0.0, 1.0) else ev.test01 * 2.0 - 1.0)
        codes = infogan_codes(model, xt)
        if codes is not None:
            r = categorical_code_accuracy(codes, ev.test_labels, num_codes=10, num_classes=10)
            m["code_error"] = r["error"]
        else:
            m["code_error"] = None
            res["note"] = "model exposes no Q inference method (infer_codes)"
    if name == "vae":
        fns = vae_callables(model)
        if fns is not None:
            test = binarize_images(ev.test01, seed=args.seed + 1) if binarize else ev.test01
            xt = ev._dev(test.astype(model.dtype))
            m["vae"] = evaluate_vae(xt, *fns, k=args.iw_k, batch_size=500)
        else:
            res["note"] = "model exposes no encode/decode_logits pair"
    m.update(ev.classifier_scores(s01))
    res["eval_seconds"] = round(time.time() - t1, 1)
    return res


def table_rows(res):
    name, m = res["model"], res["metrics"]
    paper = dict(PAPER.get(name, []))
    rows = []
    target = PAPER_TARGET.get(name)

    def verdict(ours, higher_is_better=True):
        if target is None or ours is None:
            return ""
        met = ours >= target if higher_is_better else ours <= target
        return " (meets the paper)" if met else " (**short of the paper**)"

    if "parzen" in m:
        rows.append(("Parzen LL (nats)", _fmt_pm(m["parzen"]["mean"], m["parzen"]["se"])
                     + verdict(m["parzen"]["mean"]), paper.get("Parzen LL (nats)", "—")))
    if "code_error" in m:
        v = m["code_error"]
        rows.append(("categorical-code error", ("n/a" if v is None else f"{100 * v:.1f}%")
                     + verdict(v, higher_is_better=False), "5%"))
    if "vae" in m:
        v = m["vae"]
        rows.append(("test ELBO (nats)", _fmt_pm(v["elbo"], v["elbo_se"]) + verdict(v["elbo"]),
                     paper["test ELBO (nats)"]))
        rows.append((f"IW log-likelihood, k={v['k']} (nats)", _fmt_pm(v["iw_ll"], v["iw_ll_se"]), "—"))
    if "is" in m:
        rows.append(("LeNet Inception Score", _fmt_pm(*m["is"], digits=2), "—"))
        rows.append(("LeNet Fréchet distance", f"{m['fd']:.2f}", "—"))
    if "error" in res:
        rows.append(("(failed)", res["error"].splitlines()[-1][:80], "—"))
    return rows


def variant_of(res):
    """The overrides of a run that differ from its model's current defaults (a run made with
    --set before a default changed to that value is no longer a variant)."""
    from scratchgan.models import get_model
    defaults = get_model(res["model"]).defaults
    out = {}
    # "hyper" (every hyperparameter the run used) where recorded, else its --set overrides
    for k, v in (res.get("hyper") or res.get("overrides") or {}).items():
        if k == "data":
            continue
        try:
            same = k in defaults and ast.literal_eval(str(v)) == defaults[k]
        except (ValueError, SyntaxError):
            same = str(v) == str(defaults.get(k))
        if not same:
            out[k] = v
    return out


def headline(res):
    """One line for a run: its first table row."""
    rows = table_rows(res)
    return f"{rows[0][0]} {rows[0][1]}" if rows else "no metric"


def write_report(results, out_dir, args, reference, commands=None, superseded=()):
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    command = f"python benchmarks/reproduce.py {' '.join(sys.argv[1:])}"
    commands = commands or [command]
    lines = [f"# Reproduction on MNIST ({datetime.date.today().isoformat()})", "",
             *[f"Command: `{c}`  " for c in commands],
             (f"device {args.device}, " if len(commands) == 1 else "device as in each command, ")
             + f"seed {args.seed}, {args.n_eval} evaluation samples"
             + (" — **QUICK SMOKE RUN: numbers are meaningless**" if args.quick else ""), "",
             "| Model | Metric | Ours | Paper's number | epochs (paper's) | training time | samples |",
             "|---|---|---|---|---|---|---|"]
    for res in results:
        t = f"{res.get('train_seconds', 0) / 60:.1f} min"
        ep = f"{res.get('epochs')} ({res.get('paper_epochs')})"
        if res.get("epochs") and res.get("paper_epochs") and res["epochs"] < res["paper_epochs"]:
            ep += " shortened"
        link = f"[grid]({res['grid']})" if "grid" in res else "—"
        variant = variant_of(res)
        if variant:
            ep += " · variant: " + ", ".join(f"{k}={v}" for k, v in variant.items())
        if res.get("resumed_from_step") is not None:
            ep += f" · resumed at step {res['resumed_from_step']}"
            t += " (resumed part)"
        if (res.get("overrides") or {}).get("data") == "binarized":
            ep += " · binarized MNIST, as the VAE literature"
        for metric, ours, paper in table_rows(res):
            lines.append(f"| {res['model']} | {metric} | {ours} | {paper} | {ep} | {t} | {link} |")
    if reference:
        lines += ["", "Classifier reference points (LeNet, docs/metrics.md): real test-set IS "
                  f"{reference['is_real_test'][0]:.2f} ± {reference['is_real_test'][1]:.2f} (ceiling), "
                  f"FD(train subset, test) {reference['fd_train_vs_test']:.2f} (floor), "
                  f"test accuracy {100 * reference['test_accuracy']:.2f}%."]
    if superseded:
        lines += ["", "Earlier and alternative runs (superseded in the table above, kept for the record):", ""]
        for res in superseded:
            var = variant_of(res)
            lines.append(f"- {res['model']}, {res.get('epochs')} epochs"
                         + (", variant " + ", ".join(f"{k}={v}" for k, v in var.items()) if var else "")
                         + (f", resumed at step {res['resumed_from_step']}"
                            if res.get("resumed_from_step") is not None else "")
                         + f": {headline(res)}")
    lines += ["", "Protocols: docs/metrics.md. Paper numbers: the papers' own tables, as cited in docs/metrics.md."]
    (out_dir / "reproduction.md").write_text("\n".join(lines) + "\n")
    (out_dir / "reproduction.json").write_text(json.dumps(
        {"command": commands[0] if len(commands) == 1 else commands, "args": vars(args),
         "results": results, "reference": reference}, indent=2, default=str) + "\n")


def merge_reports(paths, out_dir):
    """Rebuild reproduction.md/.json from several runs (e.g. one device call per group of models)."""
    by_model, commands, reference, superseded = {}, [], None, []
    for path in paths:
        blob = json.loads(pathlib.Path(path).read_text())
        cmd = blob.get("command", [])
        commands += cmd if isinstance(cmd, list) else [cmd]
        reference = blob.get("reference") or reference
        for res in blob["results"]:
            if res["model"] in by_model:
                superseded.append(by_model[res["model"]])
            by_model[res["model"]] = res
    results = [by_model[m] for m in ALL_MODELS if m in by_model]
    args = argparse.Namespace(**{**json.loads(pathlib.Path(paths[-1]).read_text())["args"],
                                 "quick": False})
    write_report(results, out_dir, args, reference, commands=commands, superseded=superseded)
    print(pathlib.Path(out_dir, "reproduction.md").read_text())
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default=",".join(ALL_MODELS),
                   help=f"comma-separated subset of {','.join(ALL_MODELS)}")
    p.add_argument("--epochs-scale", type=float, default=1.0, help="multiply each paper's epoch count")
    p.add_argument("--epochs", action="append", default=[], metavar="MODEL=E",
                   help="train MODEL for E epochs instead of the paper's count (repeatable); "
                        "the table then marks the run as shortened")
    p.add_argument("--set", dest="hyper", action="append", default=[], metavar="MODEL.KEY=VALUE",
                   help="override one model hyperparameter (a named variant; shown in the table)")
    p.add_argument("--from-json", nargs="+", default=None, metavar="JSON",
                   help="no training: rebuild reproduction.md from earlier runs' JSON files "
                        "(a later file's entry for a model replaces an earlier one)")
    p.add_argument("--binarize-vae", action="store_true",
                   help="train and score the VAE on stochastically binarized MNIST, as its literature does")
    p.add_argument("--resume", action="store_true",
                   help="continue each model from its checkpoint in --runs-dir (to extend --epochs)")
    p.add_argument("--quick", action="store_true", help="a few steps per model and small evaluation sets")
    p.add_argument("--quick-steps", type=int, default=3)
    p.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out-dir", default=None, help="default benchmarks/results (runs/reproduce-quick with --quick)")
    p.add_argument("--runs-dir", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-eval", type=int, default=None, help="samples / test images for metrics (10000)")
    p.add_argument("--iw-k", type=int, default=50)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.epoch_overrides = {}
    for item in args.epochs:
        name, _, value = item.partition("=")
        if name not in ALL_MODELS or not value.isdigit() or int(value) < 1:
            p.error(f"--epochs expects MODEL=E with MODEL in {', '.join(ALL_MODELS)} and E >= 1, "
                    f"got {item!r}")
        args.epoch_overrides[name] = int(value)
    args.hyper_overrides = {}
    for item in args.hyper:
        key, _, value = item.partition("=")
        model_name, _, hname = key.partition(".")
        if model_name not in ALL_MODELS or not hname or not value:
            p.error(f"--set expects MODEL.KEY=VALUE with MODEL in {', '.join(ALL_MODELS)}, got {item!r}")
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            pass                                        # a bare string such as adam
        args.hyper_overrides.setdefault(model_name, {})[hname] = value
    if args.from_json:
        return merge_reports(args.from_json, args.out_dir or str(REPO / "benchmarks/results"))
    bad = [m for m in models if m not in ALL_MODELS]
    if bad:
        p.error(f"unknown model(s) {bad}; valid choices are {', '.join(ALL_MODELS)}")
    if args.data_dir is None:
        from scratchgan.metrics.classifier import default_data_dir
        args.data_dir = default_data_dir()
    if args.out_dir is None:
        args.out_dir = str(REPO / ("runs/reproduce-quick" if args.quick else "benchmarks/results"))
    if args.runs_dir is None:
        args.runs_dir = str(REPO / ("runs/reproduce-quick/runs" if args.quick else "runs/reproduce"))
    if args.n_eval is None:
        args.n_eval = 200 if args.quick else 10000
    args.n_valid = 100 if args.quick else 1000
    args.iw_k = min(args.iw_k, 5) if args.quick else args.iw_k
    args.train_limit = 2000 if args.quick else None
    pathlib.Path(args.out_dir).mkdir(parents=True, exist_ok=True)

    ev = Evaluator(args.data_dir, args.n_eval, args.n_valid, args.device, args.seed)
    reference = None
    if ev.classifier is not None and not args.quick:
        from scratchgan.metrics.classifier import evaluate_reference_scores
        reference = evaluate_reference_scores(args.data_dir)
    results = []
    for name in models:
        print(f"== {name}", flush=True)
        try:
            res = run_model(name, args, ev, args.out_dir)
        except Exception:
            res = {"model": name, "error": traceback.format_exc(), "metrics": {}}
            print(res["error"], file=sys.stderr)
        results.append(res)
        write_report(results, args.out_dir, args, reference)     # keep partial results
    print(pathlib.Path(args.out_dir, "reproduction.md").read_text())
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
