"""Hand-written CUDA kernels for CuPy arrays.

``kernels/*.cu`` (next to the package, or the folder named by the environment
variable ``SCRATCHGAN_KERNELS``) are compiled once per process by CuPy's
RawModule (NVRTC) and cached. Submodules:

* :mod:`scratchgan.cuda.conv`: implicit-GEMM convolution (forward, backward-data,
  backward-filter; fp32, tf32 tensor cores, float64), plus an im2col + cuBLAS path.
* :mod:`scratchgan.cuda.norm`: batch normalization forward/backward.
* :mod:`scratchgan.cuda.activation`: bias + activation forward/backward.

Nothing here imports CuPy at package import time.
"""
