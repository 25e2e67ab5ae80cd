// A convolution (or Linear layer) with ONE output channel, in the 1x1 geometry every
// dense layer maps to: x (N, D), w (1, D), y (N, 1). Its three GEMMs have a dimension of
// 1, which the tiled implicit-GEMM kernels cover with a single tile column; these three
// kernels spread the work instead.
//   gemv_rows:  y[n]    = sum_j x[n, j] w[j]      one block per row, block-wide sum
//   gemv_cols:  dw[j]   = sum_n dy[n] x[n, j]     one thread per column (reads coalesced)
//   gemv_outer: dx[n,j] = dy[n] w[j]              element-wise
// Sums accumulate in the element type, in a fixed order (deterministic).
// Entry points are suffixed _f32 / _f64.

#define GEMV_NT 256

template <typename T>
__device__ __forceinline__ void gemv_rows_impl(const T* __restrict__ x, const T* __restrict__ w,
                                               T* __restrict__ y, int D) {
    __shared__ T sh[GEMV_NT / 32];
    const int n = blockIdx.x;
    const T* row = x + (size_t)n * D;
    T s = T(0);
    for (int j = threadIdx.x; j < D; j += GEMV_NT) s += row[j] * w[j];
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = s;
    __syncthreads();
    if (threadIdx.x < 32) {
        s = threadIdx.x < GEMV_NT / 32 ? sh[threadIdx.x] : T(0);
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (threadIdx.x == 0) y[n] = s;
    }
}

template <typename T>
__device__ __forceinline__ void gemv_cols_impl(const T* __restrict__ x, const T* __restrict__ dy,
                                               T* __restrict__ dw, int N, int D) {
    const int j = blockIdx.x * GEMV_NT + threadIdx.x;
    if (j >= D) return;
    T s = T(0);
    for (int n = 0; n < N; ++n) s += dy[n] * x[(size_t)n * D + j];
    dw[j] = s;
}

template <typename T>
__device__ __forceinline__ void gemv_outer_impl(const T* __restrict__ dy, const T* __restrict__ w,
                                                T* __restrict__ dx, int N, int D) {
    const size_t total = (size_t)N * D;
    for (size_t i = blockIdx.x * (size_t)GEMV_NT + threadIdx.x; i < total;
         i += (size_t)gridDim.x * GEMV_NT) {
        const size_t n = i / D;
        dx[i] = dy[n] * w[i - n * D];
    }
}

#define GEMV_ENTRIES(SUF, T)                                                                  \
    extern "C" __global__ void __launch_bounds__(GEMV_NT) gemv_rows_##SUF(                    \
        const T* x, const T* w, T* y, int D) {                                                \
        gemv_rows_impl<T>(x, w, y, D);                                                        \
    }                                                                                         \
    extern "C" __global__ void __launch_bounds__(GEMV_NT) gemv_cols_##SUF(                    \
        const T* x, const T* dy, T* dw, int N, int D) {                                       \
        gemv_cols_impl<T>(x, dy, dw, N, D);                                                   \
    }                                                                                         \
    extern "C" __global__ void __launch_bounds__(GEMV_NT) gemv_outer_##SUF(                   \
        const T* dy, const T* w, T* dx, int N, int D) {                                       \
        gemv_outer_impl<T>(dy, w, dx, N, D);                                                  \
    }

GEMV_ENTRIES(f32, float)
GEMV_ENTRIES(f64, double)
