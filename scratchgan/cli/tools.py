"""The checkpoint tools: ``sample``, ``interpolate``, ``traverse``, ``latent``, ``reconstruct``
and ``translate``. Each reads a run folder (or its ``last.ckpt.npz``) through
:func:`scratchgan.runs.load_model` and writes a picture, by default into the run folder."""
from __future__ import annotations

import os
import pathlib
import sys

import numpy as np

from .. import viz
from ..backend import get_array_module, to_device, to_numpy
from ..data.datasets import DATASETS, load_dataset
from ..data.idx import DataNotFoundError, IDXError
from ..data.standin import load_or_standin
from ..runs import TOOL_PICTURES
from ..viz import _figure, _save, interleave_rows
from .common import (EPILOG, PICTURE_SUFFIXES, RUN_FAILED, HelpFormatter, check_data_dir, check_device,
                     check_output_file, check_writable_dir, checkpoint_file,
                     load_checkpoint_model, nonneg_int, plain_notes, positive_int,
                     toy_data_modes)

__all__ = ["encode_decode", "model_cat", "cmd_sample", "cmd_interpolate", "cmd_reconstruct",
           "cmd_traverse", "cmd_latent", "cmd_translate", "register_sample",
           "register_interpolate", "register_reconstruct", "register_traverse",
           "register_latent", "register_translate"]


def _noise_mix(a, b, t, slerp=False):
    """Interpolate two noise dicts: float arrays linearly (or spherically), the rest from a."""
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
    return to_numpy(model.generate(noise))


def _picture_out(parser, args, ckpt, name):
    """Where a tool writes its picture: ``--out`` (checked: a picture suffix, a folder that
    can be written to), else ``name`` (one of ``TOOL_PICTURES``) in the run folder (checked
    to be writable); both before the model is loaded."""
    if args.out:
        return check_output_file(parser, args.out)
    if not os.access(ckpt.parent, os.W_OK | os.X_OK):
        parser.error(f"the run folder {ckpt.parent} is not writable; give --out FILE.png to "
                     f"write the picture elsewhere")
    return ckpt.parent / name


def _extra_out(parser, path, option):
    """A second output file (``--save-npz``, ``--save-npy``): its folder must be writable."""
    if path:
        check_writable_dir(parser, pathlib.Path(path).parent, f"{option} {path}: its folder")


def _data_dir(parser, args, config):
    """The data folder: ``--data-dir`` when given (it must exist), else the one the run was
    trained with (``config.json``'s ``data_dir``), else None (the usual search)."""
    return check_data_dir(parser, args.data_dir) or config.get("data_dir")


def _takes_labels(model):
    """Whether the model's noise carries a class (``labels``, or InfoGAN's code ``cat``) that
    ``sample_noise(labels=...)`` sets."""
    noise = model.sample_noise(2, rng=np.random.default_rng(0),
                               labels=np.zeros(2, dtype=np.int64))
    return any(k in noise for k in ("labels", "cat"))


def _sample_noise(model, n, rng, label=None):
    if label is not None:
        return model.sample_noise(n, rng=rng, labels=np.full(n, label, dtype=np.int64))
    return model.sample_noise(n, rng=rng)


def cmd_sample(args, parser, registry):
    device = check_device(parser, args.device)
    ckpt = checkpoint_file(parser, args.checkpoint)
    out = _picture_out(parser, args, ckpt, TOOL_PICTURES["sample"][0])
    _extra_out(parser, args.save_npz, "--save-npz")
    model, config = load_checkpoint_model(parser, ckpt, device, registry)
    if args.label is not None:
        if not _takes_labels(model):
            parser.error(f"--label: the {config.get('model')} model of this run draws no class "
                         f"labels (it is not conditional); leave --label out")
        k = int(getattr(model, "hp", {}).get("cat_dim") or config.get("num_classes", 10)) \
            if "cat" in model.sample_noise(1, rng=np.random.default_rng(0)) else \
            int(config.get("num_classes", 10))
        if not 0 <= args.label < k:
            parser.error(f"--label must lie in [0, {k}), got {args.label}")
    noise = _sample_noise(model, args.n, np.random.default_rng(args.seed), args.label)
    s = _generate(model, noise)
    data = None
    ds = config.get("dataset")
    if s.ndim == 2 and ds in DATASETS:
        data = load_dataset(ds, limit=2000)[0] if s.shape[1] <= 2 else None
    viz.save_samples(s, out, data_range=config.get("data_range"), data=data,
                     modes=toy_data_modes(ds), nrow=args.nrow)
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


