// Per-channel bias + element-wise activation, forward and backward.
//
// act codes: 0 identity, 1 ReLU, 2 LeakyReLU(slope), 3 tanh, 4 sigmoid, 5 softplus.
// forward:  y = act(x + b[c]) with c = (i / HW) % C (has_bias = 0: no bias);
//           mask (optional, bool) = (x + b[c] > 0) for ReLU / LeakyReLU backward.
// backward: act_bwd_mask: dx = mask ? dy : slope * dy              (ReLU: slope 0)
//           act_bwd_out:  dx = dy * (1 - y^2) (tanh), dy * y (1 - y) (sigmoid)   [from the output]
//           act_bwd_in:   dx = dy * sigmoid(x)  (softplus)                        [from the input]
//           channel_sum:  db[c] = sum over n, t of dy[n, c, t]      (bias gradient)
// sigmoid and softplus use the overflow-free forms
//   sigmoid(x) = 1/(1+e) (x >= 0) or e/(1+e) (x < 0) with e = exp(-|x|),
//   softplus(x) = max(x, 0) + log1p(exp(-|x|)).
// Entry points are suffixed _f32 / _f64.

template <typename T>
__device__ __forceinline__ T stable_sigmoid(T x) {
    const T e = exp(-fabs(x));
    return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}

template <typename T>
__device__ __forceinline__ T apply_act(T v, int act, T slope) {
    switch (act) {
        case 1: return v > T(0) ? v : T(0);
        case 2: return v > T(0) ? v : slope * v;
        case 3: return tanh(v);
        case 4: return stable_sigmoid(v);
        case 5: return fmax(v, T(0)) + log1p(exp(-fabs(v)));
        default: return v;
    }
}

#define GRID_STRIDE(i, total)                                                                  \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (total);          \
         i += (long long)gridDim.x * blockDim.x)

template <typename T>
__device__ __forceinline__ void bias_act_fwd_impl(const T* x, const T* bias, T* y, bool* mask,
                                                  long long total, int C, int HW, int act,
                                                  T slope, int has_bias, int write_mask) {
    GRID_STRIDE(i, total) {
        T v = x[i];
        if (has_bias) v += bias[(i / HW) % C];
        if (write_mask) mask[i] = v > T(0);
        y[i] = apply_act(v, act, slope);
    }
}

template <typename T>
__device__ __forceinline__ void act_bwd_mask_impl(const T* dy, const bool* mask, T* dx,
                                                  long long total, T slope) {
    GRID_STRIDE(i, total) { dx[i] = mask[i] ? dy[i] : slope * dy[i]; }
}

template <typename T>
__device__ __forceinline__ void act_bwd_out_impl(const T* dy, const T* y, T* dx, long long total,
                                                 int act) {
    GRID_STRIDE(i, total) {
        const T o = y[i];
        dx[i] = act == 3 ? dy[i] * (T(1) - o * o) : dy[i] * o * (T(1) - o);
    }
}

template <typename T>
__device__ __forceinline__ void act_bwd_in_impl(const T* dy, const T* x, T* dx, long long total) {
    GRID_STRIDE(i, total) { dx[i] = dy[i] * stable_sigmoid(x[i]); }
}

#define CS_NT 256
template <typename T>
__device__ __forceinline__ void channel_sum_impl(const T* dy, T* out, int N, int C, int HW) {
    __shared__ T sh[CS_NT / 32];
    const int c = blockIdx.x;
    const long long M = (long long)N * HW;
    T s = T(0);
    for (long long e = threadIdx.x; e < M; e += CS_NT) {
        const long long n = e / HW, t = e - n * HW;
        s += dy[(n * C + c) * HW + t];
    }
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (threadIdx.x % 32 == 0) sh[threadIdx.x / 32] = s;
    __syncthreads();
    if (threadIdx.x == 0) {
        T t = T(0);
        for (int w = 0; w < CS_NT / 32; ++w) t += sh[w];
        out[c] = t;
    }
}

#define BIAS_ACT_ENTRIES(SUF, T)                                                                 \
    extern "C" __global__ void bias_act_fwd_##SUF(const T* x, const T* bias, T* y, bool* mask,   \
                                                  long long total, int C, int HW, int act,       \
                                                  T slope, int has_bias, int write_mask) {       \
        bias_act_fwd_impl<T>(x, bias, y, mask, total, C, HW, act, slope, has_bias, write_mask);  \
    }                                                                                            \
    extern "C" __global__ void act_bwd_mask_##SUF(const T* dy, const bool* mask, T* dx,          \
                                                  long long total, T slope) {                    \
        act_bwd_mask_impl<T>(dy, mask, dx, total, slope);                                        \
    }                                                                                            \
    extern "C" __global__ void act_bwd_out_##SUF(const T* dy, const T* y, T* dx, long long total, \
                                                 int act) {                                      \
        act_bwd_out_impl<T>(dy, y, dx, total, act);                                              \
    }                                                                                            \
    extern "C" __global__ void act_bwd_in_##SUF(const T* dy, const T* x, T* dx, long long total) { \
        act_bwd_in_impl<T>(dy, x, dx, total);                                                    \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(CS_NT) channel_sum_##SUF(                       \
        const T* dy, T* out, int N, int C, int HW) {                                             \
        channel_sum_impl<T>(dy, out, N, C, HW);                                                  \
    }

BIAS_ACT_ENTRIES(f32, float)
BIAS_ACT_ENTRIES(f64, double)
