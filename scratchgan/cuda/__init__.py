"""Hand-written CUDA kernels for CuPy arrays.

The kernel sources (``kernels/*.cu`` in the repository, shipped in an installed
package as ``scratchgan/_kernels/``; :func:`scratchgan.cuda.loader.kernels_dir`
says where they are looked for) are compiled once per process by CuPy's
RawModule (NVRTC) and cached. Submodules:

* :mod:`scratchgan.cuda.conv`: implicit-GEMM convolution (forward, backward-data,
  backward-filter; fp32, tf32 tensor cores, float64), dense-window and
  one-output-channel fast paths, plus an im2col + cuBLAS comparison path; its rooms
  :mod:`~scratchgan.cuda.conv_tiles` (tile configurations, pickers, split-K, the A/B
  ``switches``), :mod:`~scratchgan.cuda.conv_tables` (index tables),
  :mod:`~scratchgan.cuda.conv_plans` (launch plans and their caches) and
  :mod:`~scratchgan.cuda.conv_im2col` (the comparison path).
* :mod:`scratchgan.cuda.norm`: batch normalization forward/backward, with the
  following ReLU/LeakyReLU fused in.
* :mod:`scratchgan.cuda.activation`: bias + activation forward/backward.
* :mod:`scratchgan.cuda.loss`: losses on logits in one launch.

* :mod:`scratchgan.cuda.optim`: the fused optimizer updates (``kernels/optim.cu``) that
  :mod:`scratchgan.optim` launches.
* :mod:`scratchgan.cuda.capture`: the flag marking a CUDA graph capture in progress
  (:class:`scratchgan.runtime.StepRunner` sets it; the optimizers respect it).

The Philox generator (``kernels/philox.cu``) is launched from :mod:`scratchgan.philox`.
Nothing here imports CuPy at package import time.
"""

__all__ = []  # the submodules are the API: scratchgan.cuda.conv, .norm, .optim ...