def cmd_interpolate(args, parser, registry):
    device = check_device(parser, args.device)
    ckpt = checkpoint_file(parser, args.checkpoint)
    names = TOOL_PICTURES["interpolate"]
    out = _picture_out(parser, args, ckpt, names[1] if args.arithmetic else names[0])
    if args.between_real and args.arithmetic:
        parser.error("--between-real and --arithmetic are two different pictures; give one")
    model, config = load_checkpoint_model(parser, ckpt, device, registry)
    rng = np.random.default_rng(args.seed)
    dr = config.get("data_range")
    if len(model.data_shape) != 3:
        parser.error("interpolate needs an image model (samples of shape (C, H, W))")
    if args.arithmetic:
        # DCGAN Sec. 6.3: average the z of each group, then z_A - z_B + z_C
        ref = model.sample_noise(args.n, rng=rng)
        ref_img = _generate(model, ref)
        ref_path = out.with_name(out.stem + "_reference" + out.suffix)
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
    ds = args.dataset or config.get("dataset")
    if ds not in DATASETS:
        parser.error(f"unknown dataset {ds!r}; valid choices are {', '.join(DATASETS)}")
    try:
        with plain_notes(f"scratchgan {args.command}"):
            x, y, _ = load_or_standin(ds, tuple(config.get("data_range") or (0.0, 1.0)),
                                      data_dir=_data_dir(parser, args, config), split=args.split,
                                      download=False, standin=bool(config.get("standin")))
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
    if labels is not None:
        noise = model.sample_noise(len(z), rng=np.random.default_rng(0), labels=labels)
    else:
        noise = model.sample_noise(len(z), rng=np.random.default_rng(0))
    zz = z.astype(model.dtype)
    noise["z"] = to_device(zz, model.device) if getattr(model, "device", "cpu") != "cpu" else zz
    return _generate(model, noise)


def cmd_reconstruct(args, parser, registry):
    """x -> E -> G for ``--n`` real examples: originals above their reconstructions (image
    models, ``--nrow`` per row), or a scatter joining each 2-D point to its reconstruction."""
    device = check_device(parser, args.device)
    ckpt = checkpoint_file(parser, args.checkpoint)
    out = _picture_out(parser, args, ckpt, TOOL_PICTURES["reconstruct"][0])
    check_data_dir(parser, args.data_dir)
    model, config = load_checkpoint_model(parser, ckpt, device, registry)
    _need_encoder(parser, model, config, "reconstruct")
    x, labels, err = _real_examples(parser, model, config, args, args.n)
    if x is None:
        print(f"scratchgan reconstruct: error: {err}", file=sys.stderr)
        return RUN_FAILED
    _, xr = encode_decode(model, x, labels)
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
    _need_encoder(parser, model, config, "interpolate --between-real")
    x, labels, err = _real_examples(parser, model, config, args, 2 * args.rows)
    if x is None:
        print(f"scratchgan interpolate: error: {err}", file=sys.stderr)
        return RUN_FAILED
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
    xp = get_array_module(*arrs)
    return xp.concatenate(arrs, axis=0)


def cmd_traverse(args, parser, registry):
    """InfoGAN code sweeps (paper Fig. 2): one block per code; in each row the noise z is
    fixed and only that code changes along the row (the categorical code runs over its
    categories, each continuous code over ``--range`` in ``--frames`` steps)."""
    device = check_device(parser, args.device)
    ckpt = checkpoint_file(parser, args.checkpoint)
    out = _picture_out(parser, args, ckpt, TOOL_PICTURES["traverse"][0])
    model, config = load_checkpoint_model(parser, ckpt, device, registry)
    if hasattr(model, "traverse_rows"):      # betavae: one row per latent, the rest at 0
        rows = model.traverse_rows(values=np.linspace(args.range[0], args.range[1], args.frames))
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
    viz.save_rows(rows, out, data_range=config.get("data_range"))
    print(f"wrote {out}: blocks from top: {', '.join(order)}")
    return 0


