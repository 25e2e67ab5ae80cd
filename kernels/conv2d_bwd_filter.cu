// Backward-filter dw = dy (x) x as an implicit GEMM.
//
//   dw[k,c,r,s] = sum_{n,p,q} dy[n,k,p,q] x[n, c, p*sh - ph + r*dh, q*sw - pw + s*dw]
//
//   GEMM_M = K, GEMM_N = C*R*S (col = (c, r, s)), GEMM_K = N*P*Q (kk = (n, p, q))
//   A[k][kk]  = dy[n*K*P*Q + k*P*Q + p*Q + q]
//   B[kk][col] = x[n, c, p*sh - ph + r*dh, q*sw - pw + s*dw]   (0 outside the image)
//
// Both tiles are copied (cp.async) k-fastest (a warp takes a few consecutive
// (p, q) times several rows, see KMajorMap), so each thread decodes its kk once
// per slice and reuses it for every A row and B column it copies. GEMM_K is long and GEMM_M x GEMM_N small, so the host
// splits GEMM_K over blockIdx.z and reduces the partial results afterwards.
#include "igemm.cuh"

struct WgradParams {
    int K, CRS, RS, S, HW, H, W, sh, sw, ph, pw, dh, dw, Q, PQ, x_nstride, dy_nstride;
};

template <typename T, class Core, int BM, int BN, int BK, int NT>
struct WgradLoader {
    // One k (= one (n, p, q)) per thread and slice, shared by its A rows and B columns.
    typedef KMajorMap<Core::PA, BK, NT> Map;
    static_assert(Core::PA % 32 == Core::PB % 32, "A and B pitches must agree mod 32");
    static constexpr int EA = BM / Map::RSTEP;
    static constexpr int EB = BN / Map::RSTEP;
    static_assert(EA >= 1 && EB >= 1 && BM % Map::RSTEP == 0 && BN % Map::RSTEP == 0,
                  "tile does not fit the thread count");
    const T* __restrict__ dy;
    const T* __restrict__ x;
    WgradParams p;
    int m0, n0;
    int a_off[EA];              // k*P*Q, or -1 past GEMM_M
    int b_coff[EB], b_rs[EB];   // c*H*W (-1 past GEMM_N); (r*dh - ph) << 16 | (s*dw - pw) & 0xffff

    __device__ __forceinline__ void init() {
#pragma unroll
        for (int e = 0; e < EA; ++e) {
            const int m = m0 + Map::row() + e * Map::RSTEP;
            a_off[e] = m < p.K ? m * p.PQ : -1;
        }
#pragma unroll
        for (int e = 0; e < EB; ++e) {
            const int col = n0 + Map::row() + e * Map::RSTEP;
            const int c = col / p.RS, rs = col - c * p.RS;
            const int r = rs / p.S, s = rs - r * p.S;
            b_coff[e] = col < p.CRS ? c * p.HW : -1;
            b_rs[e] = ((r * p.dh - p.ph) << 16) | ((s * p.dw - p.pw) & 0xffff);
        }
    }
    __device__ __forceinline__ void issue(int k0, int kend, typename Core::smem_t* As,
                                          typename Core::smem_t* Bs) const {
        const int kl = Map::k(), rl = Map::row();
        const int kk = k0 + kl;
        const bool kv = kk < kend;
        const int n = kk / p.PQ, pq = kk - n * p.PQ;
        const int pp = pq / p.Q, q = pq - pp * p.Q;
        const int dy_base = n * p.dy_nstride + pq;
        const int x_base = n * p.x_nstride;
        const int hb = pp * p.sh, wb = q * p.sw;
        typedef typename Core::smem_t Sm;
        const u32 sa = smem_addr(As) + (u32)((kl * Core::PA + rl) * sizeof(Sm));
        const u32 sb = smem_addr(Bs) + (u32)((kl * Core::PB + rl) * sizeof(Sm));
#pragma unroll
        for (int e = 0; e < EA; ++e) {
            const bool v = kv && a_off[e] >= 0;
            cp_async_s(sa + (u32)(e * Map::RSTEP * sizeof(Sm)), dy + (v ? dy_base + a_off[e] : 0), v);
        }
#pragma unroll
        for (int e = 0; e < EB; ++e) {
            const int ih = hb + (b_rs[e] >> 16), iw = wb + ((b_rs[e] << 16) >> 16);
            const bool v = kv && b_coff[e] >= 0 && (unsigned)ih < (unsigned)p.H &&
                           (unsigned)iw < (unsigned)p.W;
            cp_async_s(sb + (u32)(e * Map::RSTEP * sizeof(Sm)),
                       x + (v ? x_base + b_coff[e] + ih * p.W + iw : 0), v);
        }
    }
    __device__ __forceinline__ int row_base(int ml) const {
        const int m = m0 + ml;
        return m < p.K ? m * p.CRS : -1;
    }
    __device__ __forceinline__ int col_off(int nl) const {
        const int col = n0 + nl;
        return col < p.CRS ? col : -1;
    }
};

