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
GATHER_MMA_ENTRY(conv2d_bwd_data_tf32_128x128, 128, 128, 16, 64, 32, 4, false)
GATHER_MMA_ENTRY(conv2d_bwd_data_tf32_128x64, 128, 64, 32, 32, 32, 3, false)
NARROW_ENTRIES(conv2d_bwd_data)
SPLITK_REDUCE_ENTRIES(conv2d_bwd_data)

// ---------------------------------------------------------------- narrow, stride 2, 4x4 taps
// The narrow backward-data pass of the DCGAN layers that touch images (D's first conv,
// G's last transposed conv): stride 2, 4x4 kernel, padding 1, dilation 1, H = 2P, W = 2Q,
// C <= 4 output channels. The phase-split narrow kernel above runs the 4 phases one after
// another, and each phase re-reads all of dy for its 4 taps. Here one thread owns the
// 2x2 block dx[n, :, 2i..2i+1, 2j..2j+1] (all four phases, all C channels): with
// h = 2i + a,  p = (h + 1 - r) / 2  gives, for a = 0, taps r = 1 (p = i) and r = 3
// (p = i - 1); for a = 1, r = 0 (p = i + 1) and r = 2 (p = i). So per k the thread reads
// the 3x3 neighbourhood dy[n, k, i-1..i+1, j-1..j+1] once (9 loads, coalesced over j)
// and does 4 outputs x 4 taps x C FMAs; dy streams from memory once. The weights of a
// KC-long chunk of k sit in shared memory as ws[k][r*4+s] = float4 over c (broadcast
// reads, zero for c >= C). FP32 FMAs: used in both fp32 and tf32 modes.
// grid = ceil(N*P*Q / 256), block 256.
template <int NC>
__device__ __forceinline__ void bwd_data_s2k4_narrow(const float* __restrict__ dy,
                                                     const float* __restrict__ w,
                                                     float* __restrict__ dx,
                                                     int N, int K, int P, int Q) {
    constexpr int KC = 64;
    __shared__ float4 ws[KC][16];
    const int C = NC;
    const int t = blockIdx.x * blockDim.x + threadIdx.x;
    const int PQ = P * Q;
    const bool live = t < N * PQ;
    const int n = live ? t / PQ : 0;
    const int ij = live ? t - n * PQ : 0;
    const int i = ij / Q, j = ij - (ij / Q) * Q;
    // the 3x3 neighbourhood: offsets and validity (dp, dq in -1..1)
    int off[9];
    bool ok[9];
#pragma unroll
    for (int u = 0; u < 3; ++u)
#pragma unroll
        for (int v = 0; v < 3; ++v) {
            const int p = i + u - 1, q = j + v - 1;
            ok[u * 3 + v] = live && p >= 0 && p < P && q >= 0 && q < Q;
            off[u * 3 + v] = ok[u * 3 + v] ? p * Q + q : 0;
        }
    const float* src = dy + (long long)n * K * PQ;
    float acc[2][2][NC];
#pragma unroll
    for (int a = 0; a < 2; ++a)
#pragma unroll
        for (int b = 0; b < 2; ++b)
#pragma unroll
            for (int c = 0; c < NC; ++c) acc[a][b][c] = 0.0f;
    // tap table for a (or b) in {0, 1}: (r, neighbourhood row u = dp + 1)
    //   a = 0: (r 1, u 1), (r 3, u 0);  a = 1: (r 0, u 2), (r 2, u 1)
    for (int k0 = 0; k0 < K; k0 += KC) {
        const int kn = min(KC, K - k0);
        __syncthreads();
        for (int e = threadIdx.x; e < KC * 16; e += blockDim.x) {
            const int kk = e >> 4, rs = e & 15;
            float v[4];
#pragma unroll
            for (int c = 0; c < 4; ++c)
                v[c] = (kk < kn && c < C) ? w[((long long)(k0 + kk) * C + c) * 16 + rs] : 0.0f;
            ws[kk][rs] = make_float4(v[0], v[1], v[2], v[3]);
        }
        __syncthreads();
#pragma unroll 2
        for (int kk = 0; kk < kn; ++kk) {
            const float* s = src + (long long)(k0 + kk) * PQ;
            float d[9];
#pragma unroll
            for (int e = 0; e < 9; ++e) d[e] = ok[e] ? __ldg(s + off[e]) : 0.0f;
#pragma unroll
            for (int a = 0; a < 2; ++a)
#pragma unroll
                for (int ta = 0; ta < 2; ++ta) {
                    const int r = a == 0 ? (ta == 0 ? 1 : 3) : (ta == 0 ? 0 : 2);
                    const int u = a == 0 ? (ta == 0 ? 1 : 0) : (ta == 0 ? 2 : 1);
#pragma unroll
                    for (int b = 0; b < 2; ++b)
#pragma unroll
                        for (int tb = 0; tb < 2; ++tb) {
                            const int sc = b == 0 ? (tb == 0 ? 1 : 3) : (tb == 0 ? 0 : 2);
                            const int v = b == 0 ? (tb == 0 ? 1 : 0) : (tb == 0 ? 2 : 1);
                            const float4 wv = ws[kk][r * 4 + sc];
                            const float x = d[u * 3 + v];
                            acc[a][b][0] = fmaf(x, wv.x, acc[a][b][0]);
                            if (NC > 1) acc[a][b][NC > 1 ? 1 : 0] = fmaf(x, wv.y, acc[a][b][NC > 1 ? 1 : 0]);
                            if (NC > 2) acc[a][b][NC > 2 ? 2 : 0] = fmaf(x, wv.z, acc[a][b][NC > 2 ? 2 : 0]);
                            if (NC > 3) acc[a][b][NC > 3 ? 3 : 0] = fmaf(x, wv.w, acc[a][b][NC > 3 ? 3 : 0]);
                        }
                }
        }
    }
    if (!live) return;
    const int H = 2 * P, W = 2 * Q;
#pragma unroll
    for (int c = 0; c < NC; ++c)
#pragma unroll
        for (int a = 0; a < 2; ++a) {
            float2* o = reinterpret_cast<float2*>(dx + (((long long)n * C + c) * H + 2 * i + a) * W + 2 * j);
            *o = make_float2(acc[a][0][c], acc[a][1][c]);
        }
}

#define S2K4_ENTRY(NC)                                                                          \
    extern "C" __global__ void __launch_bounds__(256) conv2d_bwd_data_s2k4_f32_c##NC(           \
        const float* dy, const float* w, float* dx, int N, int K, int P, int Q) {               \
        bwd_data_s2k4_narrow<NC>(dy, w, dx, N, K, P, Q);                                        \
    }
S2K4_ENTRY(1)
S2K4_ENTRY(2)
S2K4_ENTRY(3)
S2K4_ENTRY(4)
