// Backward-data dx = conv^T(dy, w) as an implicit GEMM per stride phase.
//
//   dx[n,c,h,v] = sum_{k,r,s} w[k,c,r,s] dy[n,k,p,q],  h + ph - r*dh = p*sh,  v + pw - s*dw = q*sw
//
// Only taps with (h + ph - r*dh) divisible by sh contribute, and which taps those
// are depends on h only through a = (h + ph) mod sh. So the output pixels are
// split into sh*sw phases (a_h, a_w); in a phase, h = h_first + i*sh and every
// valid tap r gives p = i + dr with dr = (h_first + ph - r*dh) / sh (exact). Each
// phase is a dense GEMM with no wasted taps:
//
//   GEMM_M = N*Hp*Wp (m = (n, i, j)), GEMM_N = C, GEMM_K = K * nr * ns (valid taps only)
//   A[m][kk] = dy[n, k, i + dr, j + ds]    (0 outside dy)
//   B[kk][c] = w[k, c, r, s] = w[(k*C*R*S + r*S + s) + c*R*S]
//
// The host builds per phase the tables tabA[kk] = (k*P*Q + dr*Q + ds, dr, ds, 0),
// tabB[kk] = k*C*R*S + r*S + s, and the descriptor {h_first, w_first, Hp, Wp,
// table offset, GEMM_K, Mp}; the kernel runs with ms = 1, off = 0, os = stride,
// ldb = R*S, and blockIdx.z enumerating (phase, split). A phase with no valid tap
// (stride > dilated kernel) has GEMM_K = 0 and writes zeros.
// Entry points: conv2d_bwd_data_<precision>_<BM>x<BN> (tiled, cp.async pipeline),
// conv2d_bwd_data_<f32|f64>_nc<NC>_mt<MT> (narrow: ncols <= NC), the split-K reduction.
#include "igemm.cuh"

// (BM, BN, BK, thread tile or warp tile, stages); the host mirrors these in scratchgan/cuda/conv.py.
GATHER_SIMT_ENTRY(conv2d_bwd_data_f32_128x128, float, 128, 128, 16, 8, 8, 3)
GATHER_SIMT_ENTRY(conv2d_bwd_data_f32_128x64, float, 128, 64, 16, 8, 4, 3)
GATHER_SIMT_ENTRY(conv2d_bwd_data_f64_64x64, double, 64, 64, 8, 4, 4, 3)
GATHER_MMA_ENTRY(conv2d_bwd_data_tf32_128x128, 128, 128, 16, 64, 32, 4)
GATHER_MMA_ENTRY(conv2d_bwd_data_tf32_128x64, 128, 64, 32, 32, 32, 3)
NARROW_ENTRIES(conv2d_bwd_data)
BRELAYOUT_ENTRY(conv2d_bwd_data)
SPLITK_REDUCE_ENTRIES(conv2d_bwd_data)
