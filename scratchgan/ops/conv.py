"""2-D convolution and transposed convolution (NCHW), forward and backward.

Notation (shared with ``docs/derivations/conv.md``)::

    x  (N, C, H, W)   input            w  (K, C, R, S)   conv weight
    y  (N, K, P, Q)   output           stride (sh, sw), padding (ph, pw), dilation (dh, dw)

    y[n,k,p,q] = b[k] + sum_{c,r,s} w[k,c,r,s] * xpad[n, c, p*sh + r*dh, q*sw + s*dw]
    P = (H + 2 ph - dh (R-1) - 1) // sh + 1            (Q likewise)

Three layers of code live here:

* **naive references** (``*_naive``): direct sums of the definition, loops over
  output positions; slow, for tests only.
* **fast CPU path**: im2col through a strided view of the padded input, one
  GEMM per call (``M = N*P*Q, N = K, K = C*R*S`` in CUTLASS naming), and col2im
  as a loop over the R*S kernel offsets (never over pixels or the batch).
* **bias-free primitives** ``conv2d_core_forward``, ``conv2d_core_backward_data``
  and ``conv2d_core_backward_filter``: the three GEMMs of a convolution.
  CuPy arrays are dispatched to :mod:`scratchgan.cuda.conv`.

Everything else is built on them. A transposed convolution (weight layout
``(in, out, R, S)`` as in PyTorch) is the adjoint of a convolution whose weight
``(K=in, C=out, R, S)`` is the *same array*: its forward is the convolution's
backward-data, its backward-data is the convolution's forward, and its
backward-filter is the convolution's backward-filter with the roles of x and
dy swapped.
"""
from __future__ import annotations

import threading

import numpy as np

from ..backend import get_array_module, is_gpu_array

__all__ = [
    "conv2d_output_size", "conv_transpose2d_output_size",
    "conv2d_forward_naive", "conv2d_backward_naive", "conv_transpose2d_forward_naive",
    "conv2d_core_forward", "conv2d_core_backward_data", "conv2d_core_backward_filter",
    "conv2d_forward", "conv2d_backward", "conv_transpose2d_forward", "conv_transpose2d_backward",
]


# ----------------------------------------------------------------------------- sizes
def _hw(v):
    if isinstance(v, (tuple, list)):
        return int(v[0]), int(v[1])
    return int(v), int(v)


