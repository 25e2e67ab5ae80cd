"""What is shape worth to a β-VAE on the dSprites-like set? An ideal-decoder budget.

A decoder with factorised Bernoulli outputs does best, for a given code, by predicting each
pixel's probability of being on among the images that share that code. So if the code holds
position and scale exactly and nothing else, the least expected reconstruction NLL per
image is the summed binary entropy of the pixel means over the 3 × 40 shape-orientation
images at that position and scale:

    H0 = Σ_d h(p0_d),   p0 = mean over shape and orientation,   h(p) = -p log p - (1-p) log(1-p).

Adding shape to the code lowers it to H1 = mean over shapes of Σ_d h(p1_d), p1 = the mean
over the 40 orientations of that shape; adding orientation too makes the image
deterministic (NLL 0). Adding orientation alone gives H_θ (the mean over shapes at each
orientation). The differences are the most that encoding shape or orientation can buy in
reconstruction, in nats per image:

    gain(shape) = H0 - H1,   gain(orientation | shape) = H1,   gain(orientation) = H0 - H_θ.

The β-VAE pays β times the KL for what it encodes; transmitting a 3-valued factor exactly
needs at least log 3 = 1.10 nats of KL (the mutual information). So a model that encodes
position and scale and stops there is not at the objective's optimum whenever
gain(shape) > β log 3, and the failure to encode shape is then the optimiser's, not the
objective's. :func:`information_budget` gives these numbers for every scale at a few
positions (position only shifts the picture, up to the rasteriser's sub-pixel rounding);
run as a module it prints them (and writes them as JSON with ``--out``):

    python -m scratchgan.metrics.information [--out benchmarks/results/betavae/information.json]
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys

import numpy as np

from ..data import dsprites as D

__all__ = ["POSITIONS", "binary_entropy", "image_entropy", "budget", "information_budget",
           "main"]

POSITIONS = ((15, 15), (16, 16), (4, 27), (27, 4), (9, 20))


def binary_entropy(p):
    """h(p) in nats, elementwise, with h(0) = h(1) = 0."""
    p = np.asarray(p, np.float64)
    q = 1.0 - p
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(np.where(p > 0, p * np.log(p), 0.0) + np.where(q > 0, q * np.log(q), 0.0))
    return h


def image_entropy(img):
    """Entropy (nats) of the picture when shape and orientation are uniform: the least KL that
    lets a code tell every distinct picture apart (rotations that give the same pixels, like a
    square's quarter turns, count once)."""
    _, counts = np.unique(img.reshape(-1, img.shape[-1]), axis=0, return_counts=True)
    q = counts / counts.sum()
    return float(-(q * np.log(q)).sum()), int(len(counts))


def budget(scale, px, py):
    """(H0, H1, H_theta, mean pixel count, picture entropy, distinct pictures) at one scale
    index and position (nats per image)."""
    ns, no = D.FACTOR_SIZES[0], D.FACTOR_SIZES[2]
    cls = np.array([[s, scale, o, px, py] for s in range(ns) for o in range(no)])
    img = D.render_classes(cls).reshape(ns, no, -1).astype(np.float64)
    h0 = binary_entropy(img.mean(axis=(0, 1))).sum()
    h1 = np.mean([binary_entropy(img[s].mean(axis=0)).sum() for s in range(ns)])
    ht = np.mean([binary_entropy(img[:, o].mean(axis=0)).sum() for o in range(no)])
    hi, nd = image_entropy(img)
    return float(h0), float(h1), float(ht), float(img.sum(axis=2).mean()), hi, nd


def information_budget():
    """The budget per scale (averaged over ``POSITIONS``) and over all scales, with
    β log 3 and β H(picture) for β in 1, 4, 8, 16 (nats per image)."""
    rows = []
    for sc in range(D.FACTOR_SIZES[1]):
        vals = np.array([budget(sc, px, py) for px, py in POSITIONS])
        h0, h1, ht, area, hi, nd = vals.mean(axis=0)
        rows.append({"scale": float(D.SCALES[sc]), "pixels_on": area, "H0": h0, "H1": h1,
                     "H_theta": ht, "gain_shape": h0 - h1, "gain_orientation_given_shape": h1,
                     "gain_orientation": h0 - ht, "picture_entropy": hi,
                     "distinct_pictures": nd,
                     "gain_shape_spread_over_positions": float(np.ptp(vals[:, 0] - vals[:, 1]))})
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "scale"}
    res = {"what": "ideal factorised-Bernoulli decoder: least expected reconstruction NLL "
                   "(nats per image) given position and scale (H0), plus shape (H1), plus "
                   "orientation instead of shape (H_theta)",
           "positions": [list(q) for q in POSITIONS], "per_scale": rows,
           "mean_over_scales": mean, "log3": math.log(3.0),
           "beta_log3": {str(b): b * math.log(3.0) for b in (1, 4, 8, 16)},
           "beta_picture_entropy": {str(b): b * mean["picture_entropy"] for b in (1, 4, 8, 16)}}
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=pathlib.Path, default=None, help="JSON file to write")
    args = p.parse_args(argv)
    if args.out is not None and args.out.suffix != ".json":
        p.error(f"--out must name a .json file, got {args.out}")
    res = information_budget()
    rows, mean = res["per_scale"], res["mean_over_scales"]
    print("scale  pixels   H0     H1     H_theta  gain(shape)  gain(orient|shape)  gain(orient)"
          "  H(picture)  distinct")
    for r in rows:
        print(f"{r['scale']:.2f}  {r['pixels_on']:6.1f}  {r['H0']:6.2f} {r['H1']:6.2f} "
              f"{r['H_theta']:7.2f}  {r['gain_shape']:10.2f}  {r['gain_orientation_given_shape']:17.2f}"
              f"  {r['gain_orientation']:11.2f}  {r['picture_entropy']:10.2f}  {r['distinct_pictures']:8.1f}")
    print(f"mean   {mean['pixels_on']:6.1f}  {mean['H0']:6.2f} {mean['H1']:6.2f} {mean['H_theta']:7.2f}"
          f"  {mean['gain_shape']:10.2f}  {mean['gain_orientation_given_shape']:17.2f}"
          f"  {mean['gain_orientation']:11.2f}  {mean['picture_entropy']:10.2f}"
          f"  {mean['distinct_pictures']:8.1f}")
    print("beta * log 3 (least weighted KL for exact shape): " +
          ", ".join(f"beta {b}: {v:.2f}" for b, v in res["beta_log3"].items()))
    print("beta * H(picture) (least weighted KL for exact shape and orientation): " +
          ", ".join(f"beta {b}: {v:.2f}" for b, v in res["beta_picture_entropy"].items()))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1) + "\n")
        print(f"wrote {args.out}")
    return res


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
