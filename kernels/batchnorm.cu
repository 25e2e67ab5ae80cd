// Batch normalization over every axis but the channel axis of an (N, C, HW)
// tensor (HW = 1 for (N, C) inputs), optionally fused with the ReLU/LeakyReLU
// that follows it. Channel c's M = N*HW values sit at x[(n*C + c)*HW + t].
//
// Forward (training), three launches whatever the size:
//   bn_partial   grid (C, S): block (c, s) sums a contiguous share of channel c's
//                M values, shifted by K_c = x[c*HW] (the channel's first value):
//                S1 = sum (x - K), S2 = sum (x - K)^2, accumulated in double.
//   bn_finalize  one thread per channel: adds the S partials,
//                mean = K + S1/M, var = S2/M - (S1/M)^2 (biased, clamped >= 0),
//                inv_std = 1/sqrt(var + eps), and updates the running statistics
//                in place: rm = (1-mom) rm + mom mean, rv = (1-mom) rv + mom var M/(M-1).
//   bn_apply     element-wise: xhat = (x - mean) inv_std, h = gamma xhat + beta,
//                y = act(h) with act in {identity, relu, leaky_relu(slope)}.
// (N, C) inputs (HW = 1) use bn_stats_rows instead of the first two: a block of
// 32 x 16 threads owns 32 channels, its 16 thread rows split the N rows (reads
// coalesced across channels), and one thread per channel finalizes.
// Shifting by a value of the channel keeps the one-pass sums free of the
// cancellation of E[x^2] - E[x]^2 when |mean| >> std.
//
// Backward, three launches (two for HW = 1):
//   bn_bwd_partial grid (C, S): partial sums of g and g*xhat in double, where
//                g = dy * act'(h), h = gamma xhat + beta recomputed from xhat
//                (act' = 1 for h > 0, else 0 (relu) or slope (leaky); 1 without act).
//   bn_bwd_finalize one thread per channel: dbeta = sum g, dgamma = sum g xhat.
//   bn_bwd_dx    training: dx = gamma inv_std / M (M g - dbeta - xhat dgamma)
//                eval:     dx = gamma inv_std g
// The derivation is in docs/derivations/batchnorm.md. Entry points are suffixed
// _f32 / _f64; indices are 32-bit (the host checks total < 2^31).

#define BN_NT 256