def conv2d_output_size(input_hw, kernel_size, stride=1, padding=0, dilation=1):
    """(P, Q) of a convolution: ``(H + 2p - d (R-1) - 1) // s + 1`` per axis.

    Values may be ints or (h, w) pairs. A result < 1 means the dilated kernel
    does not fit in the padded input.
    """
    out = []
    for n, k, s, p, d in zip(_hw(input_hw), _hw(kernel_size), _hw(stride), _hw(padding),
                             _hw(dilation)):
        out.append((n + 2 * p - d * (k - 1) - 1) // s + 1)
    return tuple(out)


def conv_transpose2d_output_size(input_hw, kernel_size, stride=1, padding=0, output_padding=0,
                                 dilation=1):
    """(Ho, Wo) of a transposed convolution: ``(H-1) s - 2p + d (R-1) + op + 1`` per axis."""
    out = []
    for n, k, s, p, op, d in zip(_hw(input_hw), _hw(kernel_size), _hw(stride), _hw(padding),
                                 _hw(output_padding), _hw(dilation)):
        out.append((n - 1) * s - 2 * p + d * (k - 1) + op + 1)
    return tuple(out)


def _out_hw(x_shape, w_shape, stride, padding, dilation):
    P, Q = conv2d_output_size(x_shape[2:], w_shape[2:], stride, padding, dilation)
    if P < 1 or Q < 1:
        raise ValueError(f"conv2d: kernel {tuple(w_shape[2:])} with dilation {tuple(dilation)} does "
                         f"not fit the input {tuple(x_shape[2:])} padded by {tuple(padding)} "
                         f"(output size would be {(P, Q)})")
    return P, Q


# ----------------------------------------------------------------------------- naive references
def _window(t, p, q, R, S, stride, dilation):
    """Index of the dilated R x S window feeding output (p, q)."""
    (sh, sw), (dh, dw) = stride, dilation
    return (slice(None), slice(None),
            slice(p * sh, p * sh + dh * (R - 1) + 1, dh),
            slice(q * sw, q * sw + dw * (S - 1) + 1, dw))


def _pad_naive(x, padding):
    ph, pw = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def conv2d_forward_naive(x, w, b, stride, padding, dilation):
    """Reference convolution: the direct sum over (c, r, s) for every output (p, q)."""
    x = np.asarray(x)
    w = np.asarray(w)
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    P, Q = _out_hw(x.shape, w.shape, stride, padding, dilation)
    xp = _pad_naive(x, padding)
    y = np.zeros((N, K, P, Q), dtype=np.result_type(x, w))
    for p in range(P):
        for q in range(Q):
            win = xp[_window(xp, p, q, R, S, stride, dilation)]          # (N, C, R, S)
            y[:, :, p, q] = np.einsum("ncrs,kcrs->nk", win, w)
    if b is not None:
        y += np.asarray(b).reshape(1, K, 1, 1)
    return y


def conv2d_backward_naive(dy, x, w, stride, padding, dilation):
    """Reference gradients of :func:`conv2d_forward_naive`, scattered window by window.

    For each output (p, q): ``dxpad[window] += sum_k dy[n,k,p,q] w[k]`` and
    ``dw[k] += sum_n dy[n,k,p,q] xpad[n, window]``; ``db[k] = sum_{n,p,q} dy``.
    Returns ``(dx, dw, db)``.
    """
    dy, x, w = np.asarray(dy), np.asarray(x), np.asarray(w)
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    P, Q = dy.shape[2:]
    ph, pw = padding
    xp = _pad_naive(x, padding)
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for p in range(P):
        for q in range(Q):
            idx = _window(xp, p, q, R, S, stride, dilation)
            g = dy[:, :, p, q]                                             # (N, K)
            dxp[idx] += np.einsum("nk,kcrs->ncrs", g, w)
            dw += np.einsum("nk,ncrs->kcrs", g, xp[idx])
    dx = dxp[:, :, ph:ph + H, pw:pw + W]
    return dx, dw, dy.sum(axis=(0, 2, 3))


def conv_transpose2d_forward_naive(x, w, b, stride, padding, output_padding, dilation):
    """Reference transposed convolution by its scatter definition.

    ``w`` is (Cin, Cout, R, S). Every input pixel (i, j) adds ``x[n,c,i,j] * w[c,o]``
    to the dilated window of the full output starting at (i*sh, j*sw); the result
    is then cropped by ``padding`` on both sides (output_padding adds rows and
    columns at the bottom/right).
    """
    x, w = np.asarray(x), np.asarray(w)
    N, Ci, H, W = x.shape
    _, Co, R, S = w.shape
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = stride, padding, output_padding, dilation
    Ho, Wo = conv_transpose2d_output_size((H, W), (R, S), stride, padding, output_padding, dilation)
    full = np.zeros((N, Co, (H - 1) * sh + dh * (R - 1) + 1 + oph,
                     (W - 1) * sw + dw * (S - 1) + 1 + opw), dtype=np.result_type(x, w))
    for i in range(H):
        for j in range(W):
            full[_window(full, i, j, R, S, stride, dilation)] += np.einsum(
                "nc,cors->nors", x[:, :, i, j], w)
    y = full[:, :, ph:ph + Ho, pw:pw + Wo].copy()
    if b is not None:
        y += np.asarray(b).reshape(1, Co, 1, 1)
    return y


# ----------------------------------------------------------------------------- fast CPU pieces
# The CPU path works on channels-last (NHWC) copies. Then a column of the im2col
# matrix, row (n, p, q), reads for each kernel row r a *contiguous* run of S*C
# values (dilation 1), and col2im adds runs of C values: long inner loops instead
# of NCHW's runs of Q pixels. The NCHW <-> NHWC transposes are cheap next to im2col.
# Scratch buffers. A fresh NumPy array of tens of MB is mmapped and page-faulted in on
# every call (a tenth of a DCGAN-64 step's CPU time went to the kernel); the temporaries
# that never leave a call (padded input, GEMM outputs before col2im or the NCHW
# transpose, dy's rows) are kept per (role, shape, dtype) and reused, per thread, up to
# _SCRATCH_BYTES in all (past that the cache starts over). Cached or returned arrays are
# never scratch.
_SCRATCH_BYTES = 1 << 30
_scratch_local = threading.local()


def _scratch(role, shape, dtype):
    """A reusable uninitialised array for a temporary that dies within the call."""
    pool = getattr(_scratch_local, "pool", None)
    if pool is None:
        pool = _scratch_local.pool = {}
    key = (role, tuple(shape), np.dtype(dtype).str)
    a = pool.get(key)
    if a is None:
        a = np.empty(shape, dtype=dtype)
        if a.nbytes + sum(v.nbytes for v in pool.values()) > _SCRATCH_BYTES:
            pool.clear()
        if a.nbytes <= _SCRATCH_BYTES:
            pool[key] = a
    return a


def clear_scratch():
    """Drop this thread's conv scratch buffers (memory is returned on the next GC)."""
    getattr(_scratch_local, "pool", {}).clear()


def _nhwc_padded(x, padding, scratch=False):
    """(N, C, H, W) -> C-contiguous (N, H+2ph, W+2pw, C) with a zero border, in one pass."""
    N, C, H, W = x.shape
    ph, pw = padding
    shape = (N, H + 2 * ph, W + 2 * pw, C)
    out = _scratch("pad", shape, x.dtype) if scratch else np.empty(shape, dtype=x.dtype)
    if ph:
        out[:, :ph] = 0
        out[:, ph + H:] = 0
    if pw:
        out[:, :, :pw] = 0
        out[:, :, pw + W:] = 0
    np.copyto(out[:, ph:ph + H, pw:pw + W], x.transpose(0, 2, 3, 1))
    return out


def _to_rows(t, scratch=False):
    """(N, K, P, Q) -> C-contiguous (N*P*Q, K): the GEMM layout of dy (NHWC rows).

    A channels-last array (as this module's CPU outputs are) is reshaped without a copy.
    """
    N, K, P, Q = t.shape
    nhwc = t.transpose(0, 2, 3, 1)
    if nhwc.flags.c_contiguous:
        return nhwc.reshape(N * P * Q, K)
    out = (_scratch("rows_in", (N, P, Q, K), t.dtype) if scratch
           else np.empty((N, P, Q, K), dtype=t.dtype))
    np.copyto(out, nhwc)
    return out.reshape(N * P * Q, K)


def _from_rows(m, N, P, Q, bias=None):
    """(N*P*Q, K) GEMM rows -> an (N, K, P, Q) array *viewing* them (channels-last
    strides, no copy), the bias added in place; ``m`` must be a fresh array."""
    K = m.shape[1]
    if bias is not None:
        m += bias.reshape(1, K)
    return m.reshape(N, P, Q, K).transpose(0, 3, 1, 2)


def _weight_rows(w):
    """(K, C, R, S) -> C-contiguous (K, R*S*C), matching the im2col column order (r, s, c)."""
    K, C, R, S = w.shape
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1)).reshape(K, R * S * C)