// grid = (ceil(CRS/BN), ceil(K/BM), splits); dw (+ split * K*CRS) receives the tile.
template <typename T, class Core, int BM, int BN, int BK, int ST>
__device__ __forceinline__ void wgrad_gemm(
    const T* x, const T* dy, T* dw, int N, int C, int H, int W, int K, int R, int S, int P,
    int Q, int sh, int sw, int ph, int pw, int dh, int dwl, int splits) {
    if (dynamic_smem_bytes() < (u32)Pipe<Core, BK, ST>::BYTES) __trap();
    typedef WgradLoader<T, Core, BM, BN, BK, Core::NT> L;
    L ld;
    ld.x = x; ld.dy = dy;
    ld.p.K = K; ld.p.RS = R * S; ld.p.CRS = C * R * S; ld.p.S = S; ld.p.HW = H * W;
    ld.p.H = H; ld.p.W = W; ld.p.sh = sh; ld.p.sw = sw; ld.p.ph = ph; ld.p.pw = pw;
    ld.p.dh = dh; ld.p.dw = dwl; ld.p.Q = Q; ld.p.PQ = P * Q;
    ld.p.x_nstride = C * H * W; ld.p.dy_nstride = K * P * Q;
    ld.m0 = blockIdx.y * BM;
    ld.n0 = blockIdx.x * BN;
    const int GK = N * P * Q;
    const int split = blockIdx.z;
    const int chunk = ceil_div_i(ceil_div_i(GK, splits), BK) * BK;
    const int kbeg = split * chunk;
    const int kend = min(GK, kbeg + chunk);
    ld.init();
    Core core;
    gemm_mainloop<Core, L, BK, ST>(core, ld, kbeg, kend);
    core.store(ld, dw + (long long)split * (K * C * R * S));
}

// geometry as one int32 device array prm (see GATHER_ARGS in igemm.cuh)
#define WGRAD_ARGS(T) const T *x, const T *dy, T *dw, const int *__restrict__ prm
#define WGRAD_UNPACK                                                                            \
    const int N = prm[0], C = prm[1], H = prm[2], W = prm[3], K = prm[4], R = prm[5];          \
    const int S = prm[6], P = prm[7], Q = prm[8], sh = prm[9], sw = prm[10], ph = prm[11];     \
    const int pw = prm[12], dh = prm[13], dwl = prm[14], splits = prm[15];
#define WGRAD_PASS x, dy, dw, N, C, H, W, K, R, S, P, Q, sh, sw, ph, pw, dh, dwl, splits
#define WGRAD_SIMT_ENTRY(NAME, T, BM, BN, BK, TM, TN, ST)                                       \
    extern "C" __global__ void __launch_bounds__((BM / TM) * (BN / TN), 2) NAME(WGRAD_ARGS(T)) {\
        WGRAD_UNPACK                                                                            \
        wgrad_gemm<T, SimtCore<T, BM, BN, BK, TM, TN>, BM, BN, BK, ST>(WGRAD_PASS);            \
    }
#define WGRAD_MMA_ENTRY(NAME, BM, BN, BK, WM, WN, ST)                                           \
    extern "C" __global__ void __launch_bounds__((BM / WM) * (BN / WN) * 32, 2)                 \
        NAME(WGRAD_ARGS(float)) {                                                               \
        WGRAD_UNPACK                                                                            \
        wgrad_gemm<float, MmaCore<BM, BN, BK, WM, WN>, BM, BN, BK, ST>(WGRAD_PASS);             \
    }

// Entry names: conv2d_bwd_filter_<precision>_<BM>x<BN>; (BK, stages) as in scratchgan/cuda/conv.py.
WGRAD_SIMT_ENTRY(conv2d_bwd_filter_f32_128x128, float, 128, 128, 16, 8, 8, 3)
WGRAD_SIMT_ENTRY(conv2d_bwd_filter_f32_64x64, float, 64, 64, 16, 4, 4, 3)
WGRAD_SIMT_ENTRY(conv2d_bwd_filter_f64_64x64, double, 64, 64, 16, 4, 4, 2)
WGRAD_MMA_ENTRY(conv2d_bwd_filter_tf32_128x128, 128, 128, 16, 64, 32, 4)
WGRAD_MMA_ENTRY(conv2d_bwd_filter_tf32_64x64, 64, 64, 16, 32, 32, 4)
SPLITK_REDUCE_ENTRIES(conv2d_bwd_filter)