template <typename A>
__device__ __forceinline__ A warp_sum(A v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Sum of a and b over the block (BN_NT threads); thread 0 gets the result.
__device__ __forceinline__ void block_sum2(double& a, double& b) {
    __shared__ double sa[BN_NT / 32], sb[BN_NT / 32];
    a = warp_sum(a);
    b = warp_sum(b);
    const int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    if (l == 0) { sa[w] = a; sb[w] = b; }
    __syncthreads();
    if (w == 0) {
        a = l < BN_NT / 32 ? sa[l] : 0.0;
        b = l < BN_NT / 32 ? sb[l] : 0.0;
        a = warp_sum(a);
        b = warp_sum(b);
    }
}

// act'(h) as a multiplier: 0 identity, 1 relu, 2 leaky relu
template <typename T>
__device__ __forceinline__ T act_grad(T h, int act, T slope) {
    return act == 0 ? T(1) : (h > T(0) ? T(1) : (act == 1 ? T(0) : slope));
}

template <typename T>
__device__ __forceinline__ void bn_partial_impl(const T* __restrict__ x, int N, int C, int HW,
                                                double* __restrict__ part) {
    const int c = blockIdx.x, s = blockIdx.y, S = gridDim.y;
    const unsigned M = (unsigned)N * (unsigned)HW;
    const unsigned per = (M + S - 1) / S;
    const unsigned lo = s * per, hi = min(M, lo + per);
    const double K = (double)x[(size_t)c * HW];
    double s1 = 0.0, s2 = 0.0;
    for (unsigned e = lo + threadIdx.x; e < hi; e += BN_NT) {
        const unsigned n = e / (unsigned)HW, t = e - n * (unsigned)HW;
        const double d = (double)x[(n * (unsigned)C + c) * (unsigned)HW + t] - K;
        s1 += d;
        s2 += d * d;
    }
    block_sum2(s1, s2);
    if (threadIdx.x == 0) {
        part[2 * ((size_t)c * S + s)] = s1;
        part[2 * ((size_t)c * S + s) + 1] = s2;
    }
}

template <typename T>
__device__ __forceinline__ void bn_finish_channel(int c, double mean, double var, double M, T eps,
                                                  T momentum, int update, T* mean_out,
                                                  T* var_out, T* inv_std, T* run_mean,
                                                  T* run_var) {
    var = var > 0.0 ? var : 0.0;
    mean_out[c] = (T)mean;
    var_out[c] = (T)var;
    inv_std[c] = T(1) / sqrt((T)var + eps);
    if (update) {
        run_mean[c] = (T(1) - momentum) * run_mean[c] + momentum * (T)mean;
        run_var[c] = (T(1) - momentum) * run_var[c] + momentum * (T)(var * (M / (M - 1.0)));
    }
}

template <typename T>
__device__ __forceinline__ void bn_finalize_impl(const T* __restrict__ x, const double* part,
                                                 int N, int C, int HW, int S, T eps, T momentum,
                                                 int update, T* mean, T* var, T* inv_std,
                                                 T* run_mean, T* run_var) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    double s1 = 0.0, s2 = 0.0;
    for (int s = 0; s < S; ++s) {
        s1 += part[2 * ((size_t)c * S + s)];
        s2 += part[2 * ((size_t)c * S + s) + 1];
    }
    const double M = (double)N * HW;
    const double m1 = s1 / M;
    bn_finish_channel<T>(c, (double)x[(size_t)c * HW] + m1, s2 / M - m1 * m1, M, eps, momentum,
                         update, mean, var, inv_std, run_mean, run_var);
}

// HW = 1: a block of ROWS_X x ROWS_Y threads owns ROWS_X consecutive channels (reads
// coalesced along a row); its ROWS_Y thread rows split the N rows, and a shared-memory sum
// over them gives the channel totals. Statistics and running update in one launch.
#define ROWS_X 32
#define ROWS_Y 16

__device__ __forceinline__ void rows_sum2(double& a, double& b) {
    __shared__ double sa[ROWS_Y][ROWS_X], sb[ROWS_Y][ROWS_X];
    sa[threadIdx.y][threadIdx.x] = a;
    sb[threadIdx.y][threadIdx.x] = b;
    __syncthreads();
    if (threadIdx.y == 0) {
        for (int y = 1; y < ROWS_Y; ++y) {
            a += sa[y][threadIdx.x];
            b += sb[y][threadIdx.x];
        }
    }
}

template <typename T>
__device__ __forceinline__ void bn_stats_rows_impl(const T* __restrict__ x, int N, int C, T eps,
                                                   T momentum, int update, T* mean, T* var,
                                                   T* inv_std, T* run_mean, T* run_var) {
    const int c = blockIdx.x * ROWS_X + threadIdx.x;
    const bool live = c < C;
    const double K = live ? (double)x[c] : 0.0;
    double s1 = 0.0, s2 = 0.0;
    if (live) {
        for (int n = threadIdx.y; n < N; n += ROWS_Y) {
            const double d = (double)x[(size_t)n * C + c] - K;
            s1 += d;
            s2 += d * d;
        }
    }
    rows_sum2(s1, s2);
    if (!live || threadIdx.y != 0) return;
    const double M = (double)N, m1 = s1 / M;
    bn_finish_channel<T>(c, K + m1, s2 / M - m1 * m1, M, eps, momentum, update, mean, var,
                         inv_std, run_mean, run_var);
}

