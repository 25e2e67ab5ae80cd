"""Pictures: sample grids, loss curves, 2-D scatters, latent plots, traversals, interpolations.

Uses matplotlib's object-oriented API with the Agg canvas directly, so no
display and no global backend switch is needed.
"""
from __future__ import annotations

import json
import math
import pathlib

import numpy as np

from .backend import to_numpy

__all__ = ["make_grid", "save_grid", "read_metrics", "plot_loss_curves", "scatter_2d",
           "histogram_1d", "latent_scatter", "manifold_grid", "save_rows", "save_samples",
           "to_channels", "interleave_rows", "save_traversal", "save_interpolations"]


def _figure(figsize):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path, dpi=80):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def _as_images(images, image_shape=None):
    """(N, C, H, W) float array from (N,C,H,W), (N,H,W) or flat (N, D)."""
    a = to_numpy(images).astype(np.float64)
    if a.ndim == 2:
        shape = image_shape
        if shape is None:
            side = int(round(math.sqrt(a.shape[1])))
            if side * side != a.shape[1]:
                raise ValueError(f"save_grid: cannot view rows of {a.shape[1]} values as square "
                                 "images; pass image_shape=(C, H, W)")
            shape = (1, side, side)
        a = a.reshape(len(a), *shape)
    elif a.ndim == 3:
        a = a[:, None]
    elif a.ndim != 4:
        raise ValueError(f"save_grid: expected images (N,C,H,W), (N,H,W) or (N,D), got shape {a.shape}")
    return a


def make_grid(images, nrow=None, padding=2, data_range=(0.0, 1.0), pad_value=1.0, image_shape=None):
    """Tile images into one (H', W') or (H', W', 3) array in [0, 1]; ``nrow`` images per row.

    Images with 1 or 3 channels are grey or RGB; any other number of channels (the two of
    mnist-quadrants' [revealed, hidden] pairs) shows each channel in grey, side by side."""
    a = _as_images(images, image_shape)
    lo, hi = (float(v) for v in data_range)
    a = np.clip((a - lo) / (hi - lo), 0.0, 1.0)
    n, c, h, w = a.shape
    if c == 0:
        raise ValueError(f"make_grid: images need at least one channel, got shape {a.shape}")
    if c not in (1, 3):                 # channels side by side, one grey tile each
        a = a.transpose(0, 2, 1, 3).reshape(n, 1, h, c * w)
        n, c, h, w = a.shape
    ncol = nrow or max(1, int(math.ceil(math.sqrt(n))))
    nrows = max(1, int(math.ceil(n / ncol)))
    H = nrows * h + (nrows + 1) * padding
    W = ncol * w + (ncol + 1) * padding
    grid = np.full((c, H, W), pad_value, dtype=np.float64)
    for i in range(n):
        r, q = divmod(i, ncol)
        y0, x0 = padding + r * (h + padding), padding + q * (w + padding)
        grid[:, y0:y0 + h, x0:x0 + w] = a[i]
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


def save_grid(images, path, nrow=None, data_range=(0.0, 1.0), padding=2, image_shape=None,
              scale=2):
    """Save a grid of images as a PNG (grey for one channel); ``nrow`` images per row."""
    import matplotlib.image as mpimg
    grid = make_grid(images, nrow=nrow, padding=padding, data_range=data_range,
                     image_shape=image_shape)
    if scale and scale > 1:
        grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if grid.ndim == 2:
        mpimg.imsave(path, grid, cmap="gray", vmin=0.0, vmax=1.0)
    else:
        mpimg.imsave(path, grid)
    return path


