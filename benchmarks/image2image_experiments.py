"""pix2pix and CycleGAN measured on the tasks of scratchgan.data.image2image (issue 15).

Subcommands (each full run sized for a few GPU minutes; ``--quick`` is a tiny CPU smoke run):

``classifier``  a LeNet (scratchgan.metrics.classifier.LeNet) trained with scratchgan on
                Fashion-MNIST (Adam 1e-3 halved per epoch, batch 64): its test accuracy (the
                issue asks >= 90%); weights saved for the label-preservation scores.
``pix2pix``     train ``pix2pix`` on ``--task`` (edges2fashion, quadrants-paired1/2/3) with
                ``--objective`` (l1+cgan, l1, cgan: the paper's ablation), then on the test
                split: L1 and SSIM to the targets (images in [0, 1]); label preservation = the
                frozen classifier's accuracy on G(A) beside its accuracy on the real targets
                B (Fashion LeNet for edges2fashion, the shipped MNIST LeNet for quadrants).
``quadrants``   pix2pix (L1 + cGAN) on quadrant completion (``--shown`` 1/2/3 quadrants), and
                with ``--cvae RUN`` the CVAE's completions of the same test images scored the same
                way (L1 over the image and over the hidden pixels, SSIM, LeNet labels).
``cyclegan``    train ``cyclegan`` on mnist2restyled with ``--ablation`` (none, no-cycle,
                no-identity); on the test halves: digit preservation A->B and B->A (MNIST
                LeNet on grey F(b), and on the stroke map recovered from G(a) by undoing the
                known colouring), beside the same on real images; cycle L1 both ways; FD in
                LeNet features between translations and the real target domain.
``report``      the JSON records gathered into ``summary.json`` and ``summary.md``.

Training goes through scratchgan.train.Trainer (checkpoints every ``--checkpoint-every``
steps; ``--resume`` continues a run exactly). Outputs: benchmarks/results/image2image/
(``<run>.json``, ``<run>_grid.png``, run folders under ``runs/``).

    python benchmarks/image2image_experiments.py classifier --device cuda
    python benchmarks/image2image_experiments.py pix2pix --task edges2fashion --objective l1+cgan --device cuda
    python benchmarks/image2image_experiments.py quadrants --shown 1 --device cuda [--cvae RUN]
    python benchmarks/image2image_experiments.py cyclegan --ablation none --device cuda
    python benchmarks/image2image_experiments.py report
    python benchmarks/image2image_experiments.py all --quick      # CPU smoke run
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "benchmarks"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from bench_common import write_json  # noqa: E402

from scratchgan.backend import to_numpy  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "image2image"
PIX2PIX_STEPS = 6000      # batch 64: 6.4 epochs of the 60k training pairs
CYCLEGAN_STEPS = 4000     # batch 16, lr decayed linearly over the second half
CLASSIFIER_EPOCHS = 15   # Fashion LeNet: 8 epochs of a per-epoch halving stopped at 89.76%


# ------------------------------------------------------------------------------ metrics
def gaussian_window(size=11, sigma=1.5):
    g = np.exp(-0.5 * ((np.arange(size) - (size - 1) / 2) / sigma) ** 2)
    return g / g.sum()


def _filter_valid(a, w):
    """Separable 'valid' filtering of (N, H, W) with the 1-D window w along both axes."""
    k = len(w)
    H, W = a.shape[1:]
    rows = sum(w[i] * a[:, i:H - k + 1 + i, :] for i in range(k))
    return sum(w[j] * rows[:, :, j:W - k + 1 + j] for j in range(k))


def ssim(x, y, data_range=1.0, size=11, sigma=1.5):
    """Mean SSIM (Wang et al. 2004: Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03) per image,
    averaged over channels; x, y (N, C, H, W) in [0, data_range]. Returns (N,)."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    w = gaussian_window(size, sigma)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    out = []
    for c in range(x.shape[1]):
        a, b = x[:, c], y[:, c]
        mu_a, mu_b = _filter_valid(a, w), _filter_valid(b, w)
        saa = _filter_valid(a * a, w) - mu_a ** 2
        sbb = _filter_valid(b * b, w) - mu_b ** 2
        sab = _filter_valid(a * b, w) - mu_a * mu_b
        m = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (saa + sbb + c2))
        out.append(m.mean(axis=(1, 2)))
    return np.mean(out, axis=0)