template <typename T>
__device__ __forceinline__ void bn_apply_impl(const T* __restrict__ x, const T* __restrict__ mean,
                                              const T* __restrict__ inv_std,
                                              const T* __restrict__ gamma,
                                              const T* __restrict__ beta, T* __restrict__ xhat,
                                              T* __restrict__ y, unsigned total, int C, int HW,
                                              int act, T slope) {
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += gridDim.x * blockDim.x) {
        const unsigned c = (i / (unsigned)HW) % (unsigned)C;
        const T h = (x[i] - mean[c]) * inv_std[c];
        xhat[i] = h;
        const T v = gamma[c] * h + beta[c];
        y[i] = act == 0 ? v : (v > T(0) ? v : (act == 1 ? T(0) : slope * v));
    }
}

template <typename T>
__device__ __forceinline__ void bn_bwd_partial_impl(const T* __restrict__ dy,
                                                    const T* __restrict__ xhat,
                                                    const T* __restrict__ gamma,
                                                    const T* __restrict__ beta, int N, int C,
                                                    int HW, int act, T slope, double* part) {
    const int c = blockIdx.x, s = blockIdx.y, S = gridDim.y;
    const unsigned M = (unsigned)N * (unsigned)HW;
    const unsigned per = (M + S - 1) / S;
    const unsigned lo = s * per, hi = min(M, lo + per);
    const T gm = gamma[c], bt = beta[c];
    double sb = 0.0, sg = 0.0;
    for (unsigned e = lo + threadIdx.x; e < hi; e += BN_NT) {
        const unsigned n = e / (unsigned)HW, t = e - n * (unsigned)HW;
        const unsigned i = (n * (unsigned)C + c) * (unsigned)HW + t;
        const T xh = xhat[i];
        const T g = dy[i] * act_grad<T>(gm * xh + bt, act, slope);
        sb += (double)g;
        sg += (double)g * (double)xh;
    }
    block_sum2(sb, sg);
    if (threadIdx.x == 0) {
        part[2 * ((size_t)c * S + s)] = sb;
        part[2 * ((size_t)c * S + s) + 1] = sg;
    }
}

template <typename T>
__device__ __forceinline__ void bn_bwd_finalize_impl(const double* part, int C, int S, T* dbeta,
                                                     T* dgamma) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    double sb = 0.0, sg = 0.0;
    for (int s = 0; s < S; ++s) {
        sb += part[2 * ((size_t)c * S + s)];
        sg += part[2 * ((size_t)c * S + s) + 1];
    }
    dbeta[c] = (T)sb;
    dgamma[c] = (T)sg;
}

// HW = 1: the same block shape as bn_stats_rows.
template <typename T>
__device__ __forceinline__ void bn_bwd_rows_impl(const T* __restrict__ dy,
                                                 const T* __restrict__ xhat,
                                                 const T* __restrict__ gamma,
                                                 const T* __restrict__ beta, int N, int C,
                                                 int act, T slope, T* dbeta, T* dgamma) {
    const int c = blockIdx.x * ROWS_X + threadIdx.x;
    const bool live = c < C;
    double sb = 0.0, sg = 0.0;
    if (live) {
        const T gm = gamma[c], bt = beta[c];
        for (int n = threadIdx.y; n < N; n += ROWS_Y) {
            const size_t i = (size_t)n * C + c;
            const T xh = xhat[i];
            const T g = dy[i] * act_grad<T>(gm * xh + bt, act, slope);
            sb += (double)g;
            sg += (double)g * (double)xh;
        }
    }
    rows_sum2(sb, sg);
    if (!live || threadIdx.y != 0) return;
    dbeta[c] = (T)sb;
    dgamma[c] = (T)sg;
}

