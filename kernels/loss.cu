// Losses on logits in one launch: value, gradient and mean D(x) together.
//
// For logits l (n values), a scalar target t and a sign s (one block of LOSS_NT threads):
//   loss     = s (1/n) sum_i [softplus(l_i) - t l_i]      binary cross-entropy on logits,
//              t = 1: the non-saturating generator loss mean -log D = mean softplus(-l);
//              t = 0, s = -1: the minimax generator loss mean log(1 - D) = -mean softplus(l)
//   grad_i   = s (sigmoid(l_i) - t) / n                     d loss / d l_i
//   mean_sig = (1/n) sum_i sigmoid(l_i)                      mean D(x), for logging
// with e = exp(-|l|) in (0, 1]: softplus(l) = max(l, 0) + log1p(e),
// sigmoid(l) = 1/(1+e) for l >= 0 and e/(1+e) otherwise (no exponential of a positive
// number; logits of +-1e4 stay finite). Sums are accumulated in double.
// sigmoid_mean computes mean_sig alone. Entry points are suffixed _f32 / _f64.

#define LOSS_NT 256

__device__ __forceinline__ double loss_block_sum(double v, double* sh) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    if (l == 0) sh[w] = v;
    __syncthreads();
    v = (threadIdx.x < LOSS_NT / 32) ? sh[threadIdx.x] : 0.0;
    if (w == 0)
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    __syncthreads();
    return v;   // the block's sum in thread 0
}

template <typename T>
__device__ __forceinline__ void logit_bce_impl(const T* __restrict__ l, int n, T t, T s,
                                               T* __restrict__ loss, T* __restrict__ grad,
                                               T* __restrict__ mean_sig) {
    __shared__ double sh[LOSS_NT / 32];
    double a = 0.0, b = 0.0;
    const T inv_n = T(1) / T(n);
    for (int i = threadIdx.x; i < n; i += LOSS_NT) {
        const T x = l[i];
        const T e = exp(-fabs(x));
        const T sp = fmax(x, T(0)) + log1p(e);
        const T sg = x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
        a += (double)(sp - t * x);
        b += (double)sg;
        grad[i] = s * (sg - t) * inv_n;
    }
    a = loss_block_sum(a, sh);
    b = loss_block_sum(b, sh);
    if (threadIdx.x == 0) {
        loss[0] = (T)((double)s * a / n);
        mean_sig[0] = (T)(b / n);
    }
}

template <typename T>
__device__ __forceinline__ void sigmoid_mean_impl(const T* __restrict__ l, int n,
                                                  T* __restrict__ mean_sig) {
    __shared__ double sh[LOSS_NT / 32];
    double b = 0.0;
    for (int i = threadIdx.x; i < n; i += LOSS_NT) {
        const T x = l[i];
        const T e = exp(-fabs(x));
        b += (double)(x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e));
    }
    b = loss_block_sum(b, sh);
    if (threadIdx.x == 0) mean_sig[0] = (T)(b / n);
}

#define LOSS_ENTRIES(SUF, T)                                                                  \
    extern "C" __global__ void __launch_bounds__(LOSS_NT) logit_bce_##SUF(                    \
        const T* l, int n, T t, T s, T* loss, T* grad, T* mean_sig) {                         \
        logit_bce_impl<T>(l, n, t, s, loss, grad, mean_sig);                                  \
    }                                                                                         \
    extern "C" __global__ void __launch_bounds__(LOSS_NT) sigmoid_mean_##SUF(                 \
        const T* l, int n, T* mean_sig) {                                                     \
        sigmoid_mean_impl<T>(l, n, mean_sig);                                                 \
    }

LOSS_ENTRIES(f32, float)
LOSS_ENTRIES(f64, double)