def read_metrics(path):
    """The records of a metrics.jsonl file (blank or torn last lines are skipped).

    A non-finite value is stored as null and named in the record's ``"nonfinite"``
    ({"loss_d": "nan" | "inf" | "-inf"}, or a list of names meaning NaN); it comes back
    as that float and ``"nonfinite"`` is dropped. Older files' bare NaN/Infinity are read too.
    """
    rows = []
    p = pathlib.Path(path)
    if not p.exists():
        return rows
    for line in p.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(rec, dict):
            continue
        bad = rec.pop("nonfinite", None)
        if isinstance(bad, list):
            bad = {k: "nan" for k in bad}
        if isinstance(bad, dict):
            for k, kind in bad.items():
                if rec.get(k) is None:
                    try:
                        rec[k] = float(kind)
                    except (TypeError, ValueError):
                        rec[k] = float("nan")
        rows.append(rec)
    return rows


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def plot_loss_curves(metrics, path, keys=None, smooth=None, title=None):
    """One panel per logged quantity against the step, from a metrics.jsonl path or list of
    dicts. ``lr`` gets a panel when a schedule changes it during the run (a constant rate
    would only repeat the configuration)."""
    rows = read_metrics(metrics) if isinstance(metrics, (str, pathlib.Path)) else list(metrics)
    skip = {"step", "epoch", "time"}
    if len({r["lr"] for r in rows if _is_number(r.get("lr"))}) < 2:
        skip.add("lr")
    if keys is None:
        keys = []
        for r in rows:
            for k, v in r.items():
                if k not in skip and k not in keys and _is_number(v):
                    keys.append(k)
    keys = list(keys) or ["(no metrics)"]
    ncols = min(3, len(keys))
    nrows = int(math.ceil(len(keys) / ncols))
    fig = _figure((4.2 * ncols, 2.8 * nrows))
    for i, k in enumerate(keys):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        pts = [(r["step"], r[k]) for r in rows if k in r and "step" in r and r[k] is not None]
        if pts:
            s, v = np.array(pts, dtype=np.float64).T
            ax.plot(s, v, lw=0.8, alpha=0.5 if smooth else 1.0)
            win = smooth or 0
            if win > 1 and len(v) > win:
                kern = np.ones(win) / win
                ax.plot(s[win - 1:], np.convolve(v, kern, mode="valid"), lw=1.5)
        ax.set_title(k, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.08, right=0.97, bottom=0.12, top=0.85 if title else 0.9,
                        wspace=0.3, hspace=0.6)
    return _save(fig, path)


def scatter_2d(samples, path, data=None, modes=None, title=None, lim=None, labels=None):
    """Generated 2-D points over the data (grey) and mode centres (thin red crosses drawn
    beneath the points, so the data and samples at a mode stay visible)."""
    s = to_numpy(samples).reshape(len(samples), -1)
    fig = _figure((5, 5))
    ax = fig.add_subplot(1, 1, 1)
    if modes is not None:
        m = np.asarray(modes)
        ax.scatter(m[:, 0], m[:, 1], marker="x", c="red", s=40, linewidths=0.7, label="modes",
                   zorder=1)
    if data is not None:
        d = np.asarray(to_numpy(data)).reshape(len(data), -1)
        ax.scatter(d[:, 0], d[:, 1], s=3, c="0.55", alpha=0.6, label="data", linewidths=0,
                   zorder=2)
    if labels is not None:
        ax.scatter(s[:, 0], s[:, 1], s=4, c=np.asarray(labels), cmap="tab10", label="samples",
                   linewidths=0, zorder=3)
    else:
        ax.scatter(s[:, 0], s[:, 1], s=4, c="tab:blue", alpha=0.7, label="samples", linewidths=0,
                   zorder=3)
    if lim is None and data is not None:
        d = np.asarray(to_numpy(data)).reshape(len(data), -1)
        span = np.abs(d[:, :2]).max() * 1.3
        lim = (-span, span)
    if lim is not None:
        ax.set_xlim(*lim)
        ax.set_ylim(*lim)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=7, markerscale=3)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def histogram_1d(samples, path, data=None, title=None, bins=60):
    """Histogram of 1-D samples against the data's histogram (densities)."""
    s = to_numpy(samples).ravel()
    fig = _figure((6, 3.5))
    ax = fig.add_subplot(1, 1, 1)
    edges = bins
    if data is not None:
        d = np.asarray(to_numpy(data)).ravel()
        lo = min(d.min(), s.min()) if np.isfinite(s).all() else d.min()
        hi = max(d.max(), s.max()) if np.isfinite(s).all() else d.max()
        edges = np.linspace(lo, hi, bins + 1)
        ax.hist(d, bins=edges, density=True, alpha=0.5, color="0.5", label="data")
    ax.hist(s[np.isfinite(s)], bins=edges, density=True, alpha=0.6, color="tab:blue",
            label="samples")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return _save(fig, path)


