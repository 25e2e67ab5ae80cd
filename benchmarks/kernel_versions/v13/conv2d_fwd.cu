// Forward convolution y = conv(x, w) as an implicit GEMM (see igemm.cuh).
//
//   GEMM_M = N*P*Q (rows m = (n, p, q)), GEMM_N = K, GEMM_K = C*R*S (kk = (c, r, s))
//   A[m][kk] = x[n, c, p*sh - ph + r*dh, q*sw - pw + s*dw]   (0 outside the image)
//   B[kk][k] = w[k, c, r, s] = w[k*CRS + kk]
//   y[n, k, p, q] = sum_kk A[m][kk] B[kk][k]
//
// The host passes one "phase" {0, 0, P, Q, 0, CRS, N*P*Q} and the tables
//   tabA[kk] = (c*H*W + r*dh*W + s*dw, r*dh, s*dw, 0),  tabB[kk] = kk,
// with ms = stride, off = -padding, os = 1, ldb = CRS.
// Entry points: conv2d_fwd_<precision>_<BM>x<BN> (tiled, cp.async pipeline; tf32 ..._vb:
// 16-byte weight copies, used when C*R*S % 4 == 0),
// conv2d_fwd_<f32|f64>_nc<NC>_mt<MT> (narrow: ncols <= NC), the split-K reduction.
#include "igemm.cuh"

// (BM, BN, BK, thread tile or warp tile, stages); the host mirrors these in scratchgan/cuda/conv.py.
GATHER_SIMT_ENTRY(conv2d_fwd_f32_128x128, float, 128, 128, 16, 8, 8, 3)
GATHER_SIMT_ENTRY(conv2d_fwd_f32_128x64, float, 128, 64, 16, 8, 4, 3)
GATHER_SIMT_ENTRY(conv2d_fwd_f64_64x64, double, 64, 64, 8, 4, 4, 3)
GATHER_MMA_ENTRY(conv2d_fwd_tf32_128x128, 128, 128, 16, 64, 32, 4, false)
GATHER_MMA_ENTRY(conv2d_fwd_tf32_128x64, 128, 64, 32, 32, 32, 3, false)
GATHER_MMA_ENTRY(conv2d_fwd_tf32_128x128_vb, 128, 128, 16, 64, 32, 4, true)
GATHER_MMA_ENTRY(conv2d_fwd_tf32_128x64_vb, 128, 64, 32, 32, 32, 3, true)
NARROW_ENTRIES(conv2d_fwd)
SPLITK_REDUCE_ENTRIES(conv2d_fwd)