def _weight_from_rows(m, w_shape):
    """(K, R*S*C) -> C-contiguous (K, C, R, S)."""
    K, C, R, S = w_shape
    return np.ascontiguousarray(m.reshape(K, R, S, C).transpose(0, 3, 1, 2))


def _weight_grad(a, cols, w_shape):
    """``a^T @ cols`` ((K, M) @ (M, R*S*C), M the long pixel axis) as a (K, C, R, S) weight.

    OpenBLAS is 2-14x faster on these tall reductions when the operand with more columns
    comes first: with R*S*C >= K the product runs as ``(cols^T @ a)^T`` (the transpose
    back is weight-sized), else as written (benchmarks/CPU_NOTES.md).
    """
    K, C, R, S = w_shape
    if cols.shape[1] < a.shape[1]:
        return _weight_from_rows(a.T @ cols, w_shape)
    m = cols.T @ a                                               # (R*S*C, K)
    return np.ascontiguousarray(m.reshape(R, S, C, K).transpose(3, 2, 0, 1))


def _gemm(a, b, role):
    """``a @ b`` into a scratch buffer (a temporary the caller consumes at once)."""
    out = _scratch(role, (a.shape[0], b.shape[1]), np.result_type(a, b))
    return np.matmul(a, b, out=out)


def _im2col(x, R, S, stride, padding, dilation, P, Q, scratch=False):
    """Column matrix ``cols[(n,p,q), (r,s,c)] = xpad[n, c, p*sh + r*dh, q*sw + s*dw]``.

    Built as an (N, P, Q, R, S, C) strided *view* of the padded NHWC input (no data
    is touched), then copied once into a C-contiguous (N*P*Q, R*S*C) matrix.
    """
    xpd = _nhwc_padded(x, padding, scratch=True)
    N, C = x.shape[:2]
    (sh, sw), (dh, dw) = stride, dilation
    sN, sH, sW, sC = xpd.strides
    view = np.lib.stride_tricks.as_strided(
        xpd, shape=(N, P, Q, R, S, C),
        strides=(sN, sH * sh, sW * sw, sH * dh, sW * dw, sC), writeable=False)
    cols = (_scratch("cols", (N, P, Q, R, S, C), x.dtype) if scratch
            else np.empty((N, P, Q, R, S, C), dtype=x.dtype))
    np.copyto(cols, view)
    return cols.reshape(N * P * Q, R * S * C)