def cmd_latent(args, parser, registry):
    device = check_device(parser, args.device)
    ckpt = checkpoint_file(parser, args.checkpoint)
    names = TOOL_PICTURES["latent"]
    if args.out:
        parser.error(f"--out {args.out}: latent writes two pictures ({', '.join(names)}); give "
                     f"the folder for them with --out-dir")
    out_dir = pathlib.Path(args.out_dir or ckpt.parent)
    check_writable_dir(parser, out_dir, "--out-dir" if args.out_dir else "the run folder")
    check_data_dir(parser, args.data_dir)
    model, config = load_checkpoint_model(parser, ckpt, device, registry)
    _need_encoder(parser, model, config, "latent")
    ds = args.dataset or config.get("dataset")
    if ds not in DATASETS:
        parser.error(f"unknown dataset {ds!r}; valid choices are {', '.join(DATASETS)}")
    try:
        # a run trained on stand-in images (a dry run without the files) is shown stand-in
        # images again; nothing is downloaded
        with plain_notes("scratchgan latent"):
            x, y, _ = load_or_standin(ds, tuple(config.get("data_range") or (0.0, 1.0)),
                                      data_dir=_data_dir(parser, args, config),
                                      split=args.split, limit=args.n,
                                      download=not config.get("standin"),
                                      standin=bool(config.get("standin")))
    except (DataNotFoundError, IDXError, ValueError) as e:
        print(f"scratchgan latent: error: {e}", file=sys.stderr)
        return RUN_FAILED
    if tuple(x.shape[1:]) != tuple(model.data_shape):
        parser.error(f"dataset {ds} has examples of shape {x.shape[1:]}, the model expects "
                     f"{tuple(model.data_shape)}")
    zs = []
    for i in range(0, len(x), 500):
        xb = x[i:i + 500].astype(model.dtype)
        zs.append(to_numpy(model.encode(to_device(xb, device) if device != "cpu" else xb)))
    z = np.concatenate(zs)
    p1 = viz.latent_scatter(z, y, out_dir / names[0],
                            title=f"{config.get('model')} codes of {ds} ({args.split})")
    print(f"wrote {p1}")
    if z.shape[1] == 2 and len(model.data_shape) == 3:
        template = model.sample_noise(1, rng=np.random.default_rng(0))
        if config.get("model") == "vae":
            from scipy.stats import norm   # SciPy only here: a second of import time
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

        p2 = viz.manifold_grid(decode, out_dir / names[1], values=values,
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
def cmd_translate(args, parser, registry):
    """Translate images with a pix2pix or CycleGAN run: from a .npy file of inputs (values in
    [0, 1]) or the first ``--n`` examples of the run's data set (``--split``); writes a grid
    with rows of up to 10 inputs, their translations and, for paired sets, the targets."""
    device = check_device(parser, args.device)
    ckpt = checkpoint_file(parser, args.checkpoint)
    out = _picture_out(parser, args, ckpt, TOOL_PICTURES["translate"][0])
    _extra_out(parser, args.save_npy, "--save-npy")
    check_data_dir(parser, args.data_dir)
    model, config = load_checkpoint_model(parser, ckpt, device, registry)
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
            with plain_notes("scratchgan translate"):
                x, _, _ = load_or_standin(ds, (lo, hi), data_dir=_data_dir(parser, args, config),
                                          split=args.split, download=False,
                                          standin=bool(config.get("standin")))
        except (DataNotFoundError, IDXError, ValueError) as e:
            print(f"scratchgan translate: error: {e}", file=sys.stderr)
            return RUN_FAILED
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
    viz.save_grid(grid, out, nrow=min(10, len(a)), data_range=(lo, hi))
    if args.save_npy:
        np.save(args.save_npy, (to_numpy(out_imgs) - lo) / (hi - lo))
    what = "inputs, outputs" + (", targets" if target is not None else "")
    print(f"wrote {out} (rows of {what}; {len(a)} images)")
    return 0


# ---------------------------------------------------------------------------- options
def _checkpoint_parser(sub, name, help_text):
    """A checkpoint tool's subparser with the options they all take."""
    s = sub.add_parser(name, help=help_text, description=help_text,
                       formatter_class=HelpFormatter, epilog=EPILOG)
    s.add_argument("checkpoint", help="a last.ckpt.npz file or a run folder")
    s.add_argument("--device", default="cpu", help="cpu or cuda")
    s.add_argument("--seed", type=nonneg_int, default=0, help="random seed")
    if name == "latent":
        s.add_argument("--out", help="refused: latent writes two pictures, into --out-dir "
                                     "(default: the run folder)")
    else:
        names = TOOL_PICTURES[name]
        default = names[0] + (f" ({names[1]} with --arithmetic)" if len(names) > 1 else "")
        s.add_argument("--out", help=f"output picture ({', '.join(PICTURE_SUFFIXES)}; default: "
                                     f"{default} in the run folder)")
    return s


def register_sample(sub):
    """Add the ``sample`` subcommand to the subparsers ``sub``."""
    s = _checkpoint_parser(sub, "sample", "draw samples from a checkpoint into a grid PNG")
    s.add_argument("--n", type=positive_int, default=100, help="number of samples")
    s.add_argument("--nrow", type=positive_int, help="images per row (default: about the square root of --n)")
    s.add_argument("--label", type=nonneg_int, help="class label, for models that draw one "
                   "(default: the model's own draw)")
    s.add_argument("--save-npz", metavar="PATH", help="also save the raw samples (.npz; default: not "
                   "saved)")
    s.set_defaults(func=cmd_sample)
    return s


def register_interpolate(sub):
    """Add the ``interpolate`` subcommand to the subparsers ``sub``."""
    s = _checkpoint_parser(sub, "interpolate",
                           "latent interpolation strips; DCGAN latent vector arithmetic")
    s.add_argument("--rows", type=positive_int, default=8, help="number of strips")
    s.add_argument("--frames", type=positive_int, default=10, help="images per strip")
    s.add_argument("--slerp", action="store_true", help="spherical instead of linear")
    s.add_argument("--arithmetic", nargs=3, metavar=("A", "B", "C"),
                   help="z_A - z_B + z_C on a reference grid; each of A, B, C is an index or "
                        "indices joined by + (averaged), e.g. 3+8 5 12 (default: strips, not "
                        "arithmetic)")
    s.add_argument("--n", type=positive_int, default=64, help="reference grid size (arithmetic)")
    s.add_argument("--between-real", action="store_true",
                   help="models with an encoder: interpolate between the codes E(x) of two "
                        "real examples (drawn with --seed from --split of the run's data set), "
                        "shown at the two ends of each strip")
    s.add_argument("--dataset", help="data set of the real examples (default: the training one)")
    s.add_argument("--data-dir", help="an existing folder holding mnist/ and fashion-mnist/ "
                                      "(default: the run's, else the usual search)")
    s.add_argument("--split", choices=("train", "test"), default="test",
                   help="which split of the data set")
    s.set_defaults(func=cmd_interpolate)
    return s


def register_reconstruct(sub):
    """Add the ``reconstruct`` subcommand to the subparsers ``sub``."""
    s = _checkpoint_parser(sub, "reconstruct", "models with an encoder: x -> E -> G for real "
                           "examples (originals above their reconstructions)")
    s.add_argument("--n", type=positive_int, default=20, help="number of real examples")
    s.add_argument("--nrow", type=positive_int, help="images per row (default: min(n, 10))")
    s.add_argument("--dataset", help="data set to reconstruct (default: the training one)")
    s.add_argument("--data-dir", help="an existing folder holding mnist/ and fashion-mnist/ "
                                      "(default: the run's, else the usual search)")
    s.add_argument("--split", choices=("train", "test"), default="test",
                   help="which split of the data set")
    s.set_defaults(func=cmd_reconstruct)
    return s


def register_traverse(sub):
    """Add the ``traverse`` subcommand to the subparsers ``sub``."""
    s = _checkpoint_parser(sub, "traverse",
                           "InfoGAN: vary one latent code per row, the rest fixed")
    s.add_argument("--rows", type=positive_int, default=5, help="rows (fixed noise) per code")
    s.add_argument("--frames", type=positive_int, default=10,
                   help="values per continuous code")
    s.add_argument("--range", type=float, nargs=2, default=(-2.0, 2.0), metavar=("LO", "HI"),
                   help="range of continuous codes (default -2 2, as in the paper)")
    s.set_defaults(func=cmd_traverse)
    return s


def register_latent(sub):
    """Add the ``latent`` subcommand to the subparsers ``sub``."""
    s = _checkpoint_parser(sub, "latent",
                           "VAE/AAE: latent scatter coloured by label, 2-D manifold")
    s.add_argument("--dataset", help="data set to encode (default: the training one)")
    s.add_argument("--data-dir", help="an existing folder holding mnist/ and fashion-mnist/ "
                                      "(default: the run's, else the usual search)")
    s.add_argument("--split", choices=("train", "test"), default="test",
                   help="which split of the data set")
    s.add_argument("--n", type=positive_int, default=5000, help="examples to encode")
    s.add_argument("--grid", type=positive_int, default=20, help="manifold grid size")
    s.add_argument("--out-dir", help="output folder (default: the run folder)")
    s.set_defaults(func=cmd_latent)
    return s


def register_translate(sub):
    """Add the ``translate`` subcommand to the subparsers ``sub``."""
    s = _checkpoint_parser(sub, "translate", "pix2pix/CycleGAN: translate images into a grid "
                           "(input, output, target)")
    s.add_argument("--input", metavar="FILE.npy",
                   help="images to translate, (N, C, H, W) or (N, H, W) in [0, 1] (default: "
                        "the run's data set)")
    s.add_argument("--dataset", help="data set (default: the training one)")
    s.add_argument("--data-dir", help="an existing folder holding mnist/ and fashion-mnist/ "
                                      "(default: the run's, else the usual search)")
    s.add_argument("--split", choices=("train", "test"), default="test",
                   help="which split of the data set")
    s.add_argument("--n", type=positive_int, default=20, help="images to translate")
    s.add_argument("--direction", choices=("AB", "BA"), default="AB",
                   help="cyclegan: A -> B (default) or B -> A")
    s.add_argument("--save-npy", metavar="PATH", help="also save the outputs (in [0, 1]; "
                   "default: not saved)")
    s.set_defaults(func=cmd_translate)
    return s
