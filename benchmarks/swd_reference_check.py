"""How far apart are two sets of *real* images under the sliced Wasserstein distance?

The floor an SWD score should be read against. Four pairs of 4,096 images per data set
(MNIST and Fashion-MNIST padded to 32×32, scaled to [-1, 1]), each scored with
``scratchgan.metrics.swd.sliced_wasserstein_distance`` (×10³, mean over the pyramid levels):

* the first 4,096 training images against the first 4,096 test images (the "real" reference
  that ``pggan_experiments.py mnist`` wrote until 2026-11-30);
* a random training subset against the first 4,096 test images;
* two disjoint random training subsets (what sampling alone costs);
* the first 4,096 test images against the next 4,096.

    python benchmarks/swd_reference_check.py --data-dir DATA [--seeds 0 1]

Output: benchmarks/results/pggan/swd-reference-check.json (CPU; about 4 minutes per pair and
seed on 2 cores).
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_common import write_json  # noqa: E402
from scratchgan.data import load_dataset  # noqa: E402
from scratchgan.metrics.swd import sliced_wasserstein_distance  # noqa: E402


def pairs(tr, te, n, rng):
    perm = rng.permutation(len(tr))
    a, b = tr[perm[:n]], tr[perm[n:2 * n]]
    return [("train[:n] vs test[:n]", tr[:n], te[:n]),
            ("random train subset vs test[:n]", a, te[:n]),
            ("two disjoint random train subsets", a, b),
            ("test[:n] vs test[n:2n]", te[:n], te[n:2 * n])]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--datasets", nargs="+", default=["mnist32", "fashion-mnist32"])
    p.add_argument("--n", type=int, default=4096, help="images per set")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="SWD direction seeds")
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/pggan/swd-reference-check.json"))
    args = p.parse_args(argv)
    res = {"experiment": "SWD between sets of real images", "n": args.n, "seeds": args.seeds,
           "command": "python benchmarks/swd_reference_check.py " + " ".join(argv or sys.argv[1:]),
           "rows": []}
    for ds in args.datasets:
        tr, _ = load_dataset(ds, (-1.0, 1.0), data_dir=args.data_dir)
        te, _ = load_dataset(ds, (-1.0, 1.0), data_dir=args.data_dir, split="test")
        if 2 * args.n > len(te):
            raise SystemExit(f"--n {args.n}: the test split of {ds} has {len(te)} images, "
                             f"fewer than the 2n the last pair needs")
        for name, a, b in pairs(tr, te, args.n, np.random.default_rng(0)):
            t = time.time()
            vals = [sliced_wasserstein_distance(a, b, data_range=(-1.0, 1.0), seed=s)["mean"]
                    for s in args.seeds]
            row = {"dataset": ds, "pair": name, "swd_x1e3": vals,
                   "seconds": round(time.time() - t, 1)}
            res["rows"].append(row)
            print(f"{ds}: {name}: SWD x1e3 {[round(v, 2) for v in vals]}", flush=True)
            write_json(args.out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