def _axis_phases(k, stride, pad, dil, size, n_out):
    """Group one axis's kernel taps by the output phase they land on (for col2im).

    Tap r of output p lands on padded row ``p*stride + r*dil``, i.e. on output row
    ``h = p*stride + r*dil - pad``. Output rows with ``(h + pad) % stride == a`` form
    phase a; there tap r (with ``(r*dil) % stride == a``) writes phase index
    ``p + (r*dil) // stride``. Returns, per non-empty phase, its first output row h0,
    its row count n, and the taps as (r, rows of the phase buffer, rows of p).
    """
    phases = []
    for a in range(stride):
        h0 = (a - pad) % stride
        n = len(range(h0, size, stride))
        if n == 0:
            continue
        i0 = (h0 + pad) // stride
        taps = []
        for r in range(k):
            if (r * dil) % stride != a:
                continue
            off = (r * dil) // stride - i0
            lo, hi = max(0, -off), min(n_out, n - off)
            if lo < hi:
                taps.append((r, slice(lo + off, hi + off), slice(lo, hi)))
        phases.append((h0, n, taps))
    return phases


def _covers(sl, n):
    return sl.start == 0 and sl.stop == n


def _col2im(cols, x_shape, R, S, stride, padding, dilation, P, Q, bias=None):
    """Adjoint of :func:`_im2col`: scatter-add columns back into an (N, C, H, W) image.

    Column entry ((n,p,q), (r,s,c)) is added to ``x[n, c, p*sh + r*dh - ph, q*sw + s*dw - pw]``.
    The loop runs over kernel offsets (r, s) only, grouped by the output phase
    ``((h + ph) % sh, (v + pw) % sw)`` they hit: each phase is summed in place in its
    strided view of one channels-last (N, H, W, C) image (one (N, P, Q, C) slab add per
    offset, overlapping windows accumulate; runs of C contiguous values), the optional
    ``bias`` (C,) added at the end; phases no offset reaches are zeroed. Returns the
    image as an (N, C, H, W) view with channels-last strides (no transposing copy).
    """
    N, C, H, W = x_shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    c6 = cols.reshape(N, P, Q, R, S, C)
    img = np.empty((N, H, W, C), dtype=cols.dtype)
    col_phases = _axis_phases(S, sw, pw, dw, W, Q)
    row_phases = _axis_phases(R, sh, ph, dh, H, P)
    if (sum(n for _, n, _ in row_phases) < H or sum(n for _, n, _ in col_phases) < W):
        img.fill(0)                      # some rows/columns receive nothing
    for h0, nh, row_taps in row_phases:
        for w0, nw, col_taps in col_phases:
            taps = [(r, s, br, bc, pr, qc) for r, br, pr in row_taps for s, bc, qc in col_taps]
            buf = img[:, h0::sh, w0::sw]                              # (N, nh, nw, C) view
            # A tap that covers the whole phase initializes it (no zero fill).
            full = [t for t in taps if _covers(t[2], nh) and _covers(t[3], nw)]
            if full:
                taps.remove(full[0])
                r, s, _, _, p_rows, q_cols = full[0]
                np.copyto(buf, c6[:, p_rows, q_cols, r, s])
            else:
                buf.fill(0)
            for r, s, buf_rows, buf_cols, p_rows, q_cols in taps:
                buf[:, buf_rows, buf_cols] += c6[:, p_rows, q_cols, r, s]
    if bias is not None:
        img += bias.reshape(1, 1, 1, C)
    return img.transpose(0, 3, 1, 2)