def destyle(b):
    """Restyled images (N, 3, H, W) in [0, 1] -> the stroke map (N, 1, H, W) in [0, 1] (undo the
    known colouring channel by channel, average)."""
    from scratchgan.data.image2image import INK, PAPER
    s = (PAPER[None, :, None, None] - b) / (PAPER - INK)[None, :, None, None]
    return np.clip(s.mean(axis=1, keepdims=True), 0.0, 1.0)


def grey(a):
    return np.clip(np.asarray(a).mean(axis=1, keepdims=True), 0.0, 1.0)


# ------------------------------------------------------------------------------ helpers
def save_json(path, rec):
    write_json(path, rec)
    print(f"wrote {path}")


def fashion_classifier(args):
    from scratchgan.metrics.classifier import MNISTClassifier, LeNet
    path = args.out_dir / "lenet_fashion.npz"
    if not path.exists():
        raise SystemExit(f"{path} not found: run the 'classifier' subcommand first")
    with np.load(path) as z:
        state = {k: z[k] for k in z.files}
    m = LeNet()
    m.load_state_dict(state)
    if args.device != "cpu":
        m.to(args.device)
    return MNISTClassifier(m)


def mnist_classifier(args):
    from scratchgan.metrics.classifier import load_classifier
    return load_classifier(device=args.device)


