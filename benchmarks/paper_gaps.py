"""Long MNIST runs scored along the way: one model, trained in chunks, scored after each.

    python benchmarks/paper_gaps.py gan-official --model gan --set variant=official \
        --limit 50000 --epochs 300 --eval-every-epochs 50 --device cuda
    python benchmarks/paper_gaps.py wgan --model wgan --set warmup=True --steps 100000 \
        --eval-every 2500 --deadline-s 540 --device cuda
    python benchmarks/paper_gaps.py reference --reference     # real-data Parzen rows

Each chunk trains with :class:`scratchgan.train.Trainer` up to the next evaluation step
(resuming the run's checkpoint in ``--runs-dir/NAME``), then scores ``--n-eval`` samples
with the protocols of ``benchmarks/reproduce.py`` (Parzen for gan/cgan/aae, LeNet
Inception Score and Fréchet distance for every image model). The curve (one row per
evaluation: step, epoch, generator iterations, mean losses of the chunk, metrics, wall
time) is rewritten atomically to ``--out-dir/NAME.json`` after every chunk, so a stopped
run loses at most one chunk: the same command continues it (``--steps``/``--epochs`` may
grow). ``--deadline-s`` stops before a chunk that would not finish in time.

DCGAN-style generators with BatchNorm are scored twice with ``--bn-modes eval,train``:
with the running statistics (``model.generate``, eval mode) and with the statistics of each
500-sample batch (train mode, as the reference DCGAN code samples).
"""
from __future__ import annotations