def _gpu_conv():
    from ..cuda import conv as cuda_conv  # lazy: CuPy and kernels only when used
    return cuda_conv


# ----------------------------------------------------------------------------- primitives
def conv2d_core_forward(x, w, stride, padding, dilation):
    """Bias-free convolution ``y = conv(x, w)``: one GEMM ``(NPQ, RSC) @ (RSC, K)``."""
    if is_gpu_array(x):
        return _gpu_conv().conv2d_forward(x, w, stride, padding, dilation)
    N = x.shape[0]
    K, C, R, S = w.shape
    P, Q = _out_hw(x.shape, w.shape, stride, padding, dilation)
    cols = _im2col(x, R, S, stride, padding, dilation, P, Q, scratch=True)
    return _from_rows(cols @ _weight_rows(w).T, N, P, Q)


def conv2d_core_backward_data(dy, w, x_shape, stride, padding, dilation):
    """Gradient of ``sum(dy * conv(x, w))`` w.r.t. x, for an input of shape ``x_shape``.

    From the forward index map ``h = p*sh + r*dh - ph``, ``v = q*sw + s*dw - pw``::

        dx[n,c,h,v] = sum_{k,r,s,p,q : p*sh + r*dh - ph = h, q*sw + s*dw - pw = v} w[k,c,r,s] dy[n,k,p,q]

    computed as the GEMM ``dcols = dy2 @ w2`` ((NPQ, K) @ (K, RSC)) followed by
    col2im, which performs the constrained sum by scattering each (r, s) slab.
    """
    x_shape = tuple(int(v) for v in x_shape)
    if is_gpu_array(dy):
        return _gpu_conv().conv2d_backward_data(dy, w, x_shape, stride, padding, dilation)
    K, C, R, S = w.shape
    P, Q = dy.shape[2:]
    dcols = _gemm(_to_rows(dy, scratch=True), _weight_rows(w), "gemm_out")
    return _col2im(dcols, x_shape, R, S, stride, padding, dilation, P, Q)


def conv2d_core_backward_filter(x, dy, w_shape, stride, padding, dilation):
    """Gradient of ``sum(dy * conv(x, w))`` w.r.t. w, for a weight of shape ``w_shape``.

    ``dw[k,c,r,s] = sum_{n,p,q} dy[n,k,p,q] xpad[n, c, p*sh + r*dh, q*sw + s*dw]``,
    i.e. the GEMM ``dw2 = dy2^T @ cols`` ((K, NPQ) @ (NPQ, RSC)).
    """
    w_shape = tuple(int(v) for v in w_shape)
    if is_gpu_array(x):
        return _gpu_conv().conv2d_backward_filter(x, dy, w_shape, stride, padding, dilation)
    K, C, R, S = w_shape
    P, Q = dy.shape[2:]
    cols = _im2col(x, R, S, stride, padding, dilation, P, Q, scratch=True)
    return _weight_grad(_to_rows(dy, scratch=True), cols, w_shape)