template <typename T>
__device__ __forceinline__ void bn_bwd_dx_impl(const T* __restrict__ dy, const T* __restrict__ xhat,
                                               const T* __restrict__ gamma,
                                               const T* __restrict__ beta,
                                               const T* __restrict__ inv_std,
                                               const T* __restrict__ dbeta,
                                               const T* __restrict__ dgamma, T* __restrict__ dx,
                                               unsigned total, int C, int HW, T M, int training,
                                               int act, T slope) {
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += gridDim.x * blockDim.x) {
        const unsigned c = (i / (unsigned)HW) % (unsigned)C;
        const T xh = xhat[i];
        const T g = dy[i] * act_grad<T>(gamma[c] * xh + beta[c], act, slope);
        const T scale = gamma[c] * inv_std[c];
        dx[i] = training ? scale / M * (M * g - dbeta[c] - xh * dgamma[c]) : scale * g;
    }
}

#define BN_ENTRIES(SUF, T)                                                                       \
    extern "C" __global__ void __launch_bounds__(BN_NT) bn_partial_##SUF(                        \
        const T* x, int N, int C, int HW, double* part) {                                        \
        bn_partial_impl<T>(x, N, C, HW, part);                                                   \
    }                                                                                            \
    extern "C" __global__ void bn_finalize_##SUF(const T* x, const double* part, int N, int C,   \
                                                 int HW, int S, T eps, T momentum, int update,   \
                                                 T* mean, T* var, T* inv_std, T* run_mean,       \
                                                 T* run_var) {                                   \
        bn_finalize_impl<T>(x, part, N, C, HW, S, eps, momentum, update, mean, var, inv_std,     \
                            run_mean, run_var);                                                  \
    }                                                                                            \
    extern "C" __global__ void bn_stats_rows_##SUF(const T* x, int N, int C, T eps, T momentum,  \
                                                   int update, T* mean, T* var, T* inv_std,      \
                                                   T* run_mean, T* run_var) {                    \
        bn_stats_rows_impl<T>(x, N, C, eps, momentum, update, mean, var, inv_std, run_mean,      \
                              run_var);                                                          \
    }                                                                                            \
    extern "C" __global__ void bn_apply_##SUF(const T* x, const T* mean, const T* inv_std,       \
                                              const T* gamma, const T* beta, T* xhat, T* y,      \
                                              unsigned total, int C, int HW, int act, T slope) { \
        bn_apply_impl<T>(x, mean, inv_std, gamma, beta, xhat, y, total, C, HW, act, slope);      \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(BN_NT) bn_bwd_partial_##SUF(                    \
        const T* dy, const T* xhat, const T* gamma, const T* beta, int N, int C, int HW,         \
        int act, T slope, double* part) {                                                        \
        bn_bwd_partial_impl<T>(dy, xhat, gamma, beta, N, C, HW, act, slope, part);               \
    }                                                                                            \
    extern "C" __global__ void bn_bwd_finalize_##SUF(const double* part, int C, int S, T* dbeta, \
                                                     T* dgamma) {                                \
        bn_bwd_finalize_impl<T>(part, C, S, dbeta, dgamma);                                      \
    }                                                                                            \
    extern "C" __global__ void bn_bwd_rows_##SUF(const T* dy, const T* xhat, const T* gamma,     \
                                                 const T* beta, int N, int C, int act, T slope,  \
                                                 T* dbeta, T* dgamma) {                          \
        bn_bwd_rows_impl<T>(dy, xhat, gamma, beta, N, C, act, slope, dbeta, dgamma);             \
    }                                                                                            \
    extern "C" __global__ void bn_bwd_dx_##SUF(const T* dy, const T* xhat, const T* gamma,       \
                                               const T* beta, const T* inv_std, const T* dbeta,  \
                                               const T* dgamma, T* dx, unsigned total, int C,    \
                                               int HW, T M, int training, int act, T slope) {    \
        bn_bwd_dx_impl<T>(dy, xhat, gamma, beta, inv_std, dbeta, dgamma, dx, total, C, HW, M,    \
                          training, act, slope);                                                 \
    }

BN_ENTRIES(f32, float)
BN_ENTRIES(f64, double)