def latent_scatter(z, labels, path, title=None, dims=(0, 1)):
    """Latent codes (two chosen dims) coloured by class label (VAE / AAE)."""
    z = to_numpy(z).reshape(len(z), -1)
    if z.shape[1] < 2:
        raise ValueError(f"latent_scatter: need at least 2 latent dimensions, got {z.shape[1]}")
    i, j = dims
    fig = _figure((6, 5.2))
    ax = fig.add_subplot(1, 1, 1)
    lab = None if labels is None else np.asarray(to_numpy(labels)).ravel()
    sc = ax.scatter(z[:, i], z[:, j], s=3, c=lab if lab is not None else "tab:blue",
                    cmap="tab10", linewidths=0)
    if lab is not None:
        cb = fig.colorbar(sc, ax=ax, ticks=np.unique(lab)[:20])
        cb.set_label("label")
    ax.set_xlabel(f"z[{i}]")
    ax.set_ylabel(f"z[{j}]")
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title)
    return _save(fig, path)


def manifold_grid(decode, path, n=20, lims=((-2.0, 2.0), (-2.0, 2.0)), values=None,
                  data_range=(0.0, 1.0), image_shape=None):
    """Decode an ``n x n`` grid of 2-D latent values and tile the images.

    ``decode(z)`` maps an (n*n, 2) float array to images. ``values``, when given,
    is a pair of 1-D arrays used instead of ``linspace`` over ``lims`` (e.g. the
    Gaussian quantiles of a VAE's prior). Row 0 is the largest second coordinate.
    """
    if values is None:
        xs = np.linspace(lims[0][0], lims[0][1], n)
        ys = np.linspace(lims[1][0], lims[1][1], n)
    else:
        xs, ys = (np.asarray(v, dtype=np.float64) for v in values)
    gy, gx = np.meshgrid(ys[::-1], xs, indexing="ij")
    z = np.stack([gx.ravel(), gy.ravel()], axis=1)
    imgs = decode(z)
    return save_grid(imgs, path, nrow=len(xs), data_range=data_range, padding=1,
                     image_shape=image_shape)


def save_rows(rows, path, data_range=(0.0, 1.0), image_shape=None, padding=2):
    """Save a list of equal-length image rows (each (T, ...)) as one grid: traversals,
    interpolation strips, vector arithmetic."""
    rows = [to_numpy(r) for r in rows]
    t = len(rows[0])
    if any(len(r) != t for r in rows):
        raise ValueError(f"save_rows: all rows need the same length, got {[len(r) for r in rows]}")
    return save_grid(np.concatenate(rows, axis=0), path, nrow=t, data_range=data_range,
                     image_shape=image_shape, padding=padding)


# names used by the CLI
save_traversal = save_rows
save_interpolations = save_rows


def save_samples(samples, path, data_range=(0.0, 1.0), data=None, modes=None, nrow=None,
                 title=None):
    """The natural picture of model samples: a scatter over the data for 2-D points, a
    histogram for 1-D values, an image grid otherwise."""
    s = to_numpy(samples)
    if s.ndim == 2 and s.shape[1] == 2:
        return scatter_2d(s, path, data=data, modes=modes, title=title)
    if s.ndim == 2 and s.shape[1] == 1:
        return histogram_1d(s, path, data=data, title=title)
    if nrow is None and len(s) % 10 == 0:
        nrow = 10
    return save_grid(s, path, nrow=nrow, data_range=data_range or (0.0, 1.0))


def to_channels(a, c):
    """Repeat a 1-channel batch to ``c`` channels (grids need one channel count)."""
    if a.shape[1] == c:
        return a
    if a.shape[1] == 1:
        from .backend import get_array_module
        return get_array_module(a).repeat(a, c, axis=1)
    raise ValueError(f"cannot show {a.shape[1]}-channel images beside {c}-channel ones")


def interleave_rows(groups, per_row=10):
    """[A, G(A), B] batches -> one batch laid out in rows of ``per_row``: A's, outputs, targets."""
    from .backend import get_array_module
    xp = get_array_module(groups[0])
    c = max(g.shape[1] for g in groups)
    groups = [to_channels(g, c) for g in groups]
    n = groups[0].shape[0]
    parts = []
    for s in range(0, n, per_row):
        parts += [g[s:s + per_row] for g in groups]
    return xp.concatenate(parts, axis=0)