# ----------------------------------------------------------------------------- Conv2d op
def conv2d_forward(x, w, b, stride, padding, dilation):
    """``y = conv(x, w) + b``; returns ``(y, cache)``.

    On the CPU the im2col matrix is kept in the cache so the backward's filter
    GEMM does not rebuild it.
    """
    stride, padding, dilation = _hw(stride), _hw(padding), _hw(dilation)
    hyper = (stride, padding, dilation)
    if is_gpu_array(x):
        y = conv2d_core_forward(x, w, *hyper)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y, (x.shape, w, x, None, b is not None, hyper)
    N = x.shape[0]
    K, C, R, S = w.shape
    P, Q = _out_hw(x.shape, w.shape, *hyper)
    cols = _im2col(x, R, S, stride, padding, dilation, P, Q)
    w2 = _weight_rows(w)
    y = _from_rows(cols @ w2.T, N, P, Q, bias=b)
    return y, (x.shape, w, w2, cols, b is not None, hyper)


def conv2d_backward(dy, cache, input_grad=True, param_grad=True):
    """Gradients of ``L`` given ``dy = dL/dy``; returns ``(dx, dw, db)``.

    ``input_grad=False`` skips the backward-data pass and returns ``dx = None`` (the
    first layer of a network, whose input gradient nobody uses); ``param_grad=False``
    skips backward-filter and the bias sum and returns ``dw = db = None`` (a frozen
    network that only passes gradients through, like D in a generator update).

    With ``y[n,k,p,q] = b[k] + sum_{c,r,s} w[k,c,r,s] xpad[n,c,p*sh+r*dh,q*sw+s*dw]``:

    * ``dx`` = backward-data (each x element receives ``w[k,c,r,s] dy[n,k,p,q]``
      from every (k, r, s, p, q) whose window position hits it: col2im of ``dy2 w2``);
    * ``dw[k,c,r,s] = sum_{n,p,q} dy[n,k,p,q] xpad[n,c,p*sh+r*dh,q*sw+s*dw]`` (``dy2^T cols``);
    * ``db[k] = sum_{n,p,q} dy[n,k,p,q]`` (None without bias).
    """
    x_shape, w, w2, cols, has_bias, hyper = cache
    if cols is None:
        x = w2
        dx = conv2d_core_backward_data(dy, w, x_shape, *hyper) if input_grad else None
        if not param_grad:
            return dx, None, None
        dw = conv2d_core_backward_filter(x, dy, w.shape, *hyper)
        db = dy.sum(axis=(0, 2, 3)) if has_bias else None
        return dx, dw, db
    K, C, R, S = w.shape
    P, Q = dy.shape[2:]
    dy2 = _to_rows(dy, scratch=True)                           # (NPQ, K)
    db = dy2.sum(axis=0) if has_bias and param_grad else None
    dw = _weight_grad(dy2, cols, w.shape) if param_grad else None
    dx = _col2im(_gemm(dy2, w2, "gemm_out"), x_shape, R, S, *hyper, P, Q) if input_grad else None
    return dx, dw, db


# ----------------------------------------------------------------------------- ConvTranspose2d op
def _transpose_geometry(x_shape, w_shape, stride, padding, output_padding, dilation):
    """Output shape of the transposed conv and the (P', Q') its adjoint conv would produce.

    With ``op < s`` the adjoint convolution of the (N, Cout, Ho, Wo) output has exactly
    (H, W) outputs; with ``s <= op < d`` it has more, and those extra rows/columns
    simply meet zeros (the input is zero-extended to (P', Q')).
    """
    N, Ci, H, W = x_shape
    _, Co, R, S = w_shape
    Ho, Wo = conv_transpose2d_output_size((H, W), (R, S), stride, padding, output_padding, dilation)
    if Ho < 1 or Wo < 1:
        raise ValueError(f"conv_transpose2d: output size would be {(Ho, Wo)} for input {(H, W)}, "
                         f"kernel {(R, S)}, stride {stride}, padding {padding}, dilation {dilation}")
    Pp, Qp = conv2d_output_size((Ho, Wo), (R, S), stride, padding, dilation)
    return (N, Co, Ho, Wo), (Pp, Qp)