def cmd_classifier(args):
    from scratchgan.data import load_dataset
    from scratchgan.metrics.classifier import LeNet, MNISTClassifier
    from scratchgan.ops.loss import softmax_cross_entropy_backward, softmax_cross_entropy_forward
    from scratchgan.optim import Adam
    from scratchgan.backend import to_device
    xtr, ytr = load_dataset("fashion-mnist", (0.0, 1.0), data_dir=args.data_dir, split="train")
    xte, yte = load_dataset("fashion-mnist", (0.0, 1.0), data_dir=args.data_dir, split="test")
    epochs, limit = (1, 2000) if args.quick else (args.epochs or CLASSIFIER_EPOCHS, None)
    if limit:
        xtr, ytr, xte, yte = xtr[:limit], ytr[:limit], xte[:500], yte[:500]
    rng = np.random.default_rng(0)
    model = LeNet(rng=rng)
    if args.device != "cpu":
        model.to(args.device)
    opt = Adam(model.parameters(), lr=1e-3)
    t0 = time.time()
    for epoch in range(epochs):
        opt.lr = 1e-3 * 0.5 ** (epoch // 3)      # halved every third epoch
        model.train()
        perm = rng.permutation(len(xtr))
        for s in range(len(xtr) // 64):
            idx = perm[s * 64:(s + 1) * 64]
            xb, yb = xtr[idx], ytr[idx]
            if args.device != "cpu":
                xb, yb = to_device(xb, args.device), to_device(yb, args.device)
            model.zero_grad()
            loss, cache = softmax_cross_entropy_forward(model.forward(xb), yb)
            model.backward(softmax_cross_entropy_backward(1.0, cache))
            opt.step()
        acc = MNISTClassifier(model).accuracy(xte, yte)
        print(f"epoch {epoch + 1}/{epochs}: test accuracy {acc:.4f} ({time.time() - t0:.0f}s)")
    model.eval()
    np.savez(args.out_dir / "lenet_fashion.npz", **model.state_dict())
    save_json(args.out_dir / "classifier_fashion.json",
              {"test_accuracy": acc, "epochs": epochs, "quick": args.quick,
               "seconds": round(time.time() - t0, 1), "target": ">= 0.90",
               "recipe": "LeNet, Adam 1e-3 halved every 3 epochs, batch 64, seed 0",
               "device": args.device})


def train_run(args, model_name, dataset, run, hyper, steps, batch):
    """Train through the Trainer (resumable); returns the model."""
    from scratchgan import manual_seed
    from scratchgan.data import load_dataset
    from scratchgan.models import get_model
    from scratchgan.train import Trainer
    cls = get_model(model_name)
    limit = 512 if args.quick else None
    x, y = load_dataset(dataset, cls.data_range, data_dir=args.data_dir, split="train", limit=limit)
    manual_seed(args.seed)
    model = cls(x.shape[1:], device=args.device, **hyper)
    model.set_preview(x)
    out = args.out_dir / "runs" / run
    trainer = Trainer(model, x, y, batch_size=batch, steps=steps, out_dir=out, seed=args.seed,
                      checkpoint_every=args.checkpoint_every, progress=not args.no_progress,
                      config={"model": model_name, "dataset": dataset, "hyper": hyper,
                              "data_shape": list(x.shape[1:]), "batch_size": batch,
                              "seed": args.seed, "data_range": list(cls.data_range)},
                      resume=args.resume and (out / "last.ckpt.npz").exists(),
                      log_every=50)
    t0 = time.time()
    trainer.fit()
    print(f"{run}: {steps} steps in {time.time() - t0:.0f}s")
    return model, time.time() - t0


def translate_all(model, a, batch=500, **kw):
    lo, hi = model.data_range
    outs = [to_numpy(model.translate(a[i:i + batch], **kw)) for i in range(0, len(a), batch)]
    return np.concatenate(outs)


def to01(a, dr):
    lo, hi = dr
    return (np.asarray(a, np.float64) - lo) / (hi - lo)


def paired_scores(out01, b01, y, clf, hidden=None):
    """L1 and SSIM to the targets, and the classifier's accuracy on outputs and on targets;
    ``hidden`` (H, W) bool: also the L1 over those pixels only."""
    rec = {"l1": float(np.abs(out01 - b01).mean()), "ssim": float(ssim(out01, b01).mean()),
           "label_acc_translated": clf.accuracy(out01.astype(np.float32), y),
           "label_acc_real_targets": clf.accuracy(b01.astype(np.float32), y)}
    rec["label_gap_points"] = 100 * (rec["label_acc_real_targets"] - rec["label_acc_translated"])
    if hidden is not None:
        rec["l1_hidden_pixels"] = float(np.abs(out01 - b01)[:, :, hidden].mean())
    return rec


def run_pix2pix(args):
    """Train (or resume) one pix2pix run and score it on the test split; returns
    (record, model, a, out, b, y)."""
    steps = args.steps or (20 if args.quick else PIX2PIX_STEPS)
    hyper = {"objective": args.objective}
    if args.quick:
        hyper.update(ngf=8, ndf=8)
    run = f"pix2pix_{args.task}_{args.objective.replace('+', '-')}"
    model, secs = train_run(args, "pix2pix", args.task, run, hyper, steps, 8 if args.quick else 64)
    n = 200 if args.quick else args.n_test
    from scratchgan.data import load_dataset
    x, y = load_dataset(args.task, model.data_range, data_dir=args.data_dir, split="test", limit=n)
    a, b = model.split(x)
    out = translate_all(model, a)
    o01, b01 = np.clip(to01(out, model.data_range), 0, 1), to01(b, model.data_range)
    clf = fashion_classifier(args) if args.task == "edges2fashion" else mnist_classifier(args)
    hidden = None
    if args.task.startswith("quadrants"):
        from scratchgan.data.quadrants import revealed_mask
        hidden = ~revealed_mask(int(args.task[-1]))
    rec = {"run": run, "task": args.task, "objective": args.objective, "steps": steps,
           "train_seconds": round(secs, 1), "n_test": int(len(x)), "device": args.device,
           "quick": args.quick, **paired_scores(o01, b01, y, clf, hidden)}
    print(json.dumps(rec, indent=1))
    save_json(args.out_dir / f"{run}.json", rec)
    from scratchgan import viz
    from scratchgan.viz import interleave_rows
    k = 10
    viz.save_grid(interleave_rows([a[:k], out[:k], b[:k]]), args.out_dir / f"{run}_grid.png",
                  nrow=k, data_range=model.data_range)
    return rec, model, a, out, b, y


def cmd_pix2pix(args):
    run_pix2pix(args)


def cmd_quadrants(args):
    """pix2pix (L1 + cGAN) on quadrant completion with ``--shown`` quadrants, beside a CVAE run
    (``--cvae RUN``: a run of ``scratchgan train cvae --dataset mnist --set n_revealed=Q``) on
    the same test images: L1 (whole image and hidden pixels), SSIM, LeNet label preservation."""
    args.task = f"quadrants-paired{args.shown}"
    args.objective = "l1+cgan"
    rec, model, a, out, b, y = run_pix2pix(args)
    if not args.cvae:
        print("no --cvae run given: the CVAE column is left out")
        return
    from scratchgan.runs import load_model
    from scratchgan.data.quadrants import revealed_mask
    ckpt = pathlib.Path(args.cvae)
    cvae, cfg = load_model(ckpt / "last.ckpt.npz" if ckpt.is_dir() else ckpt, args.device)
    shown = cvae.hp.get("n_revealed")
    if cfg.get("dataset") != "mnist" or shown != args.shown:
        raise SystemExit(f"--cvae: expected a CVAE trained on mnist with n_revealed="
                         f"{args.shown}, got dataset {cfg.get('dataset')!r}, n_revealed {shown!r}")
    b01 = to01(b, model.data_range).astype(np.float32)
    comp = np.concatenate([to_numpy(cvae.complete(cvae.to_model(b01[i:i + 500]), n=1,
                                                  rng=np.random.default_rng(i))[0])
                           for i in range(0, len(b01), 500)])
    crec = {"run": f"cvae_quadrants{args.shown}", "cvae_run": str(args.cvae),
            "n_test": int(len(b01)), **paired_scores(np.clip(comp, 0, 1), b01, y,
                                                     mnist_classifier(args),
                                                     ~revealed_mask(args.shown))}
    print(json.dumps(crec, indent=1))
    save_json(args.out_dir / f"cvae_quadrants{args.shown}.json", crec)


def cmd_cyclegan(args):
    from scratchgan import viz
    from scratchgan.data.image2image import MNIST2RESTYLED
    from scratchgan.metrics import frechet_distance_from_features
    from scratchgan.viz import interleave_rows
    steps = args.steps or (10 if args.quick else CYCLEGAN_STEPS)
    hyper = {"ablation": args.ablation, "decay_steps": steps}
    if args.quick:
        hyper.update(ngf=8, ndf=8, n_blocks=1)
    run = f"cyclegan_{args.ablation}"
    model, secs = train_run(args, "cyclegan", "mnist2restyled", run, hyper, steps,
                            4 if args.quick else 16)
    dr = model.data_range
    xa, ya, xb, yb = MNIST2RESTYLED.load_domains("test", dr, args.data_dir)
    n = 100 if args.quick else args.n_test // 2
    xa, ya, xb, yb = xa[:n], ya[:n], xb[:n], yb[:n]
    fb = translate_all(model, xa, direction="AB")
    ra = translate_all(model, fb, direction="BA")
    fa = translate_all(model, xb, direction="BA")
    rb = translate_all(model, fa, direction="AB")
    c = lambda v: np.clip(to01(v, dr), 0, 1).astype(np.float32)
    clf = mnist_classifier(args)
    feats = lambda imgs: clf.features_and_log_probs(imgs)[0]
    rec = {"run": run, "ablation": args.ablation, "steps": steps, "train_seconds": round(secs, 1),
           "n_test_per_domain": int(n), "device": args.device, "quick": args.quick,
           "digit_acc_A_to_B": clf.accuracy(destyle(c(fb)), ya),
           "digit_acc_real_B": clf.accuracy(destyle(c(xb)), yb),
           "digit_acc_B_to_A": clf.accuracy(grey(c(fa)), yb),
           "digit_acc_real_A": clf.accuracy(grey(c(xa)), ya),
           "cycle_l1_A": float(np.abs(c(ra) - c(xa)).mean()),
           "cycle_l1_B": float(np.abs(c(rb) - c(xb)).mean()),
           "fd_lenet_A_to_B": float(frechet_distance_from_features(feats(destyle(c(fb))),
                                                                     feats(destyle(c(xb))))),
           "fd_lenet_B_to_A": float(frechet_distance_from_features(feats(grey(c(fa))),
                                                                     feats(grey(c(xa)))))}
    print(json.dumps(rec, indent=1))
    save_json(args.out_dir / f"{run}.json", rec)
    k = 10
    grid = interleave_rows([xa[:k], fb[:k], ra[:k], xb[:k], fa[:k], rb[:k]])
    viz.save_grid(grid, args.out_dir / f"{run}_grid.png", nrow=k, data_range=dr)


def cmd_report(args):
    recs = {p.stem: json.loads(p.read_text()) for p in sorted(args.out_dir.glob("*.json"))
            if p.stem != "summary"}
    save_json(args.out_dir / "summary.json", recs)
    lines = ["| run | steps | L1 | SSIM | label acc (translated / real) | cycle L1 A, B | "
             "digit acc A->B / real B | B->A / real A | FD A->B, B->A |", "|" + "---|" * 9]
    for name, r in recs.items():
        if name.startswith(("pix2pix", "cvae")):
            lines.append(f"| {name} | {r.get('steps', '')} | {r['l1']:.4f} | {r['ssim']:.3f} | "
                         f"{r['label_acc_translated']:.3f} / {r['label_acc_real_targets']:.3f} "
                         "| | | | |")
        elif name.startswith("cyclegan"):
            lines.append(f"| {name} | {r['steps']} | | | | {r['cycle_l1_A']:.4f}, "
                         f"{r['cycle_l1_B']:.4f} | {r['digit_acc_A_to_B']:.3f} / "
                         f"{r['digit_acc_real_B']:.3f} | {r['digit_acc_B_to_A']:.3f} / "
                         f"{r['digit_acc_real_A']:.3f} | {r['fd_lenet_A_to_B']:.2f}, "
                         f"{r['fd_lenet_B_to_A']:.2f} |")
        elif name.startswith("classifier"):
            lines.append(f"| {name} (Fashion LeNet test accuracy {r['test_accuracy']:.4f}) |" + " |" * 8)
    (args.out_dir / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def cmd_all(args):
    cmd_classifier(args)
    for obj in ("l1+cgan", "l1", "cgan"):
        args.objective = obj
        cmd_pix2pix(args)
    args.objective = "l1+cgan"
    for shown in (1, 2, 3):
        args.shown = shown
        cmd_quadrants(args)
    for abl in ("none", "no-cycle", "no-identity"):
        args.ablation = abl
        cmd_cyclegan(args)
    cmd_report(args)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=("classifier", "pix2pix", "quadrants", "cyclegan", "report",
                                        "all"))
    p.add_argument("--shown", type=int, default=1, choices=(1, 2, 3),
                   help="quadrants: quadrants shown")
    p.add_argument("--cvae", help="quadrants: a CVAE run folder to score on the same images")
    p.add_argument("--task", default="edges2fashion",
                   choices=("edges2fashion", "quadrants-paired1", "quadrants-paired2",
                            "quadrants-paired3"))
    p.add_argument("--objective", default="l1+cgan", choices=("l1+cgan", "l1", "cgan"))
    p.add_argument("--ablation", default="none", choices=("none", "no-cycle", "no-identity"))
    p.add_argument("--steps", type=int, help="training steps (default: sized for ~4 GPU minutes)")
    p.add_argument("--epochs", type=int, help="classifier epochs (default 15)")
    p.add_argument("--n-test", type=int, default=10000, help="test examples evaluated")
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=1000)
    p.add_argument("--resume", action="store_true", help="continue runs from their checkpoints")
    p.add_argument("--quick", action="store_true", help="tiny CPU smoke run")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out-dir", type=pathlib.Path, default=OUT)
    args = p.parse_args(argv)
    if args.quick and args.out_dir == OUT:
        args.out_dir = OUT / "quick"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    {"classifier": cmd_classifier, "pix2pix": cmd_pix2pix, "quadrants": cmd_quadrants,
     "cyclegan": cmd_cyclegan,
     "report": cmd_report, "all": cmd_all}[args.command](args)


if __name__ == "__main__":
    main()