import argparse
import ast
import json
import pathlib
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
for p in (REPO, REPO / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from bench_common import write_json                                 # noqa: E402
from reproduce import Evaluator, generate                           # noqa: E402
from scratchgan.backend import to_numpy                             # noqa: E402
from scratchgan.nn.module import no_grad                            # noqa: E402

PARZEN_MODELS = ("gan", "cgan", "aae")


def parse_set(items):
    out = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            out[k] = v
    return out


def chunk_losses(metrics_path, lo, hi):
    """Mean of each logged loss over the rows with lo < step <= hi."""
    sums, counts = {}, {}
    if not metrics_path.exists():
        return {}
    for line in metrics_path.read_text().splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not (lo < r.get("step", -1) <= hi):
            continue
        for k, v in r.items():
            if k in ("step", "epoch", "time") or not isinstance(v, (int, float)):
                continue
            sums[k] = sums.get(k, 0.0) + float(v)
            counts[k] = counts.get(k, 0) + 1
    return {k: sums[k] / counts[k] for k in sums}


def generate_train_mode(model, n, batch=500):
    """Samples with G's BatchNorm in training mode (each batch's own statistics; the running
    averages are saved and restored, so the model is unchanged)."""
    G = model.networks()["G"]
    saved = {id(m): [np.copy(to_numpy(getattr(m, b))) for b in m._buffers]
             for m in G.modules() if m._buffers}
    was = G.training
    rng = np.random.default_rng(12345)
    out = []
    try:
        G.train()
        for i in range(0, n, batch):
            noise = model.sample_noise(min(batch, n - i), rng=rng)
            with no_grad():
                out.append(to_numpy(model.g_forward(noise)))
    finally:
        G.train(was)
        for m in G.modules():
            if id(m) in saved:
                for b, v in zip(m._buffers, saved[id(m)]):
                    getattr(m, b)[...] = model.to_model(v, dtype=getattr(m, b).dtype)
    return np.concatenate(out)


def score(ev, model_name, samples01, n_parzen):
    m = {}
    if model_name in PARZEN_MODELS:
        p = ev.parzen(samples01[:n_parzen])
        m["parzen"] = {k: p[k] for k in ("mean", "se", "sigma", "n_samples", "n_test")}
    m.update(ev.classifier_scores(samples01))
    return m


def reference_rows(ev, data_dir, n):
    """Parzen of real data used as 'samples': n training images, and the mean training image
    as a single sample (what Parzen gives a blur)."""
    from scratchgan.data.datasets import load_dataset
    train01, _ = load_dataset("mnist", (0.0, 1.0), data_dir, split="train", limit=50000)
    rows = {}
    p = ev.parzen(train01[:n])
    rows["real training images"] = {"n_samples": n, "parzen": {k: p[k] for k in
                                                              ("mean", "se", "sigma")},
                                    **ev.classifier_scores(train01[:n])}
    mean_img = train01.mean(0, keepdims=True).astype(np.float32)
    p = ev.parzen(mean_img)
    rows["mean training image (one sample)"] = {"n_samples": 1, "parzen": {
        k: p[k] for k in ("mean", "se", "sigma")}}
    return rows


def _fmt_metrics(m):
    parts = []
    if "parzen" in m:
        parts.append(f"Parzen {m['parzen']['mean']:.1f} ± {m['parzen']['se']:.1f}")
    if "is" in m:
        parts.append(f"IS {m['is'][0]:.2f}")
    if "fd" in m:
        parts.append(f"FD {m['fd']:.1f}")
    return ", ".join(parts)


def report(out_dir):
    """``out_dir/paper_gaps.md`` from every curve JSON there (one table per run), and
    ``wgan_loss_vs_fd.png`` for runs that log an EM estimate."""
    out_dir = pathlib.Path(out_dir)
    lines = ["# Paper-gap runs: scores along training", "",
             "Produced by `bash benchmarks/paper_gaps_batch.sh OUT 400` (one call on an "
             "nvidia-h200-x2: the runs shared two H200s, convolutions and Linear layers in TF32; "
             "each run stops before a chunk that would pass its deadline). This page: "
             "`python benchmarks/paper_gaps.py - --report --out-dir DIR`. Scores: 10,000 "
             "samples; Parzen as the GAN paper (σ on train[50000:51000], 10,000 test images); "
             "LeNet IS (10 splits) and FD against the 10,000 test images (docs/metrics.md). "
             "`logs/aae-sgd.log` holds the run that failed (no curve); the other runs' logs repeat their JSON and are not kept.", ""]
    curves = []
    for path in sorted(out_dir.glob("*.json")):
        c = json.loads(path.read_text())
        if "reference" in c:
            lines += ["## Real-data reference (Parzen protocol of the GAN paper)", "",
                      "| 'samples' | n | Parzen LL (nats) | σ | LeNet IS | FD |", "|---|---|---|---|---|---|"]
            for k, r in c["reference"].items():
                isv = f"{r['is'][0]:.2f}" if "is" in r else "—"
                fdv = f"{r['fd']:.2f}" if "fd" in r else "—"
                lines.append(f"| {k} | {r['n_samples']} | {r['parzen']['mean']:.1f} ± "
                             f"{r['parzen']['se']:.1f} | {r['parzen']['sigma']:.3f} | {isv} | {fdv} |")
            lines.append("")
            continue
        curves.append(c)
    for c in curves:
        lines += [f"## {c['name']} ({c['model']})", "",
                  f"GPU: {c.get('gpu')}; {c['train_examples']} training examples, batch "
                  f"{c['batch_size']}; hyperparameters: "
                  + ", ".join(f"{k}={v}" for k, v in c["hyper"].items()), "",
                  "Commands: " + "; ".join(f"`{x}`" for x in c["commands"]), ""]
        modes = sorted({k[len('metrics_'):] for r in c["rows"] for k in r if k.startswith("metrics_")})
        head = "| step (G iters) | epochs | train s | " + " | ".join(
            f"scores ({m} mode)" if len(modes) > 1 else "scores" for m in modes) + " | mean losses of the chunk |"
        lines += [head, "|" + "---|" * (4 + len(modes))]
        for r in c["rows"]:
            loss = ", ".join(f"{k} {v:.4g}" for k, v in r["losses"].items()
                             if k in ("loss_d", "loss_g", "em_estimate", "loss_recon", "d_real", "d_fake"))
            lines.append(f"| {r['step']} | {r['epoch']} | {r['train_seconds']} | " + " | ".join(
                _fmt_metrics(r.get(f"metrics_{m}", {})) for m in modes) + f" | {loss} |")
        lines.append("")
    em = [c for c in curves if any("em_estimate" in r["losses"] for r in c["rows"])]
    if em:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for c in em:
            rows = [r for r in c["rows"] if "em_estimate" in r["losses"] and "fd" in r.get("metrics_eval", {})]
            it = [r["step"] for r in rows]
            axes[0].plot(it, [r["losses"]["em_estimate"] for r in rows], "o-", label=f"{c['name']}: −loss_D")
            ax2 = axes[0].twinx()
            ax2.plot(it, [r["metrics_eval"]["fd"] for r in rows], "s--", color="C3", label="FD")
            ax2.set_ylabel("LeNet FD (dashed)")
            axes[1].plot([r["losses"]["em_estimate"] for r in rows],
                         [r["metrics_eval"]["fd"] for r in rows], "o-", label=c["name"])
        axes[0].set_xlabel("generator iterations")
        axes[0].set_ylabel("−loss_D, mean over the chunk")
        axes[1].set_xlabel("−loss_D (EM estimate)")
        axes[1].set_ylabel("LeNet FD")
        axes[1].legend()
        fig.suptitle("WGAN: the critic's estimate tracks sample quality")
        fig.tight_layout()
        fig.savefig(out_dir / "wgan_loss_vs_fd.png", dpi=100)
        lines += ["![WGAN −loss_D and FD](wgan_loss_vs_fd.png)", ""]
    (out_dir / "paper_gaps.md").write_text("\n".join(lines))
    return out_dir / "paper_gaps.md"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("name", help="run name: runs-dir/NAME holds the run, out-dir/NAME.json the curve")
    ap.add_argument("--model", default="gan")
    ap.add_argument("--set", dest="hyper", action="append", default=[], metavar="KEY=VALUE")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--epochs", type=int, default=None)
    g.add_argument("--steps", type=int, default=None, help="train_step calls (generator iterations)")
    ap.add_argument("--eval-every", type=int, default=None, help="steps between evaluations")
    ap.add_argument("--eval-every-epochs", type=int, default=None)
    ap.add_argument("--limit", type=int, default=None, help="training examples (first N)")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--n-eval", type=int, default=10000)
    ap.add_argument("--n-parzen", type=int, default=10000)
    ap.add_argument("--bn-modes", default="eval", help="eval,train: score G's BatchNorm both ways")
    ap.add_argument("--deadline-s", type=float, default=None)
    ap.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    ap.add_argument("--precision", default="fp32", choices=["fp32", "tf32"])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--runs-dir", default="runs/paper_gaps")
    ap.add_argument("--out-dir", default="benchmarks/results/paper_gaps")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reference", action="store_true", help="only the real-data Parzen rows")
    ap.add_argument("--report", action="store_true",
                    help="write out-dir/paper_gaps.md from the curves there (NAME is ignored)")
    args = ap.parse_args(argv)
    if args.report:
        print(report(args.out_dir))
        return 0
    t_start = time.time()
    out_dir = pathlib.Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ev = Evaluator(args.data_dir, args.n_eval, 1000, args.device, seed=args.seed)
    if args.reference:
        rows = reference_rows(ev, args.data_dir, args.n_eval)
        write_json(out_dir / f"{args.name}.json", {"reference": rows})
        print(json.dumps(rows, indent=1))
        return 0

    from scratchgan.backend import set_conv_precision
    from scratchgan.data.datasets import load_dataset
    from scratchgan.models import get_model
    from scratchgan.train import Trainer
    from scratchgan.viz import save_grid
    if args.device == "cuda":
        set_conv_precision(args.precision)
    cls = get_model(args.model)
    hyper = {k: v for k, v in cls.defaults.items() if k not in ("batch_size", "epochs", "dataset")}
    over = parse_set(args.hyper)
    bad = sorted(k for k in over if k not in hyper)
    if bad:
        raise SystemExit(f"--set: {bad} are not hyperparameters of {args.model}; valid: "
                         f"{sorted(hyper)}")
    hyper.update(over)
    data_range = cls.data_range or (0.0, 1.0)
    x, y = load_dataset("mnist", data_range, args.data_dir, split="train", limit=args.limit)
    if not getattr(cls, "conditional", False):
        y = None
    batch = args.batch_size or int(cls.defaults.get("batch_size", 100))
    probe = cls((1, 28, 28), rng=0, **hyper)
    k = int(probe.batches_per_step())
    steps_per_epoch = (len(x) // batch) / k
    target = args.steps if args.steps is not None else \
        int(round((args.epochs or cls.defaults.get("epochs", 25)) * steps_per_epoch))
    every = args.eval_every or (int(round(args.eval_every_epochs * steps_per_epoch))
                                if args.eval_every_epochs else target)
    run_dir = pathlib.Path(args.runs_dir) / args.name
    curve_path = out_dir / f"{args.name}.json"
    curve = json.loads(curve_path.read_text()) if curve_path.exists() else {
        "name": args.name, "model": args.model, "hyper": {k: str(v) for k, v in hyper.items()},
        "train_examples": len(x), "batch_size": batch, "steps_per_epoch": steps_per_epoch,
        "commands": [], "rows": []}
    curve["commands"].append("python " + " ".join([sys.argv[0]] + (argv or sys.argv[1:])))
    modes = [m for m in args.bn_modes.split(",") if m]
    try:
        import cupy
        curve["gpu"] = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    except Exception:
        curve["gpu"] = None
    done = curve["rows"][-1]["step"] if curve["rows"] else 0
    last_chunk_s = None
    while done < target:
        nxt = min(target, (done // every + 1) * every)
        if args.deadline_s and last_chunk_s is not None and \
                time.time() - t_start + last_chunk_s * (nxt - done) / every > args.deadline_s:
            print(f"{args.name}: stopping at step {done}: the next chunk would pass the "
                  f"deadline ({args.deadline_s:.0f} s)", flush=True)
            break
        t0 = time.time()
        model = cls((1, 28, 28), device=args.device, rng=np.random.default_rng(args.seed), **hyper)
        ckpt = run_dir / "last.ckpt.npz"
        tr = Trainer(model, x, y, batch_size=batch, steps=nxt, out_dir=str(run_dir),
                     seed=args.seed, progress=False, log_every=100, resume=ckpt.exists(),
                     epoch_outputs=False,
                     config={"model": args.model, "hyper": hyper, "batch_size": batch,
                             "limit": args.limit})
        tr.fit()
        train_s = time.time() - t0
        t1 = time.time()
        row = {"step": int(model.step),
               "epoch": round(tr._batches_done() / len(tr.batches), 3),   # data passes
               "generator_iterations": int(model.step),
               "losses": chunk_losses(run_dir / "metrics.jsonl", done, int(model.step)),
               "train_seconds": round(train_s, 1)}
        for mode in modes:
            raw = generate(model, args.n_eval) if mode == "eval" else \
                generate_train_mode(model, args.n_eval)
            s01 = ev.to01(raw, model.data_range or data_range)
            row[f"metrics_{mode}"] = score(ev, args.model, s01, args.n_parzen)
            save_grid(s01[:100], out_dir / f"{args.name}-{mode}.png", nrow=10,
                      data_range=(0.0, 1.0))
        row["eval_seconds"] = round(time.time() - t1, 1)
        curve["rows"].append(row)
        write_json(curve_path, curve)
        print(json.dumps({"name": args.name, **row}), flush=True)
        last_chunk_s = time.time() - t0
        done = int(model.step)
    return 0


if __name__ == "__main__":
    sys.exit(main())