def _zero_extend(t, P, Q):
    N, K, H, W = t.shape
    if (H, W) == (P, Q):
        return t
    xp_ = get_array_module(t)
    out = xp_.zeros((N, K, P, Q), dtype=t.dtype)
    out[:, :, :H, :W] = t
    return out


def conv_transpose2d_forward(x, w, b, stride, padding, output_padding, dilation):
    """Transposed convolution ``y = conv^T(x, w) + b`` with ``w`` of shape (Cin, Cout, R, S).

    It is the backward-data of the convolution with weight ``w`` read as (K=Cin, C=Cout,
    R, S) and input shape (N, Cout, Ho, Wo)::

        y[n,o,h,v] = b[o] + sum_{c,r,s,i,j : i*sh + r*dh - ph = h, j*sw + s*dw - pw = v} x[n,c,i,j] w[c,o,r,s]

    Returns ``(y, cache)``.
    """
    stride, padding = _hw(stride), _hw(padding)
    output_padding, dilation = _hw(output_padding), _hw(dilation)
    hyper = (stride, padding, dilation)
    y_shape, (Pp, Qp) = _transpose_geometry(x.shape, w.shape, stride, padding, output_padding,
                                            dilation)
    xe = _zero_extend(x, Pp, Qp)
    if is_gpu_array(x):
        y = conv2d_core_backward_data(xe, w, y_shape, *hyper)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y, (None, w, xe, x.shape, y_shape, b is not None, hyper)
    Ci, Co, R, S = w.shape
    x2 = _to_rows(xe)                                          # (N*P'*Q', Cin)
    w2 = _weight_rows(w)                                       # (Cin, R*S*Cout)
    y = _col2im(_gemm(x2, w2, "gemm_out"), y_shape, R, S, *hyper, Pp, Qp, bias=b)
    return y, (x2, w, w2, x.shape, y_shape, b is not None, hyper)


def conv_transpose2d_backward(dy, cache, input_grad=True, param_grad=True):
    """Gradients of the transposed convolution; returns ``(dx, dw, db)``
    (``dx = None`` with ``input_grad=False``, ``dw = db = None`` with ``param_grad=False``).

    The transposed conv is ``y = A^T x`` where ``A`` is the convolution with weight w
    (as (K=Cin, C=Cout, R, S)) applied to a (N, Cout, Ho, Wo) image. Hence:

    * ``dx = A dy``: the ordinary convolution of dy with w,
      ``dx[n,c,i,j] = sum_{o,r,s} w[c,o,r,s] dypad[n,o,i*sh+r*dh,j*sw+s*dw]``
      (rows/columns beyond (H, W), present only when s <= op, are dropped);
    * ``dw[c,o,r,s] = sum_{n,i,j} x[n,c,i,j] dypad[n,o,i*sh+r*dh,j*sw+s*dw]``: the
      convolution's backward-filter with its "x" := dy and its "dy" := x;
    * ``db[o] = sum_{n,h,v} dy[n,o,h,v]``.

    On the CPU one im2col of dy serves both GEMMs.
    """
    x2, w, w2, x_shape, y_shape, has_bias, hyper = cache
    db = dy.sum(axis=(0, 2, 3)) if has_bias and param_grad else None
    N, Ci, H, W = x_shape
    if x2 is None:
        xe = w2
        dxe = conv2d_core_forward(dy, w, *hyper) if input_grad else None
        dw = conv2d_core_backward_filter(dy, xe, w.shape, *hyper) if param_grad else None
    else:
        Ci, Co, R, S = w.shape
        Pp, Qp = conv2d_output_size(y_shape[2:], (R, S), *hyper)
        cols = _im2col(dy, R, S, hyper[0], hyper[1], hyper[2], Pp, Qp,
                       scratch=True)                           # (N*P'*Q', R*S*Cout)
        dw = _weight_grad(x2, cols, w.shape) if param_grad else None
        dxe = _from_rows(cols @ w2.T, N, Pp, Qp) if input_grad else None
    if dxe is None:
        return None, dw, db
    dx = dxe if dxe.shape[2:] == (H, W) else dxe[:, :, :H, :W].copy()
    return dx, dw, db
